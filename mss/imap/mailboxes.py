"""Mailbox commands: SELECT, EXAMINE, CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE,
LIST, LSUB, STATUS, NAMESPACE (RFC 3501 §6.3, RFC 5258 LIST-EXTENDED, RFC 6154
SPECIAL-USE, RFC 2342 NAMESPACE, RFC 7162 CONDSTORE).

Names travel in modified UTF-7 (RFC 3501 §5.1.3) and are stored as UTF-8 with
`/` as the hierarchy delimiter; the store refuses what it must (`MailboxError`,
answered NO with its response code).
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Sequence

from mss.imap import responses as r
from mss.imap.base import State
from mss.imap.errors import ImapError, bad, no_such_mailbox
from mss.imap.listing import ListOptions, listing, matcher
from mss.imap.parsing.commands import Command
from mss.imap.parsing.tokens import SequenceSet
from mss.imap.parsing.utf7 import MailboxNameError, decode, encode
from mss.imap.selected import Selected, SelectedView, in_uid_set
from mss.store.folders import DELIMITER, MailboxInfo, normalize_name
from mss.store.imapviews import OpenedMailbox

SPECIAL_USES = ("\\sent", "\\drafts", "\\trash", "\\junk", "\\archive", "\\all", "\\flagged")


def _recent(uids: array[int], claimed: tuple[int, int]) -> set[int]:
    """The UIDs this session sees as \\Recent: those in [first, uidnext)."""
    first, uidnext = claimed
    if not first:
        return set()
    return {u for u in uids[bisect.bisect_left(uids, first) :] if u < uidnext}


def _pattern(raw: str) -> str | None:
    """A LIST pattern, decoded; None for one that is not modified UTF-7 (it matches no
    name: LIST answers OK with nothing, as for any pattern matching nothing)."""
    try:
        return decode(raw)
    except MailboxNameError:
        return None


class MailboxCommands(SelectedView):
    # --- SELECT and EXAMINE ---------------------------------------------------------------

    async def do_SELECT(self, command: Command) -> str:
        return await self._select(command, readonly=False)

    async def do_EXAMINE(self, command: Command) -> str:
        return await self._select(command, readonly=True)

    async def _select(self, command: Command, *, readonly: bool) -> str:
        resync = command.args.get("qresync")
        if resync is not None and not self.qresync:
            raise bad("QRESYNC demande d'abord ENABLE QRESYNC (ENABLE QRESYNC first, RFC 7162)")
        if self.qresync and self.selected is not None:  # RFC 7162 §3.2.11
            self.untagged("OK [CLOSED] Boîte précédente fermée (previous mailbox closed)")
        self._deselect()
        if command.args.get("condstore"):
            self.condstore = True
        box = await self._mailbox(command.args["mailbox"])
        claimed = (0, 0) if readonly else await self.store.claim_recent(box.id)
        opened = await self.store.open(box.id)
        if opened is None:
            raise no_such_mailbox()
        if readonly:  # EXAMINE shows what is \Recent and leaves it so (RFC 3501 §6.3.2)
            claimed = (opened.info.first_recent_uid, opened.info.uidnext)
        self._enter(opened, readonly, claimed)
        self._announce_selected(opened)
        self.state = State.SELECTED
        if resync is not None:
            await self._resync(opened.info, *resync)
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

    async def _resync(
        self, box: MailboxInfo, uidvalidity: int, modseq: int, known: SequenceSet | None
    ) -> None:
        """SELECT (QRESYNC (…)): what the client missed since `modseq`, if its UIDVALIDITY
        is current: VANISHED (EARLIER) for the UIDs expunged (of those it knows, when it
        says), then the flags of every message changed (RFC 7162 §3.2.5)."""
        sel = self._sel()
        if uidvalidity != box.uidvalidity:
            return
        changes = await self.store.changes(box.id, modseq, sel.last_uid)
        gone = sorted(set(changes.gone))
        if known is not None:
            gone = in_uid_set(known, gone, sel.last_uid)
        if gone:
            self.untagged(f"VANISHED (EARLIER) {r.sequence_set(gone)}")
        for state in changes.flagged:
            self._flag_response(state, by_uid=True)

    # --- CREATE, DELETE, RENAME, SUBSCRIBE ------------------------------------------------

    async def do_CREATE(self, command: Command) -> None:
        name = self._name(command.args["mailbox"]).rstrip(DELIMITER)
        asked = command.args["use"]
        uses = [u for u in asked if u.lower() in SPECIAL_USES]
        if len(uses) != len(asked):
            raise ImapError("Usage spécial inconnu (unknown special use)", code="USEATTR")
        await self.store.create(self._account(), name, uses[0] if uses else None)
        await self.renotify()

    async def do_DELETE(self, command: Command) -> None:
        name = self._name(command.args["mailbox"])
        if self.selected is not None and self.selected.info.name == name:
            self._deselect()
        await self.store.delete(self._account(), name)
        await self.renotify()

    async def do_RENAME(self, command: Command) -> None:
        old, new = self._name(command.args["mailbox"]), self._name(command.args["new"])
        await self.store.rename(self._account(), old, new)
        await self.renotify()

    async def renotify(self) -> None:
        """The account's mailboxes changed: NOTIFY's set is resolved again (`notify`)."""

    async def do_SUBSCRIBE(self, command: Command) -> None:
        await self.store.subscribe(self._account(), self._name(command.args["mailbox"]), True)
        await self.renotify()  # NOTIFY's SUBSCRIBED set follows

    async def do_UNSUBSCRIBE(self, command: Command) -> None:
        await self.store.subscribe(self._account(), self._name(command.args["mailbox"]), False)
        await self.renotify()

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
        patterns = [p for p in map(_pattern, args["patterns"]) if p is not None]
        keyword = "LSUB" if lsub else "LIST"
        if patterns == [""]:  # RFC 3501 §6.3.8: the delimiter and the root
            self.untagged(f'{keyword} (\\Noselect) "{DELIMITER}" ""')
            return
        account = self._account()
        boxes = {b.name: b for b in await self.store.mailboxes(account)}
        subscribed = await self.store.subscriptions(account)
        options = (
            ListOptions(lsub=True) if lsub else ListOptions.of(args["selection"], args["return"])
        )
        matchers = [matcher(normalize_name(reference + p)) for p in patterns]
        for found in listing(boxes, subscribed, matchers, options):
            line = f'{keyword} ({" ".join(found.attributes)}) "{DELIMITER}" '.encode()
            line += r.astring(encode(found.name))
            self.untagged(line + (b' ("CHILDINFO" ("SUBSCRIBED"))' if found.childinfo else b""))

    async def do_STATUS(self, command: Command) -> None:
        box = await self._mailbox(command.args["mailbox"])
        await self.status_response(box, command.args["items"])

    async def status_response(self, box: MailboxInfo, items: Sequence[str]) -> None:
        """`* STATUS name (item value …)` of these items (STATUS, and NOTIFY's)."""
        status = await self.store.status(box)
        values = {
            "MESSAGES": status.messages,
            "RECENT": status.recent,
            "UIDNEXT": box.uidnext,
            "UIDVALIDITY": box.uidvalidity,
            "UNSEEN": status.unseen,
            "HIGHESTMODSEQ": box.highestmodseq,
            "SIZE": status.size,
            "DELETED": status.deleted,  # RFC 9208 §4.3 (QUOTA=RES-MESSAGE)
            "DELETED-STORAGE": status.deleted_size,  # in octets, as Cyrus (QUOTA=RES-STORAGE)
        }
        said = " ".join(f"{item} {values[item]}" for item in items)
        self.untagged(b"STATUS " + r.astring(encode(box.name)) + f" ({said})".encode())
