"""What SEARCH reads in a header field (RFC 3501 §6.4.4): pure, never raises.

- `sent_day`: the date of a Date: field in the field's own time zone, the date that
  SENTBEFORE, SENTON and SENTSINCE compare (as Dovecot does: a message written at
  23:00 +0200 was sent that day, whatever the day in UTC).
- `address_text`: an address list (From, To, Cc, Bcc) written out as the client reads
  it, `Name <local@domain>` for each mailbox and `group: ...;` for a group, so that
  FROM/TO/CC/BCC match the display name and the address alike, whatever the form
  the header used: the comment form `local@domain (Name)` (the comment is the name,
  RFC 5322 §3.4 and the obsolete RFC 822 form), comments and spaces inside the
  addr-spec (RFC 5322 §4.4) dropped, quoted names unquoted.

- `addresses`: the same list as entries (mailbox, group start or end), which SORT reads
  for FROM, TO, CC and DISPLAYFROM (RFC 5256 §3, RFC 5957).

The values are those of the stored searchable header text (`header_text`, one
`name: value` line per field, `field_values` reads them): encoded words already
decoded (RFC 2047), case-folded.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from email.utils import parsedate_tz
from typing import NamedTuple

from mss.core.mime.headers import _quoted  # the quoted-string of RFC 5322 §3.2.4

_ATOM = re.compile(r'[^\s"(,;:<>@]+')
_SPECIALS = ",;:<>@"


def field_values(header_text: str, name: str) -> list[str]:
    """The values of the fields named `name` (lower case) in a searchable header text."""
    prefix = name + ":"
    return [line[len(prefix) :] for line in header_text.split("\n") if line.startswith(prefix)]


def sent_day(value: str) -> dt.date | None:
    """The day of a Date: value in its own zone (RFC 5322 §3.3), None if unreadable."""
    try:
        parsed = parsedate_tz(value)
        return None if parsed is None else dt.date(parsed[0], parsed[1], parsed[2])
    except (ValueError, TypeError, IndexError, OverflowError):
        return None


def _comment(text: str, pos: int) -> tuple[str, int]:
    """A (nested) comment starting at `text[pos] == '('`: its text and the end."""
    out: list[str] = []
    depth = 0
    while pos < len(text):
        ch = text[pos]
        pos += 1
        if ch == "\\" and pos < len(text):
            out.append(text[pos])
            pos += 1
            continue
        if ch == "(":
            depth += 1
            if depth == 1:
                continue
        elif ch == ")":
            depth -= 1
            if depth == 0:
                break
        out.append(ch)
    return " ".join("".join(out).split()), pos


def _tokens(text: str) -> Iterator[tuple[str, str]]:
    """(kind, text): kind is "w" (atom or quoted string), "(" (a comment) or a special."""
    pos = 0
    while pos < len(text):
        ch = text[pos]
        if ch.isspace():
            pos += 1
        elif ch == "(":
            comment, pos = _comment(text, pos)
            yield "(", comment
        elif ch == '"':
            word, pos = _quoted(text, pos)
            yield "w", word
        elif ch in _SPECIALS:
            pos += 1
            yield ch, ch
        else:
            match = _ATOM.match(text, pos)
            assert match is not None  # `ch` is neither a space nor a special
            pos = match.end()
            yield "w", match.group()


class Entry(NamedTuple):
    """One element of an address list: a mailbox (`name` may be empty), or a group's
    start (`name` is the group's) or end (`kind` "end")."""

    kind: str  # "mailbox", "group" or "end"
    name: str = ""
    spec: str = ""  # local@domain of a mailbox

    @property
    def local(self) -> str:
        return self.spec.rpartition("@")[0] if "@" in self.spec else self.spec


class _Reader:
    """Collects the tokens of one mailbox at a time into entries."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.words: list[str] = []  # the phrase, or a bare addr-spec
        self.comment = ""  # the last comment: the name of `local@domain (Name)`
        self.spec: list[str] | None = None  # inside or after `<...>`
        self.in_angle = False
        self.in_group = False

    def token(self, kind: str, text: str) -> None:
        if self.in_angle:
            self._angle(kind, text)
        elif kind == "(":
            self.comment = text
        elif kind == "<":
            self.in_angle, self.spec = True, []
        elif kind == ":" and not self.in_group and self.spec is None:
            self.entries.append(Entry("group", " ".join(self.words)))
            self.words, self.in_group = [], True
        elif kind in ",;":
            self.mailbox()
            if kind == ";" and self.in_group:
                self.entries.append(Entry("end"))
                self.in_group = False
        elif self.spec is None:
            self.words.append(text)

    def _angle(self, kind: str, text: str) -> None:
        assert self.spec is not None
        if kind == ">":
            self.in_angle = False
        elif kind == ":":  # the end of an obsolete route (RFC 5322 §4.4): dropped
            self.spec.clear()
        elif kind != "(":
            self.spec.append(text)

    def mailbox(self) -> None:
        if self.spec is not None:
            name, spec = " ".join(self.words), "".join(self.spec)
        else:
            name, spec = "", "".join(self.words)
        name = name or self.comment
        if spec or name:
            self.entries.append(Entry("mailbox", name, spec))
        self.words, self.comment, self.spec, self.in_angle = [], "", None, False


def addresses(value: str) -> list[Entry]:
    """The mailboxes and groups of an address list, whatever its form (module doc)."""
    reader = _Reader()
    for kind, text in _tokens(value):
        reader.token(kind, text)
    reader.mailbox()
    return reader.entries


def _written(entry: Entry) -> str:
    if entry.kind == "group":
        return f"{entry.name}:"
    if entry.kind == "end":
        return ";"
    return f"{entry.name} <{entry.spec}>" if entry.name else entry.spec


def address_text(value: str) -> str:
    """An address list as `Name <local@domain>, group: a, b;` (see the module's doc)."""
    text = ", ".join(_written(entry) for entry in addresses(value))
    return text.replace(":, ", ": ").replace(", ;", ";")
