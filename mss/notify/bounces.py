"""DSNs about patients' e-mail notices (RFC 3464): the address is marked failing.

A notice goes out with the return path `local+<notice id>@domain` (VERP, see
`email.py`); the smarthost, or the server after it, sends a DSN there when the
address does not take it. The MX hands such DSNs here instead of a mailbox: each
failed recipient that is the notice's own destination is marked failing (the next
notices use another channel) and the notice's log line says `bounced`. A DSN that
names another address, or a notice that does not exist, changes nothing.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from mss.core.mime import Attachment, parse_headers
from mss.store import notify as notes
from mss.store.api import Store
from mss.store.sql import Tx

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Failure:
    recipient: str
    status: str
    diagnostic: str


def failures(raw: bytes, attachments: list[Attachment]) -> list[Failure]:
    """The recipients a delivery-status report says failed (RFC 3464 §2.3)."""
    out: list[Failure] = []
    for leaf in attachments:
        if leaf.content_type not in ("message/delivery-status", "message/global-delivery-status"):
            continue
        blocks = leaf.payload(raw).replace(b"\r\n", b"\n").split(b"\n\n")
        for block in blocks[1:]:  # the first block is about the message
            fields = parse_headers(block + b"\n")
            if (fields.get("Action") or "").strip().lower() != "failed":
                continue
            recipient = (fields.get("Final-Recipient") or "").partition(";")[2].strip()
            if recipient:
                out.append(Failure(recipient.lower(), fields.get("Status") or "",
                                   fields.get("Diagnostic-Code") or ""))  # fmt: skip
    return out


async def record(store: Store, notice_ids: list[str], found: list[Failure]) -> int:
    """Mark failing what the DSN is about; return how many addresses were marked."""
    now = int(time.time())
    return await store.write(lambda tx: _record(tx, notice_ids, found, now))


def _record(tx: Tx, notice_ids: list[str], found: list[Failure], now: int) -> int:
    marked = 0
    for notice_id in notice_ids:
        entry = notes.entry_of_notice(tx.conn, notice_id)
        if entry is None or entry.channel != "email":
            continue
        for failure in found:
            if notes.mask(failure.recipient) != entry.destination:
                continue  # not the address this notice went to
            reason = f"bounced: {failure.status} {failure.diagnostic}".strip()
            notes.mark_failing(tx, failure.recipient, reason, now)
            notes.set_status(tx, notice_id, "bounced", reason, now)
            marked += 1
    return marked
