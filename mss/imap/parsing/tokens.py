"""IMAP lexical syntax (RFC 3501 §9, RFC 7888 LITERAL+, RFC 3516 literal8): pure.

`Reader` walks a complete command (bytes, literals inline) and returns the
syntactic pieces the command grammars need: atoms, astrings, strings, literals,
parenthesised lists, numbers, sequence sets, dates. Errors raise `ParseError`,
which the server answers with BAD.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from mss.errors import MssError

ATOM_SPECIALS = frozenset(b'(){ %*"\\]')
MAX_NUMBER = 2**32 - 1
MAX_NUMBER64 = 2**63 - 1

_LITERAL_RE = re.compile(rb"(~?)\{(\d+)(\+?)\}\r\n")
_MONTHS = {
    m: i
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1
    )
}


class ParseError(MssError):
    """Malformed input: the text says what was expected."""


def shown(data: bytes) -> str:
    """A piece of the client's input, quoted for an error text: printable ASCII only (no
    Python repr, no control character that could end the response line)."""
    text = "".join(chr(b) if 0x20 <= b < 0x7F else "?" for b in data)
    return f'"{text}"'


@dataclass(frozen=True, slots=True)
class SeqRange:
    """`a:b` of a sequence set; None stands for `*` (the largest number in use)."""

    start: int | None
    end: int | None


SequenceSet = tuple[SeqRange, ...]


def _is_atom_char(byte: int) -> bool:
    return byte > 0x20 and byte != 0x7F and byte not in ATOM_SPECIALS


class Reader:
    """A cursor over one command; methods consume what they return."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    # --- low level -----------------------------------------------------------------------

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def peek(self) -> int | None:
        return self.data[self.pos] if self.pos < len(self.data) else None

    def peek_is(self, text: bytes) -> bool:
        return self.data.startswith(text, self.pos)

    def expect(self, text: bytes) -> None:
        if not self.data.startswith(text, self.pos):
            found = self.data[self.pos : self.pos + 10]
            raise ParseError(f"expected {shown(text)}, found {shown(found)}")
        self.pos += len(text)

    def space(self) -> None:
        self.expect(b" ")

    def maybe(self, text: bytes) -> bool:
        if self.data.startswith(text, self.pos):
            self.pos += len(text)
            return True
        return False

    def maybe_word(self, word: bytes) -> bool:
        """`maybe` for a keyword, in any case (`word` upper case)."""
        if self.data[self.pos : self.pos + len(word)].upper() == word:
            self.pos += len(word)
            return True
        return False

    def end(self) -> None:
        if not self.at_end():
            raise ParseError(
                f"unexpected {shown(self.data[self.pos : self.pos + 20])} at end of command"
            )

    # --- atoms and strings ----------------------------------------------------------------

    def atom(self, *, allow_bracket: bool = False, stop_at_bracket: bool = False) -> str:
        """An atom; `]` allowed in astrings; stopping at `[` for FETCH items like BODY[…]."""
        start = self.pos
        data = self.data
        while self.pos < len(data) and (
            _is_atom_char(data[self.pos]) or (allow_bracket and data[self.pos] == 0x5D)
        ):
            if stop_at_bracket and data[self.pos] == 0x5B:
                break
            self.pos += 1
        if self.pos == start:
            raise ParseError(f"expected an atom, found {shown(data[self.pos : self.pos + 10])}")
        return data[start : self.pos].decode("ascii", "replace")

    def quoted(self) -> bytes:
        self.expect(b'"')
        out = bytearray()
        data = self.data
        while True:
            if self.pos >= len(data):
                raise ParseError("unterminated quoted string")
            byte = data[self.pos]
            if byte == 0x22:
                self.pos += 1
                return bytes(out)
            if byte == 0x5C:  # backslash: only \" and \\ (RFC 3501 §9 quoted-specials)
                if self.pos + 1 >= len(data) or data[self.pos + 1] not in b'"\\':
                    raise ParseError("bad escape in quoted string")
                out.append(data[self.pos + 1])
                self.pos += 2
                continue
            if byte in (0x0D, 0x0A, 0x00):
                raise ParseError("CR, LF or NUL in a quoted string")
            out.append(byte)
            self.pos += 1

    def literal(self, *, binary: bool = False) -> bytes:
        match = _LITERAL_RE.match(self.data, self.pos)
        if match is None or (match.group(1) == b"~" and not binary):
            raise ParseError("expected a literal {n}")
        size = int(match.group(2))
        start = match.end()
        if start + size > len(self.data):
            raise ParseError("literal shorter than announced")
        self.pos = start + size
        value = self.data[start : self.pos]
        if not binary and b"\0" in value:
            raise ParseError("NUL in a literal (use literal8)")
        return value

    def is_literal(self) -> bool:
        return bool(_LITERAL_RE.match(self.data, self.pos))

    def string(self) -> bytes:
        if self.peek_is(b'"'):
            return self.quoted()
        return self.literal()

    def astring(self) -> bytes:
        """atom (with `]`) / quoted / literal; the atom's raw bytes (UTF-8 is allowed)."""
        byte = self.peek()
        if byte == 0x22 or byte == 0x7B:
            return self.string()
        start = self.pos
        self.atom(allow_bracket=True)
        return self.data[start : self.pos]

    def nstring(self) -> bytes | None:
        if self.peek_is(b"NIL") or self.peek_is(b"nil"):
            self.pos += 3
            return None
        return self.string()

    def text(self) -> str:
        """The rest of the command (e.g. a quoted or atom argument as text)."""
        value = self.data[self.pos :].decode("utf-8", "replace")
        self.pos = len(self.data)
        return value

    # --- numbers, sets, lists -------------------------------------------------------------

    def number(self, *, nonzero: bool = False, wide: bool = False) -> int:
        start = self.pos
        while self.pos < len(self.data) and 0x30 <= self.data[self.pos] <= 0x39:
            self.pos += 1
        if self.pos == start:
            raise ParseError("expected a number")
        value = int(self.data[start : self.pos])
        if value > (MAX_NUMBER64 if wide else MAX_NUMBER) or (nonzero and value == 0):
            raise ParseError(f"number {value} out of range")
        return value

    def _seq_number(self) -> int | None:
        if self.maybe(b"*"):
            return None
        return self.number(nonzero=True)

    def sequence_set(self) -> SequenceSet:
        ranges = []
        while True:
            start = self._seq_number()
            end = start
            if self.maybe(b":"):
                end = self._seq_number()
            ranges.append(SeqRange(start, end))
            if not self.maybe(b","):
                return tuple(ranges)

    def open_list(self) -> None:
        self.expect(b"(")

    def list_of(self, item: str = "atom") -> list[str]:
        """`(a b c)` of atoms (flags, capability names)."""
        self.expect(b"(")
        items: list[str] = []
        while not self.maybe(b")"):
            if items:
                self.space()
            items.append(self.flag() if item == "flag" else self.atom())
        return items

    def flag(self) -> str:
        if self.maybe(b"\\"):
            if self.maybe(b"*"):
                return "\\*"
            return "\\" + self.atom()
        return self.atom()

    # --- dates ----------------------------------------------------------------------------

    def date(self) -> dt.date:
        """date = date-text / DQUOTE date-text DQUOTE; date-text = d-Mon-yyyy."""
        quoted = self.maybe(b'"')
        day = self.number()
        self.expect(b"-")
        month = _MONTHS.get(self.atom_upto(b"-").lower())
        self.expect(b"-")
        year = self.number()
        if quoted:
            self.expect(b'"')
        if month is None:
            raise ParseError("bad month in date")
        try:
            return dt.date(year, month, day)
        except ValueError:
            raise ParseError("impossible date") from None

    def atom_upto(self, stop: bytes) -> str:
        start = self.pos
        while self.pos < len(self.data) and self.data[self.pos : self.pos + 1] != stop:
            self.pos += 1
        return self.data[start : self.pos].decode("ascii", "replace")

    def date_time(self) -> dt.datetime:
        """`"dd-Mon-yyyy hh:mm:ss +zzzz"` (RFC 3501 date-time; day may be space-padded)."""
        self.expect(b'"')
        end = self.data.find(b'"', self.pos)
        if end < 0:
            raise ParseError("unterminated date-time")
        raw = self.data[self.pos : end]
        text = raw.decode("ascii", "replace")
        self.pos = end + 1
        match = re.fullmatch(
            r" ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})", text
        )
        if match is None or match.group(2).lower() not in _MONTHS:
            raise ParseError(f"bad date-time {shown(raw)}")
        day, mon, year, hh, mm, ss, sign, zh, zm = match.groups()
        offset = dt.timedelta(hours=int(zh), minutes=int(zm)) * (-1 if sign == "-" else 1)
        try:
            return dt.datetime(
                int(year), _MONTHS[mon.lower()], int(day), int(hh), int(mm), int(ss),
                tzinfo=dt.timezone(offset),
            )  # fmt: skip
        except ValueError:
            raise ParseError(f"impossible date-time {shown(raw)}") from None


def literal_announcement(line: bytes) -> tuple[int, bool, bool] | None:
    """If a command line ends with a literal announcement: (size, non-sync, binary)."""
    if not line.endswith(b"}"):
        return None
    start = line.rfind(b"{")
    if start < 0:
        return None
    inner = line[start + 1 : -1]
    nonsync = inner.endswith(b"+")
    digits = inner[:-1] if nonsync else inner
    if not digits.isdigit() or len(digits) > 12:
        return None
    binary = line[start - 1 : start] == b"~"
    return int(digits), nonsync, binary
