"""SEARCH and UID SEARCH (RFC 3501 §6.4.4, RFC 4731 ESEARCH, RFC 7162 MODSEQ).

The parser reads the criteria (`parsing.search`); here the keys that depend on
the session's view (message numbers, RECENT, NEW, OLD) become UID keys, the
store answers the query (`MailboxStore.search`), and the matches are reported
as message numbers or UIDs, or as an ESEARCH summary (with RFC 5267's PARTIAL, and
UPDATE kept by `context`). SORT and THREAD (`sort`, `thread`) search the same way
and read their matches' columns with `_records`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mss.errors import InputError
from mss.imap.context import ContextCommands, Rerun, partial
from mss.imap.errors import ImapError, bad
from mss.imap.parsing.commands import Command
from mss.imap.parsing.search import SearchKey
from mss.imap.parsing.tokens import SeqRange
from mss.store.imapviews import SearchResult

Record = dict[str, Any]  # a match's uid, modseq and the columns asked (SORT, THREAD)


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


def ordered_set(numbers: Sequence[int]) -> str:
    """Numbers in the order given as a sequence-set, runs of successive numbers as `a:b`
    (RFC 5267 ESORT: an ESORT ALL keeps the sort order)."""
    parts: list[str] = []
    start = 0
    for i, number in enumerate(numbers):
        if i + 1 == len(numbers) or numbers[i + 1] != number + 1:
            first = numbers[start]
            parts.append(str(first) if first == number else f"{first}:{number}")
            start = i + 1
    return ",".join(parts)


def listed(word: str, matches: Sequence[tuple[int, int]], *, modseq: bool) -> str:
    """`SEARCH 1 2 3` or `SORT 3 1 2`, with the MODSEQ key the highest modseq of the
    matches (RFC 7162 §3.1.5)."""
    text = word + "".join(f" {n}" for n, _ in matches)
    if modseq and matches:
        text += f" (MODSEQ {max(m for _, m in matches)})"
    return text


def esearch(
    tag: str,
    returns: Sequence[str],
    matches: Sequence[tuple[int, int]],
    *,
    by_uid: bool,
    modseq: bool,
) -> str:
    """RFC 4731 §3.1 ESEARCH of (number, modseq) matches in their order (UID order for
    SEARCH, the sort order for SORT, RFC 5267 ESORT): MIN and MAX are the first and the
    last. With the MODSEQ key, the highest modseq of the messages returned (RFC 4731
    §3.2): of MIN or MAX alone, else of every match."""
    parts = [f'(TAG "{tag}")'] + (["UID"] if by_uid else [])
    returned: list[tuple[int, int]] = []
    if matches:
        if "MIN" in returns:
            parts.append(f"MIN {matches[0][0]}")
            returned.append(matches[0])
        if "MAX" in returns:
            parts.append(f"MAX {matches[-1][0]}")
            returned.append(matches[-1])
        if "ALL" in returns:
            parts.append(f"ALL {ordered_set([n for n, _ in matches])}")
    if "COUNT" in returns:
        parts.append(f"COUNT {len(matches)}")
    if "ALL" in returns or "COUNT" in returns:
        returned = list(matches)
    if modseq and returned:
        parts.append(f"MODSEQ {max(m for _, m in returned)}")
    return "ESEARCH " + " ".join(parts)


class SearchCommands(ContextCommands):
    async def do_SEARCH(self, command: Command) -> str | None:
        return await self._search(command, by_uid=False)

    async def do_UID_SEARCH(self, command: Command) -> str | None:
        return await self._search(command, by_uid=True)

    async def _search(self, command: Command, *, by_uid: bool) -> str | None:
        keys = self._search_keys(command)
        matches, modseq = await self._matches(keys, by_uid=by_uid)
        self._answer("SEARCH", command, matches, modseq=modseq)

        async def rerun(view: list[int]) -> list[int]:
            return [uid for uid, _ in (await self._found(keys, view)).found]

        sel = self._sel()
        uids = [n if by_uid else sel.uids[n - 1] for n, _ in matches]
        return self._keep(command, uids, rerun, sort=False)

    def _answer(
        self, word: str, command: Command, matches: list[tuple[int, int]], *, modseq: bool
    ) -> None:
        """`SEARCH`/`SORT` with the numbers, or ESEARCH with what RETURN asked."""
        returns = command.args["return"]
        if returns is None:
            self.untagged(listed(word, matches, modseq=modseq))
            return
        by_uid = command.name.startswith("UID ")
        text = esearch(command.tag, returns, matches, by_uid=by_uid, modseq=modseq)
        positions = command.args["partial"]
        if positions is not None:  # RFC 5267 §4 PARTIAL
            chosen = partial([n for n, _ in matches], positions)
            text += f" PARTIAL ({positions[0]}:{positions[1]} {ordered_set(chosen) or 'NIL'})"
        self.untagged(text)

    def _keep(self, command: Command, uids: list[int], rerun: Rerun, *, sort: bool) -> str | None:
        """RFC 5267 §4 UPDATE: the result is kept, told again as it changes."""
        returns = command.args["return"]
        if returns is None or "UPDATE" not in returns:
            return None
        if self.remember(command, uids, rerun, sort=sort):
            return None
        return f'[NOUPDATE "{command.tag}"] {command.name} completed, without updates'

    def _search_keys(self, command: Command) -> list[SearchKey]:
        if "badcharset" in command.args:
            raise ImapError(
                "Jeu de caractères non pris en charge (charset not supported)",
                code="BADCHARSET (US-ASCII UTF-8)",
            )
        return [self._uid_keys(k) for k in command.args["keys"]]

    async def _found(self, keys: list[SearchKey], view: list[int]) -> SearchResult:
        try:
            return await self.store.search(self._sel().info.id, keys, view)
        except InputError as exc:
            raise bad(str(exc)) from None

    async def _matches(
        self, keys: list[SearchKey], *, by_uid: bool
    ) -> tuple[list[tuple[int, int]], bool]:
        """(number or UID, modseq) of the matching messages, in UID order, and whether the
        MODSEQ key was used (which enables CONDSTORE, RFC 7162 §3.1)."""
        result = await self._found(keys, list(self._sel().uids))
        if result.max_modseq:
            self.condstore = True
        return self._numbered(result.found, by_uid=by_uid), result.max_modseq

    def _numbered(self, found: Sequence[tuple[int, int]], *, by_uid: bool) -> list[tuple[int, int]]:
        """(uid, modseq) pairs as (message number, modseq), unless answering by UID."""
        if by_uid:
            return list(found)
        sel = self._sel()
        numbered = ((sel.seq_of(uid), modseq) for uid, modseq in found)
        return [(n, m) for n, m in numbered if n]

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

    async def _records(
        self, found: Sequence[tuple[int, int]], fields: Sequence[str]
    ) -> list[Record]:
        """The `fields` of the matches still in the store, in UID order."""
        sel = self._sel()
        uids = [uid for uid, _ in found]
        everything = len(uids) == len(sel.uids)
        rows = await self.store.fetch_rows(sel.info.id, uids, fields, everything=everything)
        names = ("uid", *fields)
        records = []
        for uid, modseq in found:
            row = rows.get(uid)
            if row is not None:  # expunged by another session meanwhile: left out
                records.append({**dict(zip(names, row, strict=True)), "modseq": modseq})
        return records
