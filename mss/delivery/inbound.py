"""The delivery pipeline: from an accepted envelope and its bytes to durable storage.

    identity → recipients (checks.py, at MAIL and RCPT)
    → headers (From owned by the author, size, Message-ID/Date added at submission)
    → conversation rules (policy.py) → DKIM verify (MX) → trace headers
    → store: local copies + conversation record + relay queue rows, one commit
    ─► 250 (only now) → wake the relay runner; DSN "delivered" if asked

Every door (SMTP submission, the MX, the patient space later) goes through
`Pipeline.accept`, so the national rules hold whatever the door.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from email.utils import format_datetime

from mss.core.dsn import MailDSN, RcptDSN
from mss.core.mime import (
    Headers,
    find_body_start,
    parse_address_list,
    parse_headers,
    parse_msg_ids,
)
from mss.delivery import deposits, policy
from mss.delivery.checks import Checks, Door, Recipient, RecipientKind, Sender
from mss.delivery.config import DeliveryConfig
from mss.delivery.dsn import RecipientStatus, build_dsn
from mss.delivery.reports import ReportSender
from mss.dmp.mail import has_invisible_document
from mss.errors import Rejection
from mss.security.auth import LoginIdentity
from mss.security.dkim import TxtLookup, authentication_results, verify_all
from mss.security.pki import CertIdentity
from mss.store.api import Store
from mss.store.db import Tx
from mss.store.mailboxes import Delivered, Target
from mss.store.queue import QueuedRecipient, enqueue

log = logging.getLogger(__name__)

# Above this size, parsing and encryption run on a thread to keep the loop responsive.
OFF_LOOP_SIZE = 256 * 1024

FROM_MISSING = Rejection(550, "5.6.0", "En-tête From absent (missing From header)")
FROM_NOT_OWNED = Rejection(
    550,
    "5.7.1",
    "L'en-tête From ne correspond pas au compte authentifié "
    "(From header not owned by the authenticated account)",
)
HEADER_TOO_BIG = Rejection(552, "5.3.4", "En-tête trop volumineux (header section too large)")
DKIM_FAILED = Rejection(
    550, "5.7.20", "Aucune signature DKIM valide (no passing DKIM signature found, RFC 7372)"
)
INVISIBLE_TO_PATIENT = Rejection(
    550,
    "5.7.1",
    "Un document marqué invisible pour le patient (INVISIBLE_PATIENT) ne peut pas lui être "
    "adressé : déposez-le dans son DMP par l'API (a document invisible to the patient cannot "
    "be mailed to them)",
)
DKIM_TEMPERROR = Rejection(
    451, "4.7.5", "Vérification DKIM impossible pour l'instant (DKIM temporary error)"
)


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """What the door knows of the client, for checks and the trace header."""

    door: Door
    helo: str
    peer_ip: str | None
    tls: bool
    login: LoginIdentity | None = None
    peer: CertIdentity | None = None


@dataclass(frozen=True, slots=True)
class Accepted:
    queue_id: str
    local: int
    relayed: int
    conversation_id: int | None


class Pipeline:
    def __init__(
        self,
        store: Store,
        checks: Checks,
        config: DeliveryConfig,
        reports: ReportSender,
        *,
        dkim_lookup: TxtLookup | None = None,
        cpu_pool: Executor | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self.checks = checks
        self._config = config
        self._reports = reports
        self._dkim_lookup = dkim_lookup
        # Where DKIM verification runs: worker processes use the other cores
        # (the event loop's process is bound to one by the GIL); None: a thread.
        self._cpu_pool = cpu_pool
        self._clock = clock

    async def sender(self, session: SessionInfo, address: str) -> Sender:
        return await self.checks.sender(session.door, address, session.login)

    async def recipient(
        self,
        session: SessionInfo,
        sender: Sender,
        address: str,
        dsn: RcptDSN,
        previous: Sequence[Recipient],
    ) -> Recipient:
        return await self.checks.recipient(session.door, sender, address, dsn, previous)

    async def accept(
        self,
        session: SessionInfo,
        sender: Sender,
        recipients: Sequence[Recipient],
        raw: bytes,
        mail_dsn: MailDSN | None = None,
    ) -> Accepted:
        """Check, store and queue one message; return once durable (then answer 250)."""
        queue_id = secrets.token_hex(6).upper()
        recipients = list({r.address: r for r in recipients}.values())
        header_end = find_body_start(raw)
        if header_end > self._config.max_header_size:
            raise HEADER_TOO_BIG
        headers = parse_headers(raw, 0, header_end)
        added = self._submission_headers(session, sender, headers)
        trace = await self._trace(session, raw, queue_id, recipients)
        message_id = parse_msg_ids(headers.get("Message-ID") or _field(added, "Message-ID"))
        facts = self._facts(sender, recipients, headers, message_id[0] if message_id else "")
        now = dt.datetime.now(dt.UTC)
        if facts.concerns_patient and (facts.replied_ids or facts.sender_patient_ins or facts.ends):
            await self._store.read(
                lambda c: policy.plan(c, facts, self._config.reply_window_days, now)
            )
        final = trace + added + raw
        prepared = (
            await asyncio.to_thread(self._store.prepare, final)
            if len(final) > OFF_LOOP_SIZE
            else self._store.prepare(final)
        )
        local = [r for r in recipients if r.kind is RecipientKind.LOCAL and r.mailbox_id]
        remote = [r for r in recipients if r.kind is RecipientKind.REMOTE]
        conversation: list[int | None] = [None]
        patients = await self._document_patients(sender, local, headers, final)

        def also(tx: Tx, delivered: Delivered) -> None:
            if facts.concerns_patient:
                decided = policy.plan(tx.conn, facts, self._config.reply_window_days, now)
                if decided is not None:
                    conversation[0] = policy.record(tx, facts, decided)
            if remote:
                self._enqueue(tx, delivered.blob_id, queue_id, sender, remote, mail_dsn)
            for ins in patients:  # the DMP deposit, done after this commit (outbox)
                deposits.add(tx, delivered.blob_id, ins, sender.address, int(self._clock()))

        await self._store.deliver(
            prepared, [Target(r.mailbox_id) for r in local if r.mailbox_id], also=also
        )
        log.info(
            "accepted %s from %s: %d local, %d to relay (%s)",
            queue_id, sender.address or "<>", len(local), len(remote), session.door.value,
        )  # fmt: skip
        await self._success_notices(sender, local, final, mail_dsn)
        return Accepted(queue_id, len(local), len(remote), conversation[0])

    # --- steps -----------------------------------------------------------------------------

    async def _document_patients(
        self, sender: Sender, local: Sequence[Recipient], headers: Headers, raw: bytes
    ) -> list[str]:
        """The local patients whose DMP receives this professional's attachments; refuses
        a mail whose XDM holds a document invisible to the patient (DOMAIN.md §5)."""
        if not sender.professional:
            return []
        patients = [r.patient_ins for r in local if r.patient_ins]
        content_type = (headers.get("Content-Type") or "").lower()
        if not patients or not content_type.startswith("multipart/"):
            return []
        if await asyncio.to_thread(has_invisible_document, raw):
            raise INVISIBLE_TO_PATIENT
        return patients

    def _submission_headers(self, session: SessionInfo, sender: Sender, headers: Headers) -> bytes:
        """Check From; add Message-ID and Date when missing (RFC 6409 §8)."""
        if session.door is not Door.SUBMISSION:
            return b""
        authors = parse_address_list(headers.get("From"))
        mailboxes = [a for a in authors or [] if a[2] is not None]
        if not mailboxes:
            raise FROM_MISSING
        for _, _, local, domain in mailboxes:
            if f"{local}@{domain}".lower() != sender.address.lower():
                raise FROM_NOT_OWNED
        added = b""
        if headers.get("Message-ID") is None:
            added += f"Message-ID: <{uuid.uuid4().hex}@{self._config.hostname}>\r\n".encode()
        if headers.get("Date") is None:
            added += f"Date: {format_datetime(dt.datetime.now(dt.UTC))}\r\n".encode()
        return added

    async def _trace(
        self, session: SessionInfo, raw: bytes, queue_id: str, recipients: Sequence[Recipient]
    ) -> bytes:
        """Received (RFC 5321 §4.4) and, on the MX, Authentication-Results (RFC 8601)."""
        protocol = "ESMTP" + ("S" if session.tls else "") + ("A" if session.login else "")
        for_clause = f"\r\n\tfor <{recipients[0].address}>" if len(recipients) == 1 else ""
        received = (
            f"Received: from {_clean(session.helo)} ([{session.peer_ip or 'unknown'}])\r\n"
            f"\tby {self._config.hostname} (mss) with {protocol} id {queue_id}{for_clause};\r\n"
            f"\t{format_datetime(dt.datetime.now(dt.UTC))}\r\n"
        )
        if session.door is not Door.MX or self._dkim_lookup is None:
            return received.encode()
        loop = asyncio.get_running_loop()
        results = await loop.run_in_executor(self._cpu_pool, verify_all, raw, self._dkim_lookup)
        if self._config.reject_dkim_failures and not any(r.result == "pass" for r in results):
            if any(r.result == "temperror" for r in results):
                raise DKIM_TEMPERROR
            raise DKIM_FAILED
        header = authentication_results(self._config.hostname, results)
        return (header + "\r\n" + received).encode()

    def _facts(
        self, sender: Sender, recipients: Sequence[Recipient], headers: Headers, message_id: str
    ) -> policy.MessageFacts:
        patients = {r.patient_ins for r in recipients if r.patient_ins is not None}
        authors = parse_address_list(headers.get("From")) or []
        name = authors[0][0] if authors and authors[0][0] else sender.display_name
        return policy.MessageFacts(
            sender=sender.address,
            sender_professional=sender.professional,
            sender_patient_ins=sender.patient_ins,
            sender_name=name,
            patient_ins=next(iter(patients)) if patients else None,
            professional_recipients=tuple(r.address for r in recipients if r.professional),
            message_id=message_id or f"<{uuid.uuid4().hex}@{self._config.hostname}>",
            replied_ids=policy.replied_ids(
                parse_msg_ids(headers.get("In-Reply-To")), parse_msg_ids(headers.get("References"))
            ),
            subject=headers.get("Subject"),
            ends=policy.ends_conversation(headers.get("Subject"), headers.get("X-MSS-MES")),
        )

    def _enqueue(
        self,
        tx: Tx,
        blob_id: int,
        queue_id: str,
        sender: Sender,
        remote: Sequence[Recipient],
        mail_dsn: MailDSN | None,
    ) -> None:
        now = int(self._clock())
        enqueue(
            tx,
            blob_id=blob_id,
            queue_id=queue_id,
            mail_from=sender.address,
            recipients=[
                QueuedRecipient(
                    r.address,
                    r.address.rpartition("@")[2],
                    notify=_notify_text(r),
                    orcpt=r.dsn.orcpt,
                )
                for r in remote
            ],
            ret=mail_dsn.ret if mail_dsn else None,
            envid=mail_dsn.envid if mail_dsn else None,
            now=now,
            expires=now + self._config.relay_expire_days * 86400,
        )

    async def _success_notices(
        self, sender: Sender, local: Sequence[Recipient], final: bytes, mail_dsn: MailDSN | None
    ) -> None:
        """NOTIFY=SUCCESS (RFC 3461 §4.1) for recipients delivered here."""
        wanted = [r for r in local if r.dsn.wants("SUCCESS")]
        if not wanted or not sender.address:
            return
        now = dt.datetime.now(dt.UTC)
        report = build_dsn(
            reporting_mta=self._config.hostname,
            to=sender.address,
            original=final,
            statuses=[
                RecipientStatus(r.address, "delivered", "2.0.0", original_recipient=r.dsn.orcpt)
                for r in wanted
            ],
            ret=mail_dsn.ret if mail_dsn else None,
            envid=mail_dsn.envid if mail_dsn else None,
            arrival=now,
            now=now,
        )
        await self._reports.send(sender.address, report)


def _notify_text(recipient: Recipient) -> str | None:
    dsn = recipient.dsn
    if not dsn.notify_given:
        return None
    return ",".join(sorted(dsn.notify)) if dsn.notify else "NEVER"


def _field(block: bytes, name: str) -> str | None:
    return parse_headers(block).get(name) if block else None


def _clean(text: str) -> str:
    return "".join(c for c in text if 32 < ord(c) < 127 and c not in "()")[:100] or "unknown"
