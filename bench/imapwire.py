"""Parsing IMAP response data on the client side (the stress tool checks replies with it).

`parse_values` turns the data of an untagged response into nested Python
values: atoms and strings as bytes, NIL as None, parenthesized lists as lists.
Literals (`{n}` CRLF and n bytes, as `RawIMAP.read_line` keeps them) become
bytes. A FETCH attribute name keeps its section and partial suffix, spaces
included: `BODY[HEADER.FIELDS (From To)]<0>` is one atom.
"""

from __future__ import annotations

import re
from typing import Any

_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n")
_ATOM_END = b" ()\r\n"


class WireError(ValueError):
    """Response data that does not parse."""


def parse_values(data: bytes) -> list[Any]:
    values, _ = _parse_sequence(data, 0, closing=None)
    return values


def _parse_sequence(data: bytes, pos: int, closing: int | None) -> tuple[list[Any], int]:
    out: list[Any] = []
    size = len(data)
    while True:
        while pos < size and data[pos] == 0x20:
            pos += 1
        if pos >= size or data[pos : pos + 2] == b"\r\n":
            if closing is not None:
                raise WireError("unbalanced parenthesis")
            return out, pos
        ch = data[pos]
        if ch == closing:
            return out, pos + 1
        if ch == 0x28:  # (
            inner, pos = _parse_sequence(data, pos + 1, 0x29)
            out.append(inner)
        elif ch == 0x29:
            raise WireError("unexpected )")
        elif ch == 0x22:  # "
            value, pos = _quoted(data, pos)
            out.append(value)
        elif ch == 0x7B:  # {
            match = _LITERAL.match(data, pos)
            if match is None:
                raise WireError("bad literal")
            start = match.end()
            end = start + int(match.group(1))
            if end > size:
                raise WireError("short literal")
            out.append(data[start:end])
            pos = end
        else:
            value, pos = _atom(data, pos)
            out.append(None if value.upper() == b"NIL" else value)


def _quoted(data: bytes, pos: int) -> tuple[bytes, int]:
    out = bytearray()
    pos += 1
    while pos < len(data):
        ch = data[pos]
        if ch == 0x5C:  # backslash
            out.append(data[pos + 1])
            pos += 2
        elif ch == 0x22:
            return bytes(out), pos + 1
        else:
            out.append(ch)
            pos += 1
    raise WireError("unterminated quoted string")


def _atom(data: bytes, pos: int) -> tuple[bytes, int]:
    start = pos
    depth = 0
    while pos < len(data):
        ch = data[pos]
        if ch == 0x5B:  # [
            depth += 1
        elif ch == 0x5D:
            depth -= 1
        elif depth == 0 and ch in _ATOM_END:
            break
        pos += 1
    if pos < len(data) and data[pos] == 0x3C and data[pos - 1] == 0x5D:  # <origin>
        close = data.index(b">", pos)
        pos = close + 1
    return data[start:pos], pos


def fetch_items(values: list[Any]) -> dict[str, Any]:
    """The attributes of `* n FETCH (...)` (the list after FETCH) as name → value."""
    items: dict[str, Any] = {}
    if len(values) % 2:
        raise WireError("odd number of FETCH items")
    for i in range(0, len(values), 2):
        name = values[i]
        if not isinstance(name, bytes):
            raise WireError("FETCH item name is not an atom")
        items[name.decode().upper()] = values[i + 1]
    return items


def render(value: Any) -> str:
    """A canonical text of a parsed value, for comparing answers over time."""
    if value is None:
        return "NIL"
    if isinstance(value, list):
        return "(" + " ".join(render(v) for v in value) + ")"
    text: str = value.decode("utf-8", "replace")
    return '"' + text + '"'
