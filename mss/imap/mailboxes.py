"""Mailbox commands: SELECT, EXAMINE, CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE,
LIST, LSUB, STATUS, NAMESPACE (RFC 3501 §6.3, RFC 5258 LIST-EXTENDED, RFC 6154
SPECIAL-USE, RFC 2342 NAMESPACE, RFC 7162 CONDSTORE).

Names travel in modified UTF-7 (RFC 3501 §5.1.3) and are stored as UTF-8 with
`/` as the hierarchy delimiter; the store refuses what it must (`MailboxError`,
answered NO with its response code).
"""

from __future__ import annotations

import bisect
import re
from array import array
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mss.imap import responses as r
from mss.imap.base import State
from mss.imap.errors import ImapError, no_such_mailbox
from mss.imap.parsing.commands import Command
from mss.imap.parsing.utf7 import encode
from mss.imap.selected import Selected, SelectedView
from mss.store.folders import DELIMITER, MailboxInfo, normalize_name
from mss.store.imapviews import OpenedMailbox
from mss.store.mailboxes import INBOX

SPECIAL_USES = ("\\sent", "\\drafts", "\\trash", "\\junk", "\\archive", "\\all", "\\flagged")


def _recent(uids: array[int], claimed: tuple[int, int]) -> set[int]:
    """The UIDs this session sees as \\Recent: those in [first, uidnext)."""
    first, uidnext = claimed
    if not first:
        return set()
    return {u for u in uids[bisect.bisect_left(uids, first) :] if u < uidnext}


def _matcher(pattern: str) -> Callable[[str], bool]:
    """LIST wildcards: `*` matches anything, `%` anything but the delimiter."""
    regex = "".join(
        ".*" if ch == "*" else f"[^{re.escape(DELIMITER)}]*" if ch == "%" else re.escape(ch)
        for ch in pattern
    )
    compiled = re.compile(regex + r"\Z")

    def match(name: str) -> bool:
        return bool(compiled.match(name))

    return match


def _candidates(names: Mapping[str, MailboxInfo]) -> list[str]:
    """Every mailbox and the implied parents of deeper names, INBOX first."""
    candidates = set(names)
    for name in names:
        parts = name.split(DELIMITER)
        candidates.update(DELIMITER.join(parts[:i]) for i in range(1, len(parts)))
    return sorted(candidates, key=lambda n: (n != INBOX, n))


@dataclass(frozen=True, slots=True)
class _ListOptions:
    """What LIST's selection and return options (RFC 5258 §3) ask for; LSUB's own."""

    lsub: bool
    subscribed_only: bool
    special_only: bool
    want_special: bool

    @classmethod
    def of(cls, args: dict[str, Any], *, lsub: bool) -> _ListOptions:
        return cls(
            lsub=lsub,
            subscribed_only="SUBSCRIBED" in args["selection"],
            special_only="SPECIAL-USE" in args["selection"],
            want_special="SPECIAL-USE" in args["return"] or not args["return"],
        )


def _attributes(
    name: str, names: Mapping[str, MailboxInfo], options: _ListOptions
) -> list[str] | None:
    """The name attributes LIST shows for `name`, or None when it is not listed."""
    box = names.get(name)
    if (options.lsub or options.subscribed_only) and (box is None or not box.subscribed):
        return None
    if options.special_only and (box is None or not box.special_use):
        return None
    attributes = []
    if box is None:
        attributes.append("\\Noselect")  # an implied parent of deeper names
    has_children = any(other.startswith(name + DELIMITER) for other in names)
    if not options.lsub:
        attributes.append("\\HasChildren" if has_children else "\\HasNoChildren")
        if options.subscribed_only and box is not None:
            attributes.append("\\Subscribed")
    if box is not None and box.special_use and options.want_special:
        attributes.append(box.special_use)
    return attributes


class MailboxCommands(SelectedView):
    # --- SELECT and EXAMINE ---------------------------------------------------------------

    async def do_SELECT(self, command: Command) -> str:
        return await self._select(command, readonly=False)

    async def do_EXAMINE(self, command: Command) -> str:
        return await self._select(command, readonly=True)

    async def _select(self, command: Command, *, readonly: bool) -> str:
        self._deselect()
        if command.args.get("condstore"):
            self.condstore = True
        box = await self._mailbox(command.args["mailbox"])
        claimed = (0, 0) if readonly else await self.store.claim_recent(box.id)
        opened = await self.store.open(box.id)
        if opened is None:
            raise no_such_mailbox()
        self._enter(opened, readonly, claimed)
        self._announce_selected(opened)
        self.state = State.SELECTED
        return f"[{'READ-ONLY' if readonly else 'READ-WRITE'}] {command.name} completed"

    def _enter(self, opened: OpenedMailbox, readonly: bool, claimed: tuple[int, int]) -> None:
        current, uids = opened.info, opened.uids
        last = uids[-1] if uids else 0
        recent = _recent(uids, claimed)
        self.selected = Selected(current, readonly, uids, current.highestmodseq, last, recent)
        self.selected.keywords.update(current.keywords)
        self._changed = False
        self.bus.watch(current.id, self, (current.highestmodseq, current.uidnext))

    def _announce_selected(self, opened: OpenedMailbox) -> None:
        """RFC 3501 §6.3.1: the untagged responses SELECT must send."""
        sel, current = self._sel(), opened.info
        self._announce_flags()
        self.untagged(f"{len(sel.uids)} EXISTS")
        self.untagged(f"{len(sel.recent)} RECENT")
        first_unseen = opened.status.first_unseen_uid
        if first_unseen is not None:
            seq = sel.seq_of(first_unseen)
            if seq is not None:
                self.untagged(f"OK [UNSEEN {seq}] First unseen")
        self.untagged(f"OK [UIDVALIDITY {current.uidvalidity}] UIDs valid")
        self.untagged(f"OK [UIDNEXT {current.uidnext}] Predicted next UID")
        self.untagged(f"OK [HIGHESTMODSEQ {current.highestmodseq}] Highest")

    # --- CREATE, DELETE, RENAME, SUBSCRIBE ------------------------------------------------

    async def do_CREATE(self, command: Command) -> None:
        name = self._name(command.args["mailbox"]).rstrip(DELIMITER)
        asked = command.args["use"]
        uses = [u for u in asked if u.lower() in SPECIAL_USES]
        if len(uses) != len(asked):
            raise ImapError("unknown special use", code="USEATTR")
        await self.store.create(self._account(), name, uses[0] if uses else None)

    async def do_DELETE(self, command: Command) -> None:
        name = self._name(command.args["mailbox"])
        if self.selected is not None and self.selected.info.name == name:
            self._deselect()
        await self.store.delete(self._account(), name)

    async def do_RENAME(self, command: Command) -> None:
        old, new = self._name(command.args["mailbox"]), self._name(command.args["new"])
        await self.store.rename(self._account(), old, new)

    async def do_SUBSCRIBE(self, command: Command) -> None:
        await self.store.subscribe(self._account(), self._name(command.args["mailbox"]), True)

    async def do_UNSUBSCRIBE(self, command: Command) -> None:
        await self.store.subscribe(self._account(), self._name(command.args["mailbox"]), False)

    # --- NAMESPACE, LIST, LSUB, STATUS ----------------------------------------------------

    async def do_NAMESPACE(self, command: Command) -> None:
        self.untagged(f'NAMESPACE (("" "{DELIMITER}")) NIL NIL')

    async def do_LIST(self, command: Command) -> None:
        await self._list(command, lsub=False)

    async def do_LSUB(self, command: Command) -> None:
        await self._list(command, lsub=True)

    async def _list(self, command: Command, *, lsub: bool) -> None:
        args = command.args
        reference = self._name(args["reference"])
        patterns = [self._name(p) for p in args["patterns"]]
        keyword = "LSUB" if lsub else "LIST"
        if patterns == [""]:  # RFC 3501 §6.3.8: the delimiter and the root
            self.untagged(f'{keyword} (\\Noselect) "{DELIMITER}" ""')
            return
        boxes = await self.store.mailboxes(self._account())
        names = {b.name: b for b in boxes}
        options = _ListOptions.of(args, lsub=lsub)
        matchers = [_matcher(normalize_name(reference + p)) for p in patterns]
        for name in _candidates(names):
            if not any(m(name) for m in matchers):
                continue
            attributes = _attributes(name, names, options)
            if attributes is not None:
                self.untagged(
                    f'{keyword} ({" ".join(attributes)}) "{DELIMITER}" '.encode()
                    + r.astring(encode(name))
                )

    async def do_STATUS(self, command: Command) -> None:
        box = await self._mailbox(command.args["mailbox"])
        status = await self.store.status(box)
        values = {
            "MESSAGES": status.messages,
            "RECENT": status.recent,
            "UIDNEXT": box.uidnext,
            "UIDVALIDITY": box.uidvalidity,
            "UNSEEN": status.unseen,
            "HIGHESTMODSEQ": box.highestmodseq,
            "SIZE": status.size,
        }
        items = " ".join(f"{item} {values[item]}" for item in command.args["items"])
        self.untagged(b"STATUS " + r.astring(encode(box.name)) + f" ({items})".encode())
