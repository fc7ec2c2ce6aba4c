"""The QUOTA extension (RFC 9208): GETQUOTAROOT and GETQUOTA, read only.

Each account has one quota root, `""`, over all its mailboxes, with the account's
limits (`store/quotas.py`: its own, else the settings') as resources: STORAGE (in
units of 1024 octets, RFC 9208 §5.1), MESSAGE (§5.2) and MAILBOX (§5.3); a resource
without a limit is not listed. The operator sets the limits (`[limits]`, `mss pro
quota`): SETQUOTA is refused (no QUOTASET capability).
"""

from __future__ import annotations

from mss.imap import responses as r
from mss.imap.base import SessionBase
from mss.imap.errors import ImapError
from mss.imap.parsing.commands import Command
from mss.imap.parsing.utf7 import encode
from mss.store.quotas import Quota, Usage

ROOT = ""  # one quota root per account


class QuotaCommands(SessionBase):
    async def do_GETQUOTAROOT(self, command: Command) -> None:
        box = await self._mailbox(command.args["mailbox"])
        self.untagged(b"QUOTAROOT " + r.astring(encode(box.name)) + b' ""')
        await self._quota()

    async def do_GETQUOTA(self, command: Command) -> None:
        if command.args["root"] != ROOT:
            raise ImapError("Racine de quota inconnue (no such quota root)", code="NONEXISTENT")
        await self._quota()

    async def do_SETQUOTA(self, command: Command) -> None:
        raise ImapError(
            "Les quotas sont fixés par l'opérateur (quotas are set by the operator)",
            code="NOPERM",
        )

    async def _quota(self) -> None:
        quota, used = await self.store.quota(self._account())
        self.untagged(f'QUOTA "" ({" ".join(_resources(quota, used))})')


def _resources(quota: Quota, used: Usage) -> list[str]:
    found = []
    if quota.storage:  # RFC 9208 §5.1: units of 1024 octets, rounded up
        found.append(f"STORAGE {-(-used.storage // 1024)} {quota.storage // 1024}")
    if quota.messages:
        found.append(f"MESSAGE {used.messages} {quota.messages}")
    if quota.folders:
        found.append(f"MAILBOX {used.folders} {quota.folders}")
    return found
