"""Sending the server's own reports (DSNs, and MDNs later) to where they belong.

A report goes to a local mailbox when its recipient is hosted here, and into
the relay queue (null sender, as RFC 5321 §4.5.5 requires) when the recipient
belongs to another operator of the trust space. Reports are never sent for
reports: the caller gives up when the original sender was null.

`encoded` and `mailbox`: the header fields of a report that carry French text
(subjects, display names) are RFC 2047 encoded by the standard library
(RFC 6532 is not assumed of every reader).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from email.header import Header
from email.utils import formataddr

from mss.core.address import InvalidAddress, parse_address
from mss.delivery.config import DeliveryConfig
from mss.delivery.trust import TrustSpace
from mss.store.api import Store
from mss.store.mailboxes import Delivered, Target, inbox_ids
from mss.store.queue import QueuedRecipient, enqueue
from mss.store.sql import Tx

log = logging.getLogger(__name__)


def encoded(value: str, name: str = "Subject") -> str:
    """A header field's value, RFC 2047 encoded when not ASCII (folded with CRLF)."""
    value = value.replace("\r", " ").replace("\n", " ")
    if value.isascii():
        return value
    return Header(value, "utf-8", header_name=name).encode(linesep="\r\n")


def mailbox(name: str, address: str) -> str:
    """`"Name" <address>`, the name RFC 2047 encoded when not ASCII (RFC 5322 §3.4)."""
    return formataddr((name, address), charset="utf-8")


class ReportSender:
    def __init__(
        self,
        store: Store,
        trust: TrustSpace,
        config: DeliveryConfig,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._trust = trust
        self._config = config
        self._clock = clock

    async def send(self, to: str, message: bytes) -> bool:
        """Deliver or queue `message` for `to`; False if there is nowhere to send it."""
        try:
            address = parse_address(to)
        except InvalidAddress:
            log.warning("report for an invalid address dropped")
            return False
        target = str(address)
        if self._trust.is_local(address.domain):
            inbox = (await self._store.read(lambda c: inbox_ids(c, [target]))).get(target)
            if inbox is None:
                log.warning("report for %s dropped: no such mailbox", target)
                return False
            await self._store.deliver(message, [Target(inbox)])
            return True
        if not self._trust.trusted(address.domain):
            log.warning("report for %s dropped: outside the trust space", target)
            return False
        now = int(self._clock())
        expires = now + self._config.relay_expire_days * 86400

        def queue(tx: Tx, delivered: Delivered) -> None:
            enqueue(
                tx, blob_id=delivered.blob_id, queue_id=secrets.token_hex(6).upper(), mail_from="",
                recipients=[QueuedRecipient(target, address.domain, notify="NEVER")],
                ret=None, envid=None, now=now, expires=expires,
            )  # fmt: skip

        await self._store.deliver(message, [], also=queue)
        return True
