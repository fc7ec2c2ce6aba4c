"""Accounts (professional, applicative, patient) and patients.

Every account gets the default mailboxes (INBOX, Sent, Drafts, Trash, Junk,
Archive). A patient gets an account, at `<INS>@patient.mssante.fr`, only while
their profile is active and their INS qualified; closing or opposing the
profile disables it (mail to them is then refused; what they had is kept).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, delete, insert, select, update

from mss.core.address import patient_address
from mss.core.identity import PatientIdentity
from mss.errors import DuplicateError, NotFoundError
from mss.store.folders import delete_all_mailboxes
from mss.store.mailboxes import create_default_mailboxes
from mss.store.models import AccountKind, account_table, patient_table, utcnow
from mss.store.notifications import add_notification
from mss.store.notify import remove_webhook
from mss.store.space import end_sessions_about
from mss.store.sql import RawStatement, Tx


@dataclass(frozen=True, slots=True)
class AccountRecord:
    id: int
    address: str
    kind: str
    bal_type: str | None
    display_name: str | None
    national_id: str | None
    patient_id: int | None
    disabled: bool
    password_hash: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class PatientRecord:
    id: int
    ins: str
    oid: str
    birth_family: str
    birth_given: str
    birth_date: object
    sex: str
    birth_place: str | None
    used_family: str | None
    used_given: str | None
    identity_status: str
    profile_status: str
    email: str | None
    phone: str | None

    @property
    def name(self) -> str:
        """The name the patient uses (`patient_name`): used names, else birth ones."""
        return patient_name(self.used_given or self.birth_given,
                            self.used_family or self.birth_family)  # fmt: skip


def patient_name(given: str, family: str) -> str:
    """How mss names a patient to people: « Dominique PAT-TROIS » (the first given name)."""
    first = given.split()[0] if given.split() else given
    return f"{first.title()} {family}"


_ACCOUNT_COLUMNS = (
    account_table.c.id,
    account_table.c.address,
    account_table.c.kind,
    account_table.c.bal_type,
    account_table.c.display_name,
    account_table.c.national_id,
    account_table.c.patient_id,
    account_table.c.disabled,
    account_table.c.password_hash,
)


_BY_ADDRESS = RawStatement(
    "SELECT " + ", ".join(c.name for c in _ACCOUNT_COLUMNS) + " FROM account WHERE address = ?"
)


def get_account(conn: Connection, address: str) -> AccountRecord | None:
    row = _BY_ADDRESS.first(conn, address)
    if row is None:
        return None
    account_id, address_, kind, bal_type, display_name, national_id, patient_id = row[:7]
    return AccountRecord(account_id, address_, kind, bal_type, display_name, national_id,
                         patient_id, bool(row[7]), row[8])  # fmt: skip


def accounts_of_national_id(conn: Connection, national_id: str) -> list[AccountRecord]:
    rows = conn.execute(
        select(*_ACCOUNT_COLUMNS)
        .where(account_table.c.national_id == national_id)
        .order_by(account_table.c.address)
    )
    return [AccountRecord(*row) for row in rows]


def list_accounts(conn: Connection) -> list[AccountRecord]:
    rows = conn.execute(select(*_ACCOUNT_COLUMNS).order_by(account_table.c.address))
    return [AccountRecord(*row) for row in rows]


def add_account(
    tx: Tx,
    *,
    address: str,
    kind: AccountKind,
    bal_type: str | None = None,
    display_name: str | None = None,
    password_hash: str | None = None,
    national_id: str | None = None,
    patient_id: int | None = None,
) -> int:
    """Create an account and its default mailboxes; `DuplicateError` if the address exists."""
    if get_account(tx.conn, address) is not None:
        raise DuplicateError(f"the address {address} already exists")
    result = tx.conn.execute(
        insert(account_table).values(
            address=address,
            kind=kind.value,
            bal_type=bal_type,
            display_name=display_name,
            password_hash=password_hash,
            national_id=national_id,
            patient_id=patient_id,
            disabled=False,
            created_at=utcnow(),
        )
    )
    pk = result.inserted_primary_key
    assert pk is not None
    account_id = int(pk[0])
    create_default_mailboxes(tx, account_id)
    return account_id


def delete_account(tx: Tx, address: str) -> int:
    """Delete an account with its mailboxes and messages (its webhook too); returns how
    many messages went. Conversations and DMP traces naming the address stay: history."""
    account = get_account(tx.conn, address)
    if account is None:
        raise NotFoundError(f"no mailbox {address}")
    count = delete_all_mailboxes(tx, account.id)
    remove_webhook(tx, address)
    tx.conn.execute(delete(account_table).where(account_table.c.id == account.id))
    return count


def set_password(tx: Tx, address: str, password_hash: str) -> None:
    result = tx.conn.execute(
        update(account_table)
        .where(account_table.c.address == address)
        .values(password_hash=password_hash)
    )
    if result.rowcount == 0:
        raise NotFoundError(f"no account {address}")


# --- patients ---------------------------------------------------------------------------


def get_patient(conn: Connection, ins: str) -> PatientRecord | None:
    row = conn.execute(
        select(
            patient_table.c.id,
            patient_table.c.ins,
            patient_table.c.oid,
            patient_table.c.birth_family,
            patient_table.c.birth_given,
            patient_table.c.birth_date,
            patient_table.c.sex,
            patient_table.c.birth_place,
            patient_table.c.used_family,
            patient_table.c.used_given,
            patient_table.c.identity_status,
            patient_table.c.profile_status,
            patient_table.c.email,
            patient_table.c.phone,
        ).where(patient_table.c.ins == ins)
    ).first()
    return None if row is None else PatientRecord(**row._mapping)


def _display_name(given_names: str, family: str) -> str:
    """How a patient is named to professionals: first given name and family name."""
    first = given_names.split()[0] if given_names.split() else given_names
    return f"{first} {family}"


def _patient_values(identity: PatientIdentity) -> dict[str, object]:
    now = utcnow()
    return {
        "ins": identity.ins.matricule,
        "oid": identity.oid,
        "birth_family": identity.birth_family,
        "birth_given": identity.birth_given,
        "birth_date": identity.birth_date,
        "sex": identity.sex,
        "birth_place": identity.birth_place,
        "used_family": identity.used_family,
        "used_given": identity.used_given,
        "identity_status": identity.identity_status.value,
        "profile_status": identity.profile_status,
        "email": identity.email,
        "phone": identity.phone,
        "created_at": now,
        "updated_at": now,
    }


def add_patients(tx: Tx, identities: Sequence[PatientIdentity], patient_domain: str) -> list[int]:
    """Create patients (and mailboxes where due); all or nothing on duplicates."""
    seen: set[str] = set()
    for identity in identities:
        ins = identity.ins.matricule
        if ins in seen:
            raise DuplicateError(f"the INS {ins} appears twice")
        seen.add(ins)
    existing = tx.conn.execute(
        select(patient_table.c.ins).where(patient_table.c.ins.in_(sorted(seen)))
    ).first()
    if existing is not None:
        raise DuplicateError(f"a patient with INS {existing.ins} already exists")
    ids: list[int] = []
    for identity in identities:
        pk = tx.conn.execute(
            insert(patient_table).values(_patient_values(identity))
        ).inserted_primary_key
        assert pk is not None
        patient_id = int(pk[0])
        ids.append(patient_id)
        if identity.profile_status == "active":  # « Votre service … a été créé »
            add_notification(tx, "profile_created", identity.ins.matricule)
        if identity.has_mailbox:
            add_account(
                tx,
                address=patient_address(identity.ins, patient_domain),
                kind=AccountKind.PATIENT,
                display_name=_display_name(
                    identity.birth_given, identity.used_family or identity.birth_family
                ),
                patient_id=patient_id,
            )
    return ids


def set_profile_status(
    tx: Tx, ins: str, status: str, patient_domain: str, *, by_patient: bool = False
) -> None:
    """Close, oppose or reopen a patient's profile; the account follows (disabled while
    the profile is not active, and while the operator keeps it switched off: reopening
    never undoes `mss patient disable`). The operator's closure or opposition ends every
    session of the patient and every one showing them (afterwards, reopening is the
    operator's); the patient's own (`by_patient`) keeps their sessions, to reopen."""
    patient = get_patient(tx.conn, ins)
    if patient is None:
        raise NotFoundError(f"no patient with INS {ins}")
    tx.conn.execute(
        update(patient_table)
        .where(patient_table.c.id == patient.id)
        .values(profile_status=status, updated_at=utcnow())
    )
    events = {"active": "profile_reopened", "closed": "profile_closed"}  # opposed: nothing
    if status != patient.profile_status and status in events:
        add_notification(tx, events[status], ins)
    address = f"{ins}@{patient_domain}"
    active = status == "active" and patient.identity_status == "QUAL"
    if not active and not by_patient:
        end_sessions_about(tx, address, ins)
    _account_follows(tx, patient, address, active)


def _account_follows(tx: Tx, patient: PatientRecord, address: str, active: bool) -> None:
    account = get_account(tx.conn, address)
    if account is not None:
        tx.conn.execute(
            update(account_table)
            .where(account_table.c.id == account.id)
            .values(disabled=account_table.c.operator_disabled if active else True)
        )
    elif active:
        add_account(
            tx,
            address=address,
            kind=AccountKind.PATIENT,
            display_name=_display_name(
                patient.birth_given, patient.used_family or patient.birth_family
            ),
            patient_id=patient.id,
        )


# --- RCPT ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecipientFacts:
    """What RCPT needs to know of a local address, read in one round trip."""

    kind: str | None  # the account's kind; None without an account
    disabled: bool
    inbox: int | None
    profile_status: str | None  # the patient's, when the address is a patient's
    identity_status: str | None
    patient_exists: bool


_RCPT_ACCOUNT = RawStatement(
    "SELECT a.kind, a.disabled, m.id FROM account a "
    "LEFT JOIN mailbox m ON m.account_id = a.id AND m.name = 'INBOX' WHERE a.address = ?"
)
_RCPT_PATIENT = RawStatement("SELECT profile_status, identity_status FROM patient WHERE ins = ?")


def recipient_facts(conn: Connection, address: str, ins: str | None) -> RecipientFacts:
    account = _RCPT_ACCOUNT.first(conn, address)
    patient = _RCPT_PATIENT.first(conn, ins) if ins is not None else None
    return RecipientFacts(
        kind=account[0] if account else None,
        disabled=bool(account[1]) if account else False,
        inbox=account[2] if account else None,
        profile_status=patient[0] if patient else None,
        identity_status=patient[1] if patient else None,
        patient_exists=patient is not None,
    )
