"""Deposit into the DMP the documents of mail sent to patients, and answer with MDNs.

The pipeline adds a `dmp_deposit` outbox row in the very transaction that
delivers a professional's mail with attachments to a patient. The runner hands
it to `DepositHandler`, which extracts the documents (`dmp/mail.py`) and deposits
them (`dmp/service.py`) *in the same transaction that completes the row*: a crash
before that commit leaves the row pending (deposited at the next claim); a crash
after it cannot deposit twice, and a document already in the DMP (same unique
id) is never stored again.

When the mail asks for it (`Disposition-Notification-To` naming its sender: see
`mdn.mdn_target`), an `mdn` row is added in that transaction too, saying
`processed` (documents were deposited) or the error with its ANS code;
`MdnHandler` sends it (delivery/mdn.py), at least once; one that fails ten times is
dead-lettered with a log line (`mss outbox retry` sends it again). A deposit given
up that way still answers the sender who asked: an MDN with error 906.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from mss import metrics
from mss.annuaire import lookup as annuaire
from mss.core.digits import ascii_digits
from mss.core.mime import Headers, find_body_start, parse_headers
from mss.delivery.mdn import build_mdn, mdn_target
from mss.delivery.reports import ReportSender
from mss.dmp import service
from mss.dmp.access import Professional
from mss.dmp.errors import DMPError, DocumentError
from mss.dmp.mail import MailDocuments, documents_of_mail
from mss.store import outbox
from mss.store.accounts import get_account
from mss.store.api import Store
from mss.store.outbox import NewItem, OutboxItem
from mss.store.ports import Done, Outcome, RetryPolicy
from mss.store.sql import Conn, Tx

log = logging.getLogger(__name__)
DEPOSIT, MDN = "dmp_deposit", "mdn"
GAVE_UP = "Erreur technique : intégration impossible après plusieurs essais"
NOTHING = "nothing to deposit"


def add(tx: Tx, blob_id: int, ins: str, sender: str, now: int) -> None:
    """In the delivery transaction: the documents of this message are to be deposited."""
    outbox.add(tx, DEPOSIT, [NewItem({"ins": ins, "sender": sender}, blob_id=blob_id)], now)


def _author(conn: Conn, sender: str) -> Professional:
    """Who deposits: the national id and profession of the sender, from the local account
    or the annuaire (where professions come from); else the address itself."""
    account = get_account(conn, sender)
    national_id = account.national_id if account is not None else None
    name = account.display_name if account is not None else ""
    listed = annuaire.mailbox(conn, sender)
    if listed is not None:
        national_id = national_id or listed["national_id"]
        name = name or " ".join(x for x in (listed["given"], listed["family"]) if x)
    profession = ""
    if national_id:
        pro = annuaire.professional(conn, national_id)
        if pro is not None and pro["profession"]:
            profession = pro["profession"]["code"]
    if not profession and listed is not None and listed["profession"]:
        profession = listed["profession"]["code"]
    return Professional(national_id or sender, profession, name or sender)


class TooManyDocuments(DocumentError):
    """More documents in one mail than `[limits] max_documents_per_mail` (no ANS figure:
    ours): none is deposited, the MDN says why (906, permanent: the mail stays)."""

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(
            f"{count} documents dans ce message, au plus {limit} (too many documents in one mail)"
        )

    @property
    def mdn_label(self) -> str:
        return f"Autre erreur : {self.text}"


def check_documents(documents: Sequence[object], limit: int) -> None:
    """`TooManyDocuments` past `limit` (0: no limit): the deposit and `mss dmp check`."""
    if 0 < limit < len(documents):
        raise TooManyDocuments(len(documents), limit)


class DepositHandler:
    """The outbox handler of kind `dmp_deposit`: one mail's documents per row, at most
    `max_documents` of them (0: no limit).

    Reading the mail is pure and its bytes are hostile: whatever it raises (an
    unknown encoding, a broken archive…) is this mail's permanent error, answered by
    an MDN 906 and logged with the row id, never a retry that holds the row for days
    (only the store, an outage, makes the runner retry). A mail that carries nothing
    to deposit (no XDM, CDA or PDF: a .txt, an image) gets no MDN: there is nothing to
    acknowledge, as for a mail without attachments (DOMAIN.md §5's acknowledgement
    is the integration of documents)."""

    kind = DEPOSIT
    policy = RetryPolicy(base=30, cap=3600, max_attempts=8, lease=300, batch=1, concurrency=2)

    def __init__(
        self,
        store: Store,
        *,
        patient_domain: str,
        max_documents: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._patient_domain = patient_domain
        self._max_documents = max_documents
        self._clock = clock

    async def handle(self, items: Sequence[OutboxItem]) -> list[Outcome]:
        return [await self._deposit(item) for item in items]

    async def _deposit(self, item: OutboxItem) -> Outcome:
        assert item.blob_id is not None
        ins, sender = item.payload["ins"], item.payload["sender"]
        raw = await self._store.blob_bytes(item.blob_id)
        headers = parse_headers(raw, 0, find_body_start(raw))
        mdn_to = mdn_target(headers, sender, self._patient_domain)
        author = await self._store.read(lambda c: _author(c, sender))
        try:
            found = await asyncio.to_thread(_documents, item.id, raw, ins)
            check_documents(found.documents, self._max_documents)
            count = await self._store.write(
                lambda tx: self._store_documents(tx, item, author, found.documents, headers, mdn_to)
            )
        except DMPError as exc:
            text = f"{exc.name} {exc.mdn_code}: {exc}"
            error = f"{exc.mdn_code}^{exc.mdn_label}"
            await self._store.write(lambda tx: self._finish(tx, item, text, mdn_to, error))
            log.info("DMP deposit row %d to patient %s refused: %s", item.id, ins, text)
            metrics.DMP_DEPOSITS.labels("refused", str(exc.mdn_code)).inc()
            return Done(text)
        metrics.DMP_DEPOSITS.labels("deposited" if count else "nothing", "").inc()
        log.info("DMP deposit row %d to patient %s: %d document(s) deposited%s", item.id, ins,
                 count, "" if count else " (nothing to deposit, no MDN)")  # fmt: skip
        return Done(f"deposited {count} document(s)" if count else NOTHING)

    async def on_dead(self, items: Sequence[OutboxItem]) -> None:
        """Given up: the sender who asked for an MDN hears of it (906, technical error)."""
        for item in items:
            await self._gave_up(item)

    async def _gave_up(self, item: OutboxItem) -> None:
        assert item.blob_id is not None
        raw = await self._store.blob_bytes(item.blob_id)
        headers = parse_headers(raw, 0, find_body_start(raw))
        mdn_to = mdn_target(headers, item.payload["sender"], self._patient_domain)
        if mdn_to:
            await self._store.write(lambda tx: self._add_mdn(tx, item, mdn_to, f"906^{GAVE_UP}"))

    def _store_documents(
        self, tx: Tx, item: OutboxItem, author: Professional, documents: Any, headers: Headers,
        mdn_to: str | None,
    ) -> int:  # fmt: skip
        if not documents:
            outbox.complete(tx, item, NOTHING, now=int(self._clock()))
            return 0
        results = service.deposit(
            tx, self._store.blobs, item.payload["ins"], author, documents,
            source="mail", source_message_id=headers.get("Message-ID"),
        )  # fmt: skip
        self._finish(tx, item, f"deposited {len(results)} document(s)", mdn_to)
        return len(results)

    def _finish(
        self, tx: Tx, item: OutboxItem, result: str, mdn_to: str | None, error: str | None = None
    ) -> None:
        """Complete the row and, when the mail asked for it, add the MDN to send."""
        outbox.complete(tx, item, result, now=int(self._clock()))
        if mdn_to:
            self._add_mdn(tx, item, mdn_to, error)

    def _add_mdn(self, tx: Tx, item: OutboxItem, mdn_to: str, error: str | None) -> None:
        payload = {"to": mdn_to[:254], "ins": item.payload["ins"], "error": error,
                   "deposit": item.id}  # fmt: skip
        outbox.add(tx, MDN, [NewItem(payload, blob_id=item.blob_id)], int(self._clock()))


def _documents(row_id: int, raw: bytes, ins: str) -> MailDocuments:
    """The documents of the mail; anything its hostile bytes make the reading raise is
    its permanent error (906), logged with the row id."""
    try:
        return documents_of_mail(raw, ins)
    except DMPError:
        raise
    except Exception as exc:  # pure reading of hostile bytes: the fault is the mail's
        log.warning("DMP deposit row %d: the mail cannot be read (%s: %s)", row_id,
                    type(exc).__name__, exc, exc_info=True)  # fmt: skip
        raise DocumentError(f"unreadable document ({type(exc).__name__})") from None


class MdnHandler:
    """The outbox handler of kind `mdn`: the acknowledgement of a deposit (RFC 8098)."""

    kind = MDN
    policy = RetryPolicy(base=30, cap=3600, max_attempts=10, lease=120, batch=10)

    def __init__(self, store: Store, reports: ReportSender, *, hostname: str,
                 patient_domain: str) -> None:  # fmt: skip
        self._store = store
        self._reports = reports
        self._hostname = hostname
        self._patient_domain = patient_domain

    async def handle(self, items: Sequence[OutboxItem]) -> list[Outcome]:
        return [await self._send(item) for item in items]

    async def on_dead(self, items: Sequence[OutboxItem]) -> None:
        """Nothing more to tell: the runner's log line says which MDNs were given up."""

    async def _send(self, item: OutboxItem) -> Outcome:
        assert item.blob_id is not None
        raw = await self._store.blob_bytes(item.blob_id)
        headers = parse_headers(raw, 0, find_body_start(raw))
        to, ins = item.payload["to"], item.payload["ins"]
        mdn = build_mdn(
            hostname=self._hostname, final_recipient=f"{ins}@{self._patient_domain}",
            to=to, original_subject=headers.get("Subject") or "",
            original_message_id=headers.get("Message-ID"),
            error=_parse_error(item.payload.get("error")),
        )  # fmt: skip
        sent = await self._reports.send(to, mdn)
        error = item.payload.get("error")
        metrics.DMP_MDNS.labels(error.partition("^")[0] if error else "processed").inc()
        log.info("MDN of DMP deposit row %s to %s: %s%s", item.payload.get("deposit", "?"), to,
                 f"error {error.partition('^')[0]}" if error else "processed",
                 "" if sent else " (nowhere to send it)")  # fmt: skip
        return Done("sent" if sent else "nowhere to send it")


def _parse_error(value: str | None) -> tuple[int, str] | None:
    if not value:
        return None
    code, _, label = value.partition("^")
    return (int(code), label) if ascii_digits(code) else (906, label)
