"""Who sends, and may each recipient receive: the checks of MAIL and RCPT.

Each refusal is a `Rejection` raised where the decision is made, with its SMTP
code and a French text (with the English meaning) that the professional's mail
client shows. The conversation rules that need the message itself (DOMAIN.md
§2: replies, [FIN]) are in `policy.py`, applied at DATA.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from mss.annuaire import lookup as annuaire_lookup
from mss.core.address import Address, InvalidAddress, ins_of_patient_address, parse_address
from mss.core.dsn import RcptDSN
from mss.core.ins import InvalidINS
from mss.delivery import quotas
from mss.delivery.config import DeliveryConfig
from mss.delivery.trust import TrustSpace
from mss.errors import Rejection
from mss.notify.email import bounce_token
from mss.security.auth import LoginIdentity
from mss.store.accounts import RecipientFacts, recipient_facts
from mss.store.api import Store
from mss.store.models import AccountKind, ProfileStatus


class Door(StrEnum):
    SUBMISSION = "submission"  # authenticated clients of this operator
    MX = "mx"  # other operators of the trust space
    WEB = "web"  # the patient space: a logged-in patient's replies and new messages


class RecipientKind(StrEnum):
    LOCAL = "local"
    REMOTE = "remote"
    BOUNCE = "bounce"  # a DSN about a patient's e-mail notice: read, never delivered


@dataclass(frozen=True, slots=True)
class Sender:
    address: str  # "" for the null sender of DSNs and MDNs
    professional: bool  # may write to patients
    patient_ins: str | None  # set when the sender is a patient
    display_name: str | None = None


@dataclass(frozen=True, slots=True)
class Recipient:
    address: str
    kind: RecipientKind
    mailbox_id: int | None  # INBOX of a local recipient
    patient_ins: str | None  # set when the recipient is a patient
    professional: bool  # a professional mailbox (ours, or another operator's)
    dsn: RcptDSN = field(default_factory=RcptDSN)


def _reject(code: int, enhanced: str, text: str) -> Rejection:
    return Rejection(code, enhanced, text)


def outside_trust_space(domain: str) -> Rejection:
    return _reject(
        550,
        "5.7.1",
        f"Le domaine {domain} est hors de l'espace de confiance MSSanté "
        "(domain outside the MSSanté trust space)",
    )


SENDER_NOT_OWNED = _reject(
    550,
    "5.7.1",
    "L'adresse d'expédition n'appartient pas au compte authentifié "
    "(sender address not owned by the authenticated account)",
)
WEB_SENDER_CLOSED = _reject(
    550,
    "5.7.1",
    "Ce compte est désactivé ou ce profil est fermé : il n'envoie pas de message "
    "(account disabled or profile closed)",
)
WEB_PATIENTS_ONLY = _reject(
    550,
    "5.7.1",
    "L'espace patient n'envoie que les messages de ses patients "
    "(the patient space sends only its patients' messages)",
)
NULL_SENDER_REFUSED = _reject(550, "5.7.1", "Expéditeur vide refusé ici (null sender not allowed)")
LOCAL_DOMAIN_FROM_OUTSIDE = _reject(
    550,
    "5.7.1",
    "Ce domaine est hébergé ici : il ne peut pas arriver d'un autre opérateur "
    "(local domain received from outside)",
)
RELAY_DENIED = _reject(
    550, "5.7.1", "Relais refusé : ce destinataire n'est pas hébergé ici (relay denied)"
)
NO_SUCH_MAILBOX = _reject(550, "5.1.1", "Boîte aux lettres inconnue (no such mailbox)")
PATIENT_UNKNOWN = _reject(
    550,
    "5.1.1",
    "Patient inconnu : aucune messagerie Mon espace santé pour ce matricule INS (unknown patient)",
)
PATIENT_CLOSED = _reject(
    550, "5.1.1", "Le profil Mon espace santé de ce patient est fermé (patient profile closed)"
)
PATIENT_OPPOSED = _reject(
    550,
    "5.7.1",
    "Ce patient s'est opposé aux échanges par la messagerie de Mon espace santé "
    "(the patient opposed MSSanté exchanges)",
)
PATIENT_NOT_QUALIFIED = _reject(
    550, "5.7.1", "L'identité INS de ce patient n'est pas qualifiée (patient INS not qualified)"
)
ONE_PATIENT_PER_MESSAGE = _reject(
    550, "5.7.1", "Un message ne peut concerner qu'un seul patient (one patient per message)"
)
PROFESSIONALS_ONLY = _reject(
    550,
    "5.7.1",
    "Seul un professionnel de santé peut écrire à un patient "
    "(only health professionals may write to patients)",
)
PATIENT_WRITES_TO_PROFESSIONALS_ONLY = _reject(
    550,
    "5.7.1",
    "Un patient ne peut répondre qu'aux professionnels qui lui ont écrit "
    "(a patient may only reply to the professionals who wrote to them)",
)


def bad_ins(ins: str, reason: str) -> Rejection:
    return _reject(550, "5.1.3", f"Matricule INS invalide {ins} : {reason} (bad INS)")


def _parse(address: str, enhanced: str) -> Address:
    try:
        return parse_address(address)
    except InvalidAddress as exc:
        raise Rejection(553, enhanced, f"Adresse invalide (bad address): {exc.reason}") from None


class Checks:
    def __init__(self, store: Store, trust: TrustSpace, config: DeliveryConfig) -> None:
        self._store = store
        self._trust = trust
        self._config = config

    @property
    def trust(self) -> TrustSpace:
        return self._trust

    # --- MAIL FROM ------------------------------------------------------------------------

    async def sender(self, door: Door, address: str, login: LoginIdentity | None) -> Sender:
        if not address:
            if door is not Door.MX:
                raise NULL_SENDER_REFUSED
            return Sender("", professional=False, patient_ins=None)
        parsed = _parse(address, "5.1.7")
        if door is Door.MX:
            return await self._remote_sender(parsed)
        # SMTP: the login service checked the account (it exists, is enabled) moments ago;
        # the web door builds its login itself, so the account is checked here.
        if login is None or login.address != str(parsed):
            raise SENDER_NOT_OWNED
        if door is Door.WEB and login.kind != AccountKind.PATIENT.value:
            raise WEB_PATIENTS_ONLY
        if door is Door.WEB:
            await self._web_sender_usable(parsed)
        return Sender(
            str(parsed),
            professional=login.kind in (AccountKind.PROFESSIONAL, AccountKind.APPLICATIVE),
            patient_ins=parsed.local if login.kind == AccountKind.PATIENT.value else None,
            display_name=login.display_name,
        )

    async def _web_sender_usable(self, parsed: Address) -> None:
        """A patient writing from the space: an account not disabled (by the operator, or
        with its profile) and a profile active, checked at every message."""
        address = str(parsed)
        facts = await self._store.db.read_fast(
            lambda conn: recipient_facts(conn, address, parsed.local)
        )
        if facts.disabled or facts.profile_status != ProfileStatus.ACTIVE.value:
            raise WEB_SENDER_CLOSED

    async def _remote_sender(self, parsed: Address) -> Sender:
        if self._trust.is_local(parsed.domain):
            raise LOCAL_DOMAIN_FROM_OUTSIDE
        if not self._trust.trusted(parsed.domain):
            raise outside_trust_space(parsed.domain)
        if parsed.domain == self._config.patient_domain:
            try:
                ins = ins_of_patient_address(parsed, self._config.patient_domain)
            except InvalidINS as exc:
                raise Rejection(
                    553, "5.1.7", f"Expéditeur patient invalide (bad INS): {exc.reason}"
                ) from None
            return Sender(
                str(parsed), professional=False, patient_ins=ins.matricule if ins else None
            )
        return Sender(
            str(parsed), professional=await self.is_professional(str(parsed)), patient_ins=None
        )

    async def is_professional(self, address: str) -> bool:
        """A mailbox of another operator that may write to patients (DOMAIN.md §2): one
        published in the annuaire, or one the operator listed before its publication."""
        if address in self._config.remote_professionals:
            return True
        return await self._store.db.read_fast(lambda conn: annuaire_lookup.is_listed(conn, address))

    # --- RCPT TO --------------------------------------------------------------------------

    async def recipient(
        self, door: Door, sender: Sender, address: str, dsn: RcptDSN, previous: Sequence[Recipient]
    ) -> Recipient:
        parsed = _parse(address, "5.1.3")
        if self._is_bounce(door, sender, str(parsed)):
            return Recipient(str(parsed), RecipientKind.BOUNCE, None, None, False, dsn)
        ins = self._patient_ins(parsed)
        if self._trust.is_local(parsed.domain):
            recipient = await self._local_recipient(parsed, ins, dsn)
        elif door is Door.MX:
            raise RELAY_DENIED
        elif not self._trust.trusted(parsed.domain):
            raise outside_trust_space(parsed.domain)
        else:
            recipient = Recipient(
                str(parsed), RecipientKind.REMOTE, None, ins, professional=ins is None, dsn=dsn
            )
        self._patient_rules(sender, recipient, previous)
        return recipient

    def _is_bounce(self, door: Door, sender: Sender, address: str) -> bool:
        """A null sender at the MX, to a VERP address of the notices' return path."""
        path = self._config.notify_return_path
        return bool(door is Door.MX and not sender.address and path and
                    bounce_token(address, path))  # fmt: skip

    def _patient_ins(self, parsed: Address) -> str | None:
        try:
            ins = ins_of_patient_address(parsed, self._config.patient_domain)
        except InvalidINS as exc:
            raise bad_ins(parsed.local, exc.reason) from None
        return ins.matricule if ins is not None else None

    async def _local_recipient(self, parsed: Address, ins: str | None, dsn: RcptDSN) -> Recipient:
        address = str(parsed)
        local = await self._store.db.read_fast(lambda c: recipient_facts(c, address, ins))
        if ins is not None:
            _check_patient(local)
        elif local.kind is None or local.disabled or local.inbox is None:
            raise NO_SUCH_MAILBOX
        assert local.inbox is not None
        await quotas.refuse_if_full(self._store, self._config.quota, local.inbox)
        return Recipient(
            address,
            RecipientKind.LOCAL,
            local.inbox,
            ins,
            professional=local.kind != AccountKind.PATIENT.value,
            dsn=dsn,
        )

    @staticmethod
    def _patient_rules(sender: Sender, recipient: Recipient, previous: Sequence[Recipient]) -> None:
        """DOMAIN.md §2 at RCPT time: one patient per message, only professionals write first."""
        if sender.patient_ins is not None and not recipient.professional:
            raise PATIENT_WRITES_TO_PROFESSIONALS_ONLY
        if recipient.patient_ins is None:
            return
        others = {r.patient_ins for r in previous if r.patient_ins is not None}
        if others - {recipient.patient_ins}:
            raise ONE_PATIENT_PER_MESSAGE
        if sender.address and not sender.professional:
            raise PROFESSIONALS_ONLY


def _check_patient(local: RecipientFacts) -> None:
    if not local.patient_exists:
        raise PATIENT_UNKNOWN
    if local.profile_status == ProfileStatus.OPPOSED.value:
        raise PATIENT_OPPOSED
    if local.profile_status == ProfileStatus.CLOSED.value:
        raise PATIENT_CLOSED
    if local.identity_status != "QUAL":
        raise PATIENT_NOT_QUALIFIED
    if local.kind is None or local.disabled or local.inbox is None:
        raise PATIENT_UNKNOWN
