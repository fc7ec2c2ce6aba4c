"""SORT and UID SORT (RFC 5256 §3, RFC 5957 DISPLAYFROM and DISPLAYTO), and their ESORT
answer (RFC 5267 ESORT: `SORT RETURN (...)` answers ESEARCH in the sort order).

The matches come from SEARCH (`SearchCommands._matches`); their sort fields are read from
the store's columns (internal and sent dates, size, subject, the searchable header text),
and `sort_order` orders them: each criterion in turn, REVERSE reversing that criterion
only, and equal messages left in message number order (RFC 5256 §3, the final
tie-breaker). Strings compare as i;ascii-casemap (SUBJECT, FROM, TO, CC) or
i;unicode-casemap (DISPLAYFROM, DISPLAYTO, RFC 5957).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from mss.imap.parsing.commands import Command
from mss.imap.search import Record, SearchCommands
from mss.imap.subjects import base_subject
from mss.store.search_fields import Entry, addresses, field_values

SORT_FIELDS = ("internal_date", "sent_date", "size", "subject", "header_text")


def first_address(record: Record, field: str) -> Entry | None:
    """The first mailbox or group of the first `field` header (RFC 5256 "the first
    address"), None when there is none."""
    values = field_values(record["header_text"] or "", field)
    entries = addresses(values[0]) if values else []
    return entries[0] if entries else None


def _mailbox(field: str) -> Callable[[Record], Any]:
    """RFC 5256 §3 FROM, TO, CC: the addr-mailbox (local part) of the first address, or
    the group's name, as in its ENVELOPE; i;ascii-casemap."""

    def key(record: Record) -> bytes:
        entry = first_address(record, field)
        if entry is None:
            return b""
        return (entry.local if entry.kind == "mailbox" else entry.name).encode().upper()

    return key


def _display(field: str) -> Callable[[Record], Any]:
    """RFC 5957 DISPLAYFROM, DISPLAYTO: the display name of the first address, else its
    addr-spec; i;unicode-casemap (the header text is case-folded already)."""

    def key(record: Record) -> str:
        entry = first_address(record, field)
        if entry is None:
            return ""
        return entry.name or entry.spec

    return key


def sent_or_arrival(record: Record) -> int:
    """RFC 5256 §3 DATE: the sent date of §2.2, the Date: field's instant, else the internal
    date."""
    sent: int | None = record["sent_date"]
    return record["internal_date"] if sent is None else sent


def subject_key(record: Record) -> bytes:
    """RFC 5256 §3 SUBJECT: the base subject (§2.1), i;ascii-casemap."""
    return base_subject(record["subject"])[0].encode().upper()


SORT_KEYS: dict[str, Callable[[Record], Any]] = {
    "ARRIVAL": lambda record: record["internal_date"],
    "DATE": sent_or_arrival,
    "SIZE": lambda record: record["size"],
    "SUBJECT": subject_key,
    "FROM": _mailbox("from"),
    "TO": _mailbox("to"),
    "CC": _mailbox("cc"),
    "DISPLAYFROM": _display("from"),
    "DISPLAYTO": _display("to"),
}


def sort_order(records: Sequence[Record], criteria: Sequence[tuple[str, bool]]) -> list[Record]:
    """`records` (in UID order) sorted by (key, reversed) criteria, the first deciding."""
    ordered = list(records)
    for name, reverse in reversed(criteria):  # stable sorts, the least significant first
        ordered.sort(key=SORT_KEYS[name], reverse=reverse)
    return ordered


class SortCommands(SearchCommands):
    async def do_SORT(self, command: Command) -> str | None:
        return await self._sort(command, by_uid=False)

    async def do_UID_SORT(self, command: Command) -> str | None:
        return await self._sort(command, by_uid=True)

    async def _sort(self, command: Command, *, by_uid: bool) -> str | None:
        keys = self._search_keys(command)
        criteria = command.args["criteria"]
        found, modseq = await self._matches(keys, by_uid=True)
        ordered = sort_order(await self._records(found, SORT_FIELDS), criteria)
        uids = [r["uid"] for r in ordered]
        matches = self._numbered([(r["uid"], r["modseq"]) for r in ordered], by_uid=by_uid)
        self._answer("SORT", command, matches, modseq=modseq)

        async def rerun(view: list[int]) -> list[int]:
            found = (await self._found(keys, view)).found
            return [r["uid"] for r in sort_order(await self._records(found, SORT_FIELDS), criteria)]

        return self._keep(command, uids, rerun, sort=True)
