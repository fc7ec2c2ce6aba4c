"""Deposit into the DMP the documents of mail sent to patients (outbox pattern).

The pipeline writes a `dmp_deposit_outbox` row in the very transaction that
delivers a professional's mail with attachments to a patient; this runner
takes the rows after the commit, extracts the documents (`dmp/mail.py`) and
deposits them (`dmp/service.py`) *in the same transaction that marks the row
done*. A crash before that commit leaves the row pending (the deposit is done
at the next start); a crash after it cannot deposit twice, and a document
already in the DMP (same unique id) is never stored again.

When the mail asks for it (`Disposition-Notification-To`), an MDN answers
`processed` or the error with its ANS code (delivery/mdn.py). What it will say
commits with the deposit; it is sent after, and marked sent after that: a
crash in between sends it again at the next run (at least once, never lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, or_, select, update

from mss.annuaire import lookup as annuaire
from mss.core.mime import find_body_start, parse_headers
from mss.delivery.mdn import build_mdn, requested_by
from mss.delivery.reports import ReportSender
from mss.dmp import service
from mss.dmp.access import Professional
from mss.dmp.errors import DMPError
from mss.dmp.mail import documents_of_mail
from mss.errors import StoreError
from mss.store.accounts import get_account
from mss.store.api import Store
from mss.store.db import Tx
from mss.store.models import deposit_outbox_table

log = logging.getLogger(__name__)
o = deposit_outbox_table.c
POLL = 1.0


@dataclass(frozen=True)
class Outcome:
    outbox_id: int
    deposited: int
    error: tuple[int, str] | None


def add(tx: Tx, blob_id: int, ins: str, sender: str) -> None:
    """In the delivery transaction: the documents of this message are to be deposited."""
    tx.conn.execute(deposit_outbox_table.insert().values(blob_id=blob_id, ins=ins, sender=sender))


def pending(conn: Connection, limit: int = 20) -> list[Any]:
    """Rows to deposit, and rows whose MDN is still to send."""
    query = select(o.id, o.blob_id, o.ins, o.sender, o.done_at, o.mdn_to, o.mdn_error).where(
        or_(o.done_at.is_(None), and_(o.mdn_to.is_not(None), o.mdn_sent_at.is_(None)))
    )
    return list(conn.execute(query.order_by(o.id).limit(limit)).all())


def _author(conn: Connection, sender: str) -> Professional:
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


class DepositRunner:
    def __init__(
        self, store: Store, reports: ReportSender, *, hostname: str, patient_domain: str
    ) -> None:
        self._store = store
        self._reports = reports
        self._hostname = hostname
        self._patient_domain = patient_domain
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                await self.process_pending()
            except StoreError:
                log.exception("DMP deposits: the store failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL)
            self._wake.clear()

    async def process_pending(self) -> list[Outcome]:
        done = []
        while rows := await self._store.read(pending):
            for row in rows:
                done.append(await self._process(row))
        return done

    async def _process(self, row: Any) -> Outcome:
        raw = await self._store.blob_bytes(row.blob_id)
        headers = parse_headers(raw, 0, find_body_start(raw))
        outcome = Outcome(row.id, 0, _parse_error(row.mdn_error))
        mdn_to = row.mdn_to
        if row.done_at is None:
            outcome = await self._deposit(row, raw, headers)
            mdn_to = requested_by(headers)
        if mdn_to:
            mdn = build_mdn(
                hostname=self._hostname, final_recipient=f"{row.ins}@{self._patient_domain}",
                to=mdn_to, original_subject=headers.get("Subject") or "",
                original_message_id=headers.get("Message-ID"), error=outcome.error,
            )  # fmt: skip
            await self._reports.send(mdn_to, mdn)
            await self._store.write(
                lambda tx: tx.conn.execute(
                    update(deposit_outbox_table)
                    .where(o.id == row.id)
                    .values(mdn_sent_at=dt.datetime.now(dt.UTC))
                )
            )
        return outcome

    async def _deposit(self, row: Any, raw: bytes, headers: Any) -> Outcome:
        """Deposit and mark the row done in one transaction (with the MDN to send)."""
        author = await self._store.read(lambda c: _author(c, row.sender))
        mdn_to = requested_by(headers)
        try:
            found = await asyncio.to_thread(documents_of_mail, raw, row.ins)
            message_id = headers.get("Message-ID")

            def deposit_and_mark(tx: Tx) -> int:
                results = service.deposit(
                    tx, self._store.cipher, row.ins, author, found.documents,
                    source="mail", source_message_id=message_id,
                )  # fmt: skip
                _mark(tx, row.id, f"deposited {len(results)} document(s)", mdn_to, None)
                return len(results)

            return Outcome(row.id, await self._store.write(deposit_and_mark), None)
        except DMPError as exc:
            error = (exc.mdn_code, exc.mdn_label)
            text = f"{exc.name} {exc.mdn_code}: {exc}"
            await self._store.write(
                lambda tx: _mark(tx, row.id, text, mdn_to, f"{error[0]}^{error[1]}")
            )
            log.info("DMP deposit of a mail to %s refused: %s", row.ins, text)
            return Outcome(row.id, 0, error)


def _parse_error(value: str | None) -> tuple[int, str] | None:
    if not value:
        return None
    code, _, label = value.partition("^")
    return (int(code), label) if code.isdigit() else (906, label)


def _mark(tx: Tx, outbox_id: int, result: str, mdn_to: str | None, mdn_error: str | None) -> None:
    values = {
        "done_at": dt.datetime.now(dt.UTC),
        "result": result[:2000],
        "mdn_to": mdn_to[:254] if mdn_to else None,
        "mdn_error": mdn_error[:300] if mdn_error else None,
    }
    tx.conn.execute(update(deposit_outbox_table).where(o.id == outbox_id).values(**values))
