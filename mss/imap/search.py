"""SEARCH and UID SEARCH (RFC 3501 §6.4.4, RFC 4731 ESEARCH, RFC 7162 MODSEQ).

The parser reads the criteria (`parsing.search`); here the keys that depend on
the session's view (message numbers, RECENT, NEW, OLD) become UID keys, the
store answers the query (`MailboxStore.search`), and the matches are reported
as message numbers or UIDs, or as an ESEARCH summary.
"""

from __future__ import annotations

from collections.abc import Sequence

from mss.errors import InputError
from mss.imap import responses as r
from mss.imap.errors import ImapError, bad
from mss.imap.parsing.commands import Command
from mss.imap.parsing.search import SearchKey
from mss.imap.parsing.tokens import SeqRange
from mss.imap.selected import SelectedView


def _uid_ranges(uids: Sequence[int]) -> tuple[SeqRange, ...]:
    """Sorted UIDs as a UID set (an empty one matches nothing: UID 0 does not exist)."""
    if not uids:
        return (SeqRange(0, 0),)
    ranges: list[SeqRange] = []
    for uid in uids:
        if ranges and ranges[-1].end == uid - 1:
            ranges[-1] = SeqRange(ranges[-1].start, uid)
        else:
            ranges.append(SeqRange(uid, uid))
    return tuple(ranges)


def esearch(
    tag: str,
    returns: Sequence[str],
    matches: Sequence[tuple[int, int]],
    *,
    by_uid: bool,
    modseq: bool,
) -> str:
    """RFC 4731 §3.1 ESEARCH of (number, modseq) matches: MIN, MAX, ALL, COUNT; with the
    MODSEQ key, the highest modseq of the messages returned (RFC 4731 §3.2): of MIN or
    MAX alone, else of every match."""
    parts = [f'(TAG "{tag}")'] + (["UID"] if by_uid else [])
    returned: list[tuple[int, int]] = []
    if matches:
        low, high = min(matches), max(matches)
        if "MIN" in returns:
            parts.append(f"MIN {low[0]}")
            returned.append(low)
        if "MAX" in returns:
            parts.append(f"MAX {high[0]}")
            returned.append(high)
        if "ALL" in returns:
            parts.append(f"ALL {r.sequence_set(sorted(n for n, _ in matches))}")
    if "COUNT" in returns:
        parts.append(f"COUNT {len(matches)}")
    if "ALL" in returns or "COUNT" in returns:
        returned = list(matches)
    if modseq and returned:
        parts.append(f"MODSEQ {max(m for _, m in returned)}")
    return "ESEARCH " + " ".join(parts)


class SearchCommands(SelectedView):
    async def do_SEARCH(self, command: Command) -> None:
        await self._search(command, by_uid=False)

    async def do_UID_SEARCH(self, command: Command) -> None:
        await self._search(command, by_uid=True)

    async def _search(self, command: Command, *, by_uid: bool) -> None:
        matches, modseq = await self._matches(command, by_uid=by_uid)
        returns = command.args["return"]
        if returns is not None:
            self.untagged(esearch(command.tag, returns, matches, by_uid=by_uid, modseq=modseq))
            return
        text = "SEARCH" + "".join(f" {n}" for n, _ in matches)
        if modseq and matches:  # RFC 7162 §3.1.5
            text += f" (MODSEQ {max(m for _, m in matches)})"
        self.untagged(text)

    async def _matches(
        self, command: Command, *, by_uid: bool
    ) -> tuple[list[tuple[int, int]], bool]:
        """(number or UID, modseq) of the matching messages, in UID order, and whether the
        MODSEQ key was used (which enables CONDSTORE, RFC 7162 §3.1)."""
        sel = self._sel()
        if "badcharset" in command.args:
            raise ImapError("charset not supported", code="BADCHARSET (US-ASCII UTF-8)")
        keys = [self._uid_keys(k) for k in command.args["keys"]]
        try:
            result = await self.store.search(sel.info.id, keys, list(sel.uids))
        except InputError as exc:
            raise bad(str(exc)) from None
        if result.max_modseq:
            self.condstore = True
        if by_uid:
            return list(result.found), result.max_modseq
        numbered = ((sel.seq_of(uid), modseq) for uid, modseq in result.found)
        return [(n, m) for n, m in numbered if n], result.max_modseq

    def _uid_keys(self, key: SearchKey) -> SearchKey:
        """Sequence numbers, RECENT, NEW, OLD become UID keys over the session's view."""
        sel = self._sel()
        kind = key.kind
        if kind == "SEQ":
            return SearchKey("UID", (_uid_ranges(sel.uids_in_seq_set(key.args[0])),))
        if kind == "RECENT":
            return SearchKey("UID", (_uid_ranges(sorted(sel.recent)),))
        if kind == "NEW":
            recent = self._uid_keys(SearchKey("RECENT"))
            return SearchKey("AND", ((recent, SearchKey("FLAG", ("\\Seen", False))),))
        if kind == "OLD":
            return SearchKey("NOT", (self._uid_keys(SearchKey("RECENT")),))
        if kind == "AND":
            return SearchKey("AND", (tuple(self._uid_keys(k) for k in key.args[0]),))
        if kind == "OR":
            return SearchKey("OR", (self._uid_keys(key.args[0]), self._uid_keys(key.args[1])))
        if kind == "NOT":
            return SearchKey("NOT", (self._uid_keys(key.args[0]),))
        return key
