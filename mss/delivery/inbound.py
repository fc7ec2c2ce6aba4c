"""The delivery pipeline: from an accepted envelope and its bytes to durable storage.

    identity → recipients (checks.py, at MAIL and RCPT)
    → parse, once (header size checked first): headers, MIME tree, attachments
    → named steps, each returning the delivery or raising its `Rejection`:
      submission headers (From owned by the author; Message-ID/Date added)
      → trace (Received; DKIM verified on the MX) → conversation facts
      → DMP documents (XDM invisible to the patient refused; hidden from the legal
        representatives: the patient's copy marked `HIDDEN_FROM_REPRESENTATIVES`)
    → commit, one transaction: local copies, the conversation rules decided and
      recorded (policy.py), relay rows and DMP deposit rows (the outbox); a retry
      of a message stored in the last 15 minutes stores nothing (retries.py)
    ─► 250 (only now); DSN "delivered" if asked

Every door (SMTP submission, the MX, the patient space's web replies) goes through
`Pipeline.accept`, so the national rules hold whatever the door.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from email.utils import format_datetime
from typing import Any, TypeVar

from mss import metrics
from mss.core.dsn import MailDSN, RcptDSN
from mss.core.mime import (
    Attachment,
    ParsedMessage,
    find_body_start,
    leaves,
    parse_address_list,
    parse_message,
    with_prefix,
)
from mss.delivery import deposits, policy, retries
from mss.delivery.authors import check_mx_authors, check_submission_authors
from mss.delivery.checks import Checks, Door, Recipient, RecipientKind, Sender
from mss.delivery.config import DeliveryConfig
from mss.delivery.dsn import RecipientStatus, build_dsn
from mss.delivery.reports import ReportSender
from mss.delivery.to_patient import documents_to_patient
from mss.dmp.mail import XDMSummary
from mss.errors import Rejection
from mss.notify import bounces
from mss.notify.email import bounce_token
from mss.security.auth import LoginIdentity
from mss.security.dkim import DKIMResult, TxtLookup, authentication_results, verify_all
from mss.security.pki import CertIdentity
from mss.store.api import Store
from mss.store.mailboxes import Delivered, Target
from mss.store.notifications import add_mail_webhooks, add_notification
from mss.store.queue import QueuedRecipient, enqueue
from mss.store.space_mail import HIDDEN_FROM_REPRESENTATIVES
from mss.store.sql import Tx

log = logging.getLogger(__name__)
T = TypeVar("T")

# Above this size, parsing and encryption run on a thread to keep the loop responsive.
OFF_LOOP_SIZE = 256 * 1024

# Once only (RFC 5322 §3.6, RFC 2045, ANS): twice, readers may each show another author,
# subject or thread, and the rules ([FIN], conversations, MDN) may judge the one not shown
ONCE_ONLY = (
    "from", "sender", "reply-to", "to", "cc", "bcc", "date", "subject", "message-id",
    "in-reply-to", "references", "mime-version", "content-type", "content-transfer-encoding",
    "disposition-notification-to", "x-mss-mes",
)  # fmt: skip
RETRIES_PURGE_EVERY = 300  # seconds between two purges of the retry window's digests
TOO_MANY_FIELDS = Rejection(552, "5.3.4", "Trop de champs d'en-tête (too many header fields)")


def _twice(name: str) -> Rejection:
    field = name.title()
    return Rejection(550, "5.6.0", f"En-tête {field} en double ({field} header twice)")


HEADER_TOO_BIG = Rejection(552, "5.3.4", "En-tête trop volumineux (header section too large)")
DKIM_FAILED = Rejection(
    550, "5.7.20", "Aucune signature DKIM valide (no passing DKIM signature found, RFC 7372)"
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
    """What the transaction of one message produced."""

    queue_id: str
    local: int  # copies in local mailboxes
    relayed: int  # relay rows (recipients at other operators)
    conversation_id: int | None
    deposits: int = 0  # DMP deposit rows (patients whose DMP receives the documents)
    retry: bool = False  # the same message stored within the window: nothing stored now


@dataclass(slots=True)
class Delivery:
    """One message on its way in: what the door gave, and what each step added."""

    session: SessionInfo
    sender: Sender
    recipients: list[Recipient]
    raw: bytes
    mail_dsn: MailDSN | None
    queue_id: str
    message: ParsedMessage  # the one parse of `raw`: headers, part tree
    attachments: list[Attachment]  # its leaves: names, types, where their bytes are
    prefix: bytes = b""  # header lines put before `raw` (trace, added fields)
    message_id: str | None = None  # the Message-ID added at submission, if any
    facts: policy.MessageFacts | None = None
    patients: list[str] = field(default_factory=list)  # DMPs to feed
    xdm: XDMSummary | None = None  # its XDM packages, for a mail to a patient
    dkim: list[DKIMResult] = field(default_factory=list)  # the MX's verification

    @property
    def local(self) -> list[Recipient]:
        return [r for r in self.recipients if r.kind is RecipientKind.LOCAL and r.mailbox_id]

    @property
    def remote(self) -> list[Recipient]:
        return [r for r in self.recipients if r.kind is RecipientKind.REMOTE]

    @property
    def final(self) -> bytes:
        return self.prefix + self.raw


def _target(r: Recipient, xdm: XDMSummary | None) -> Target:
    """A local copy; a patient's is marked when its XDM holds a document hidden from the
    legal representatives (the patient space hides it from them, DOMAIN.md §5)."""
    assert r.mailbox_id is not None
    if r.patient_ins and xdm is not None and xdm.hidden_from_representatives:
        return Target(r.mailbox_id, 0, HIDDEN_FROM_REPRESENTATIVES)
    return Target(r.mailbox_id)


# A step returns the delivery (it may add to it) or raises its Rejection.
Step = Callable[[Delivery], Awaitable[Delivery]]


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
        self._retries_purged = 0
        self.steps: tuple[Step, ...] = (
            self.submission_headers, self.trace, self.mx_authors, self.conversation_facts,
            self.dmp_documents,
        )  # fmt: skip

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
        delivery = await self._parse(session, sender, recipients, raw, mail_dsn)
        if any(r.kind is RecipientKind.BOUNCE for r in delivery.recipients):
            await self._read_bounces(delivery)
            if not delivery.recipients:
                return Accepted(delivery.queue_id, 0, 0, None)
        for step in self.steps:
            delivery = await step(delivery)
        accepted = await self._commit(delivery)
        metrics.MESSAGES_ACCEPTED.labels(session.door.value).inc()
        if accepted.retry:
            log.info("retry of %s from %s: stored once already, not again (%s)",
                     accepted.queue_id, sender.address or "<>", session.door.value)  # fmt: skip
            return accepted
        log.info(
            "accepted %s from %s: %d local, %d to relay (%s)",
            accepted.queue_id, sender.address or "<>", accepted.local, accepted.relayed,
            session.door.value,
        )  # fmt: skip
        await self._success_notices(delivery)
        return accepted

    async def _parse(
        self,
        session: SessionInfo,
        sender: Sender,
        recipients: Sequence[Recipient],
        raw: bytes,
        mail_dsn: MailDSN | None,
    ) -> Delivery:
        """The one parse of the message, its header section's size checked first."""
        if find_body_start(raw) > self._config.max_header_size:
            raise HEADER_TOO_BIG
        unique = list({r.address: r for r in recipients}.values())
        message = await _off_loop(raw, parse_message)
        if message.headers.truncated:  # fields past the limit would go unchecked
            raise TOO_MANY_FIELDS
        for name in ONCE_ONLY:
            if message.headers.count(name) > 1:
                raise _twice(name)
        queue_id = secrets.token_hex(6).upper()
        attachments = leaves(message.body)
        return Delivery(session, sender, unique, raw, mail_dsn, queue_id, message, attachments)

    async def _read_bounces(self, d: Delivery) -> None:
        """DSNs about patients' notices are read (the address marked failing), never
        stored: they leave the recipients of this delivery."""
        tokens = [bounce_token(r.address, self._config.notify_return_path) or ""
                  for r in d.recipients if r.kind is RecipientKind.BOUNCE]  # fmt: skip
        d.recipients = [r for r in d.recipients if r.kind is not RecipientKind.BOUNCE]
        marked = await bounces.record(self._store, tokens, bounces.failures(d.raw, d.attachments))
        log.info("a DSN about notice(s) %s: %d address(es) marked failing", ",".join(tokens),
                 marked)  # fmt: skip

    # --- steps ---------------------------------------------------------------------------

    async def submission_headers(self, d: Delivery) -> Delivery:
        """Submission and the patient space: From owned by the author; Message-ID and
        Date added when missing (RFC 6409 §8)."""
        if d.session.door is Door.MX:
            return d
        check_submission_authors(d.message, d.sender.address)
        added = b""
        if d.message.headers.get("Message-ID") is None:
            d.message_id = f"<{uuid.uuid4().hex}@{self._config.hostname}>"
            added += f"Message-ID: {d.message_id}\r\n".encode()
        if d.message.headers.get("Date") is None:
            added += f"Date: {format_datetime(dt.datetime.now(dt.UTC))}\r\n".encode()
        d.prefix = added + d.prefix
        return d

    async def trace(self, d: Delivery) -> Delivery:
        """Received (RFC 5321 §4.4) and, on the MX, Authentication-Results (RFC 8601)."""
        session = d.session
        protocol = "ESMTP" + ("S" if session.tls else "") + ("A" if session.login else "")
        for_clause = f"\r\n\tfor <{d.recipients[0].address}>" if len(d.recipients) == 1 else ""
        received = (
            f"Received: from {_clean(session.helo)} ([{session.peer_ip or 'unknown'}])\r\n"
            f"\tby {self._config.hostname} (mss) with {protocol} id {d.queue_id}{for_clause};\r\n"
            f"\t{format_datetime(dt.datetime.now(dt.UTC))}\r\n"
        ).encode()
        if session.door is not Door.MX or self._dkim_lookup is None:
            d.prefix = received + d.prefix
            return d
        results = await asyncio.get_running_loop().run_in_executor(
            self._cpu_pool, verify_all, d.raw, self._dkim_lookup
        )
        d.dkim = results
        if self._config.reject_dkim_failures and not any(r.result == "pass" for r in results):
            raise DKIM_TEMPERROR if any(r.result == "temperror" for r in results) else DKIM_FAILED
        header = authentication_results(self._config.hostname, results)
        d.prefix = (header + "\r\n").encode() + received + d.prefix
        return d

    async def mx_authors(self, d: Delivery) -> Delivery:
        """From another operator: one author, aligned with the envelope, that the peer's
        certificate or a DKIM signature speaks for; a null sender carries reports only."""
        if d.session.door is Door.MX:
            check_mx_authors(
                envelope_sender=d.sender.address, recipients=d.recipients, message=d.message,
                peer=d.session.peer, dkim=d.dkim, trust=self.checks.trust,
            )  # fmt: skip
        return d

    async def conversation_facts(self, d: Delivery) -> Delivery:
        """What the conversation rules need to know (decided in the transaction)."""
        message_id = d.message.message_id or d.message_id
        patients = {r.patient_ins for r in d.recipients if r.patient_ins is not None}
        authors = parse_address_list(d.message.headers.get("From")) or []
        name = authors[0][0] if authors and authors[0][0] else d.sender.display_name
        facts = policy.MessageFacts(
            sender=d.sender.address,
            sender_professional=d.sender.professional,
            sender_patient_ins=d.sender.patient_ins,
            sender_name=name,
            patient_ins=next(iter(patients)) if patients else None,
            professional_recipients=tuple(r.address for r in d.recipients if r.professional),
            message_id=message_id or f"<{uuid.uuid4().hex}@{self._config.hostname}>",
            replied_ids=policy.replied_ids(d.message.in_reply_to, d.message.references),
            subject=d.message.subject,
            ends=policy.ends_conversation(d.message.subject, d.message.headers.get("X-MSS-MES")),
        )
        d.facts = facts
        return d

    async def dmp_documents(self, d: Delivery) -> Delivery:
        """The local patients whose DMP receives this professional's attachments; refuses
        a mail holding a document invisible to the patient, declared by an XDM's METADATA
        or by a CDA's confidentialityCode (DOMAIN.md §5), and an XDM that cannot be read
        (permanent: the same bytes never become readable; the summary cannot vouch for it).
        Whoever sends (a null sender's report too): only a professional's mail deposits."""
        patients = [r.patient_ins for r in d.local if r.patient_ins]
        if not patients:
            return d
        xdm = await _off_loop(
            d.raw, lambda raw: documents_to_patient(raw, d.message, d.attachments)
        )
        if not d.sender.professional:
            return d
        if not d.message.body.is_multipart and not xdm.packages and not xdm.cdas:
            return d  # a text: nothing to deposit
        d.patients, d.xdm = patients, xdm
        return d

    # --- the transaction ---------------------------------------------------------------------

    async def _commit(self, d: Delivery) -> Accepted:
        """One transaction: the copies, the conversation decided and recorded, the outbox."""
        stored = with_prefix(d.message, d.prefix, d.raw)
        final = d.final
        prepared = await _off_loop(final, lambda raw: self._store.prepare(raw, stored))
        decided: dict[str, Any] = {}
        now, stamp = dt.datetime.now(dt.UTC), int(self._clock())
        key = retries.digest(d.message.message_id, d.sender.address,
                             (r.address for r in d.recipients), d.raw)  # fmt: skip
        await self._purge_retries(stamp)

        def decide(tx: Tx) -> None:  # before anything is written: may refuse this message
            retries.seen(tx, key, stamp)  # a retry is answered as the first time was
            decided["plan"] = self._decide(tx, d, now)
            retries.remember(tx, key, d.queue_id, stamp)  # only once the rules let it in

        def also(tx: Tx, delivered: Delivered) -> None:
            decided["conversation"] = self._record(tx, d, decided.get("plan"))
            if d.remote:
                self._enqueue(tx, delivered.blob_id, d)
            for ins in d.patients:  # the DMP deposit, done after this commit (outbox)
                deposits.add(tx, delivered.blob_id, ins, d.sender.address, int(self._clock()))
            self._events(tx, d, delivered, decided.get("plan"))

        targets = [_target(r, d.xdm) for r in d.local if r.mailbox_id]
        try:
            await self._store.deliver(prepared, targets, also=also, decide=decide)
        except retries.AlreadyStored as first:
            return Accepted(first.queue_id, 0, 0, None, retry=True)
        return Accepted(
            d.queue_id, len(targets), len(d.remote), decided.get("conversation"), len(d.patients)
        )

    async def _purge_retries(self, now: int) -> None:
        """Every few minutes, forget the digests of messages past the retry window."""
        if now - self._retries_purged >= RETRIES_PURGE_EVERY:
            self._retries_purged = now
            await self._store.write(lambda tx: retries.purge(tx, now))

    def _decide(self, tx: Tx, d: Delivery, now: dt.datetime) -> policy.Plan | None:
        """The conversation rules, decided once, against the state of this transaction."""
        facts = d.facts
        if facts is None or not facts.concerns_patient:
            return None
        config = self._config
        return policy.plan(
            tx.conn, facts, config.reply_window_days, now,
            new_messages=config.new_message_to_professionals,
        )  # fmt: skip

    @staticmethod
    def _events(tx: Tx, d: Delivery, delivered: Delivered, plan: policy.Plan | None) -> None:
        """What to tell, after the commit: each patient of a new message (and of an
        exchange a professional ended), each applicative mailbox that has a webhook."""
        for r in d.local:
            if r.patient_ins and r.patient_ins != d.sender.patient_ins:
                add_notification(tx, "new_message", r.patient_ins)
        if plan is not None and plan.kind == "professional" and plan.ends:
            add_notification(tx, "conversation_ended", plan.patient_ins)
        boxes = {r.mailbox_id: r.address for r in d.local if r.professional and r.mailbox_id}
        copies = [(boxes[c.mailbox_id], c.uid) for c in delivered.copies if c.mailbox_id in boxes]
        if copies:
            add_mail_webhooks(tx, copies)

    @staticmethod
    def _record(tx: Tx, d: Delivery, plan: policy.Plan | None) -> int | None:
        if plan is None or d.facts is None:
            return None
        return policy.record(tx, d.facts, plan)

    def _enqueue(self, tx: Tx, blob_id: int, d: Delivery) -> None:
        now = int(self._clock())
        enqueue(
            tx,
            blob_id=blob_id,
            queue_id=d.queue_id,
            mail_from=d.sender.address,
            recipients=[
                QueuedRecipient(
                    r.address,
                    r.address.rpartition("@")[2],
                    notify=_notify_text(r),
                    orcpt=r.dsn.orcpt,
                )
                for r in d.remote
            ],
            ret=d.mail_dsn.ret if d.mail_dsn else None,
            envid=d.mail_dsn.envid if d.mail_dsn else None,
            now=now,
            expires=now + self._config.relay_expire_days * 86400,
        )

    async def _success_notices(self, d: Delivery) -> None:
        """NOTIFY=SUCCESS (RFC 3461 §4.1) for recipients delivered here."""
        wanted = [r for r in d.local if r.dsn.wants("SUCCESS")]
        if not wanted or not d.sender.address:
            return
        now = dt.datetime.now(dt.UTC)
        report = build_dsn(
            reporting_mta=self._config.hostname,
            to=d.sender.address,
            original=d.final,
            statuses=[
                RecipientStatus(r.address, "delivered", "2.0.0", original_recipient=r.dsn.orcpt)
                for r in wanted
            ],
            ret=d.mail_dsn.ret if d.mail_dsn else None,
            envid=d.mail_dsn.envid if d.mail_dsn else None,
            arrival=now,
            now=now,
        )
        await self._reports.send(d.sender.address, report)


async def _off_loop(raw: bytes, work: Callable[[bytes], T]) -> T:
    """Parsing and encryption of a big message run on a thread (the loop stays free)."""
    if len(raw) > OFF_LOOP_SIZE:
        return await asyncio.to_thread(work, raw)
    return work(raw)


def _notify_text(recipient: Recipient) -> str | None:
    dsn = recipient.dsn
    if not dsn.notify_given:
        return None
    return ",".join(sorted(dsn.notify)) if dsn.notify else "NEVER"


def _clean(text: str) -> str:
    return "".join(c for c in text if 32 < ord(c) < 127 and c not in "()")[:100] or "unknown"
