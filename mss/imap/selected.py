"""The selected mailbox: the session's view of it, and keeping that view in step.

`Selected` holds the UIDs behind the message sequence numbers as the client
knows them, the modseq and last UID it has been told of, the \\Recent messages
and keywords announced, and the expunges waiting to be announced. `SelectedView`
tells the client what changed: new messages and flag changes at any command's
end, expunges only where RFC 3501 §7.4.1 allows them (never during FETCH, STORE
or SEARCH). Sessions that ask the store the same question at once share one read
(`MailboxBus.shared`).
"""

from __future__ import annotations

import bisect
from array import array
from dataclasses import dataclass, field

from mss.imap import responses as r
from mss.imap.base import SessionBase, State
from mss.imap.errors import bad
from mss.imap.parsing.commands import Command
from mss.imap.parsing.fetch import FetchAtt
from mss.imap.parsing.tokens import SequenceSet
from mss.store.folders import MailboxInfo
from mss.store.imapviews import MailboxChanges
from mss.store.messages import FlagState, flag_names

SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")


def _seq_set(ranges: SequenceSet, largest: int) -> list[tuple[int, int]]:
    out = []
    for rng in ranges:
        start = largest if rng.start is None else rng.start
        end = largest if rng.end is None else rng.end
        out.append((min(start, end), max(start, end)))
    return out


def in_uid_set(ranges: SequenceSet, uids: list[int], largest: int) -> list[int]:
    """Those of `uids` that a UID set names (`*` standing for `largest`)."""
    spans = _seq_set(ranges, max(largest, *uids, 0))
    return [uid for uid in uids if any(lo <= uid <= hi for lo, hi in spans)]


@dataclass
class Selected:
    info: MailboxInfo
    readonly: bool
    uids: array[int]
    modseq: int  # changes up to this modseq are known to the client
    last_uid: int  # largest UID the client has been told of
    recent: set[int] = field(default_factory=set)
    keywords: set[str] = field(default_factory=set)  # announced to the client in FLAGS
    pending_expunges: set[int] = field(default_factory=set)
    own_changes: dict[int, int] = field(default_factory=dict)  # uid -> modseq set by us
    # \Recent UID ranges [first, uidnext) claimed (by APPEND) before their messages were told
    claimed: list[tuple[int, int]] = field(default_factory=list)

    def seq_of(self, uid: int) -> int | None:
        index = bisect.bisect_left(self.uids, uid)
        if index < len(self.uids) and self.uids[index] == uid:
            return index + 1
        return None

    def uids_of_seq_set(self, ranges: SequenceSet) -> list[int]:
        """The UIDs of message numbers; a number past the last is BAD (RFC 3501 §9)."""
        count = len(self.uids)
        uids: set[int] = set()
        for start, end in _seq_set(ranges, count):
            if count == 0 or end > count:
                raise bad("Numéro de message invalide (invalid message sequence number)")
            uids.update(self.uids[start - 1 : end])
        return sorted(uids)

    def uids_in_seq_set(self, ranges: SequenceSet) -> list[int]:
        """The UIDs of message numbers, ignoring numbers past the last (SEARCH)."""
        count = len(self.uids)
        out: set[int] = set()
        for start, end in _seq_set(ranges, count):
            out.update(self.uids[start - 1 : min(end, count)])
        return sorted(out)

    def uids_of_uid_set(self, ranges: SequenceSet) -> list[int]:
        """The UIDs in the view that a UID set names (RFC 3501 §6.4.8)."""
        largest = self.uids[-1] if self.uids else 0
        out: set[int] = set()
        for start, end in _seq_set(ranges, largest):
            lo = bisect.bisect_left(self.uids, start)
            hi = bisect.bisect_right(self.uids, end)
            out.update(self.uids[lo:hi])
        return sorted(out)

    def forget(self, gone: set[int]) -> None:
        """The client has been told of these expunges."""
        self.uids = array("I", (u for u in self.uids if u not in gone))
        self.recent.difference_update(gone)
        self.pending_expunges = set()


class SelectedView(SessionBase):
    """Keeping the client's view of the selected mailbox in step with the store."""

    def _resolve(self, command: Command) -> list[int]:
        sel = self._sel()
        if command.name.startswith("UID "):
            return sel.uids_of_uid_set(command.args["sequence"])
        return sel.uids_of_seq_set(command.args["sequence"])

    async def sync(self, *, expunges: bool) -> None:
        """Tell the client what changed in the selected mailbox since it last heard."""
        sel = self.selected
        if sel is None:
            return
        if self._changed or sel.pending_expunges or await self._moved(sel):
            await self._refresh(sel)
        if expunges:
            self._announce_expunges()

    async def _moved(self, sel: Selected) -> bool:
        """Whether the mailbox changed since the client last heard, as committed now: a
        change another process committed before this command is told at its end, not
        at the change feed's next look (one indexed read of the mailbox's row)."""
        marks = await self.store.marks([sel.info.id])
        mark = marks.get(sel.info.id)
        return mark is None or mark[0] != sel.modseq

    async def _refresh(self, sel: Selected) -> None:
        self._changed = False
        changes = await self._changes_of(sel)
        current = changes.mailbox
        if current is None:  # the mailbox was deleted under us: the session ends
            self.untagged("BYE Boîte supprimée (mailbox deleted)")  # RFC 3501 §7.1.5
            self._deselect()
            self.state = State.LOGOUT
            return
        visible = set(sel.uids)
        sel.pending_expunges.update(u for u in changes.gone if u in visible)
        self._announce_flag_changes(sel, changes.flagged)
        if changes.added:
            await self._announce_new(sel, changes.added, current)
        sel.modseq = current.highestmodseq

    async def _changes_of(self, sel: Selected) -> MailboxChanges:
        """One read shared by the sessions woken by the same change of this mailbox."""
        box_id, known, last = sel.info.id, sel.modseq, sel.last_uid
        key = (box_id, known, last, self.bus.generation(box_id))
        changes: MailboxChanges = await self.bus.shared(
            key, lambda: self.store.changes(box_id, known, last)
        )
        return changes

    async def fetch_unasked(self, atts: list[FetchAtt], uids: list[int]) -> None:
        """Unsolicited FETCH responses of these messages (NOTIFY's MessageNew); the FETCH
        commands (`fetch.FetchCommands`) give it its body."""

    async def vanished_earlier(self, ranges: SequenceSet, since: int) -> None:
        """UID FETCH … (CHANGEDSINCE n VANISHED): the UIDs of the set expunged since
        modseq `since` (RFC 7162 §3.2.6), before the FETCH responses."""
        sel = self._sel()
        changes = await self.store.changes(sel.info.id, since, sel.last_uid)
        gone = in_uid_set(ranges, sorted(set(changes.gone)), sel.last_uid)
        if gone:
            self.untagged(f"VANISHED (EARLIER) {r.sequence_set(gone)}")

    def _announce_flag_changes(self, sel: Selected, flagged: list[FlagState]) -> None:
        """Other sessions' flag changes (ours were answered by STORE already)."""
        for state in flagged:
            if state.uid in sel.pending_expunges:
                continue
            if sel.own_changes.get(state.uid) == state.modseq:
                continue
            self._flag_response(state, by_uid=True)
        sel.own_changes.clear()

    async def _announce_new(self, sel: Selected, added: list[int], current: MailboxInfo) -> None:
        if sel.readonly:  # seen as \Recent, left so for the session that will claim it
            sel.recent.update(u for u in added if u >= current.first_recent_uid)
        else:
            if current.first_recent_uid <= added[-1]:  # some are nobody's \Recent yet
                sel.claimed.append(await self.store.claim_recent(sel.info.id))
            sel.recent.update(u for u in added if any(a <= u < b for a, b in sel.claimed))
        sel.uids.extend(added)
        sel.last_uid = added[-1]
        sel.claimed = [(a, b) for a, b in sel.claimed if b - 1 > sel.last_uid]
        self.untagged(f"{len(sel.uids)} EXISTS")
        self.untagged(f"{len(sel.recent)} RECENT")

    def _announce_expunges(self) -> None:
        sel = self.selected
        if sel is None or not sel.pending_expunges:
            return
        gone = sel.pending_expunges
        if self.qresync:  # RFC 7162 §3.2.10: VANISHED instead of EXPUNGE, by UID
            shown = [uid for uid in gone if sel.seq_of(uid) is not None]
            if shown:
                self.untagged(f"VANISHED {r.sequence_set(sorted(shown))}")
        else:
            for uid in sorted(gone, reverse=True):  # descending: each number is still valid
                seq = sel.seq_of(uid)
                if seq is not None:
                    self.untagged(f"{seq} EXPUNGE")
        sel.forget(gone)

    # --- flags ----------------------------------------------------------------------------

    def _flag_response(self, state: FlagState, *, by_uid: bool, silent: bool = False) -> None:
        seq = self._sel().seq_of(state.uid)
        if seq is None:
            return
        items = []
        if not silent:
            items.append(b"FLAGS " + self._flag_list(state.uid, state.flags, state.keywords))
        if by_uid:
            items.append(b"UID %d" % state.uid)
        if self.condstore:
            items.append(b"MODSEQ (%d)" % state.modseq)
        if items:
            self._out.append(b"* %d FETCH (" % seq + b" ".join(items) + b")\r\n")

    def _flag_list(self, uid: int, bits: int, keywords: str | None) -> bytes:
        sel = self._sel()
        names = flag_names(bits, keywords)
        if keywords and not sel.keywords.issuperset(keywords.split()):
            # RFC 3501 §7.2.6: a keyword is in FLAGS before any message shows it
            sel.keywords.update(keywords.split())
            self._announce_flags()
        if uid in sel.recent:
            names.append("\\Recent")
        return r.flags(names)

    def _announce_flags(self) -> None:
        sel = self._sel()
        names = [*SYSTEM_FLAGS, *sorted(sel.keywords)]
        self.untagged(b"FLAGS " + r.flags(names))
        permanent = b"()" if sel.readonly else r.flags([*names, "\\*"])
        self.untagged(b"OK [PERMANENTFLAGS " + permanent + b"] Flags permitted")
