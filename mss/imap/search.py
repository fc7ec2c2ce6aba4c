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


class SearchCommands(SelectedView):
    async def do_SEARCH(self, command: Command) -> None:
        await self._search(command, by_uid=False)

    async def do_UID_SEARCH(self, command: Command) -> None:
        await self._search(command, by_uid=True)

    async def _search(self, command: Command, *, by_uid: bool) -> None:
        sel = self._sel()
        if "badcharset" in command.args:
            raise ImapError("charset not supported", code="BADCHARSET (US-ASCII UTF-8)")
        keys = [self._uid_keys(k) for k in command.args["keys"]]
        try:
            result = await self.store.search(sel.info.id, keys, list(sel.uids))
        except InputError as exc:
            raise bad(str(exc)) from None
        found = result.found
        numbers = (
            [uid for uid, _ in found] if by_uid else [sel.seq_of(uid) or 0 for uid, _ in found]
        )
        numbers = [n for n in numbers if n]
        returns = command.args.get("return")
        if returns is not None:
            self._esearch(command.tag, returns, numbers, by_uid)
            return
        text = "SEARCH" + "".join(f" {n}" for n in numbers)
        if result.max_modseq and found:
            text += f" (MODSEQ {max(m for _, m in found)})"
        self.untagged(text)

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

    def _esearch(self, tag: str, returns: list[str], numbers: list[int], by_uid: bool) -> None:
        """RFC 4731 ESEARCH: MIN, MAX, COUNT, ALL (ALL when nothing is asked)."""
        wanted = returns or ["ALL"]
        parts = [f'(TAG "{tag}")'] + (["UID"] if by_uid else [])
        if numbers:
            if "MIN" in wanted:
                parts.append(f"MIN {min(numbers)}")
            if "MAX" in wanted:
                parts.append(f"MAX {max(numbers)}")
            if "ALL" in wanted:
                parts.append(f"ALL {r.sequence_set(sorted(numbers))}")
        if "COUNT" in wanted:
            parts.append(f"COUNT {len(numbers)}")
        self.untagged("ESEARCH " + " ".join(parts))
