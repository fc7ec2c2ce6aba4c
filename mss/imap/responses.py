"""Rendering IMAP data (RFC 3501 §7, §9): strings, ENVELOPE, BODYSTRUCTURE, sections.

Everything here is pure: stored JSON and message bytes in, response bytes out.
Strings go out quoted when they are printable ASCII, as literals otherwise
(8-bit headers, CR/LF), so no client ever receives an invalid quoted string; no
literal carries a NUL byte, only BINARY's literal8 (RFC 3516).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from mss.core.mime import (
    Envelope,
    Part,
    UnknownEncoding,
    decode_strict,
    find_body_start,
    parse_headers,
)
from mss.errors import MssError
from mss.imap.parsing.fetch import Section

NIL = b"NIL"
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def string(value: str | bytes | None) -> bytes:
    """NIL, a quoted string, or a literal when the value cannot be quoted."""
    if value is None:
        return NIL
    data = value.encode("utf-8") if isinstance(value, str) else value
    if all(32 <= b < 127 for b in data) and len(data) < 1000:
        return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return literal(data)


def literal(data: bytes) -> bytes:
    """A literal: RFC 3501 §9 CHAR8 excludes NUL, so a NUL byte goes out as 0x80 (as
    Dovecot sends it), the length unchanged; only BINARY sends NULs, as `literal8`."""
    if b"\0" in data:
        data = data.replace(b"\0", b"\x80")
    return b"{%d}\r\n" % len(data) + data


def literal8(data: bytes) -> bytes:
    """RFC 3516 literal8 `~{n}`: the only form that may carry NUL bytes."""
    return b"~{%d}\r\n" % len(data) + data


def astring(value: str) -> bytes:
    """A mailbox name or similar: an atom when possible."""
    data = value.encode("utf-8")
    if data and all(33 <= b < 127 and b not in b'(){%*"\\]' for b in data):
        return data
    return string(data)


def plist(items: Iterable[bytes]) -> bytes:
    return b"(" + b" ".join(items) + b")"


def flags(names: Iterable[str]) -> bytes:
    return b"(" + " ".join(names).encode() + b")"


def sequence_set(numbers: Sequence[int]) -> str:
    """1,2,3,5 → "1:3,5" (RFC 3501 §9 sequence-set, for sorted numbers)."""
    parts: list[str] = []
    start = prev = None
    for n in numbers:
        if start is None:
            start = prev = n
        elif n == prev + 1:  # type: ignore[operator]
            prev = n
        else:
            parts.append(f"{start}:{prev}" if start != prev else str(start))
            start = prev = n
    if start is not None:
        parts.append(f"{start}:{prev}" if start != prev else str(start))
    return ",".join(parts)


def internal_date(seconds: int) -> bytes:
    """`"22-Nov-2026 10:00:00 +0000"` (RFC 3501 date-time)."""
    when = dt.datetime.fromtimestamp(seconds, dt.UTC)
    return (
        f'"{when.day:02d}-{_MONTHS[when.month - 1]}-{when.year:04d} {when:%H:%M:%S} +0000"'.encode()
    )


# --- ENVELOPE and BODYSTRUCTURE ----------------------------------------------------------------


def _addresses(addresses: list[Any] | None) -> bytes:
    if not addresses:
        return NIL
    return plist(plist(string(part) for part in address) for address in addresses)


def envelope(env: Envelope) -> bytes:
    """RFC 3501 §7.4.2 ENVELOPE."""
    return plist(
        [
            string(env.date),
            string(env.subject),
            _addresses(env.from_),
            _addresses(env.sender),
            _addresses(env.reply_to),
            _addresses(env.to),
            _addresses(env.cc),
            _addresses(env.bcc),
            string(env.in_reply_to),
            string(env.message_id),
        ]
    )


def _params(params: list[tuple[str, str]]) -> bytes:
    if not params:
        return NIL
    return plist(string(item) for pair in params for item in pair)


def _disposition(part: Part) -> bytes:
    if part.disposition is None:
        return NIL
    kind, params = part.disposition
    return plist([string(kind), _params(params)])


def _language(part: Part) -> bytes:
    if not part.language:
        return NIL
    if len(part.language) == 1:
        return string(part.language[0])
    return plist(string(lang) for lang in part.language)


def body_structure(part: Part, *, extensible: bool) -> bytes:
    """BODYSTRUCTURE (extensible) or BODY (RFC 3501 §7.4.2)."""
    if part.is_multipart:
        if not part.children:  # a multipart without parts: describe it as empty text
            return b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)'
        inner = b"".join(body_structure(c, extensible=extensible) for c in part.children)
        fields = [inner, string(part.subtype)]
        if extensible:
            fields += [
                _params(part.params),
                _disposition(part),
                _language(part),
                string(part.location),
            ]
        return b"(" + b" ".join(fields) + b")"
    fields = [
        string(part.maintype),
        string(part.subtype),
        _params(part.params),
        string(part.content_id),
        string(part.description),
        string(part.encoding),
        str(part.size).encode(),
    ]
    if part.is_message and part.envelope is not None and part.children:
        fields += [
            envelope(part.envelope),
            body_structure(part.children[0], extensible=extensible),
            str(part.lines).encode(),
        ]
    elif part.maintype == "text":
        fields.append(str(part.lines).encode())
    if extensible:
        fields += [string(part.md5), _disposition(part), _language(part), string(part.location)]
    return plist(fields)


# --- sections ---------------------------------------------------------------------------------


class SectionError(MssError):
    """The section does not exist in this message."""


class UndecodablePart(SectionError):
    """The part exists, but its Content-Transfer-Encoding cannot be undone (BINARY)."""


def find_part(root: Part, path: tuple[int, ...]) -> Part:
    """The part a section path names (RFC 3501 §6.4.5 part numbering).

    A multipart's numbers name its children; the body of a message that is not
    multipart is its part 1. A message/rfc822 part is a message: the numbers after
    its own name the parts of the encapsulated message (BODY[2.1] is the body of a
    single-part message in part 2, or its first part when it is multipart).
    """
    part, is_message_body = root, True
    for depth, number in enumerate(path):
        if depth and part.is_message and part.children:
            part, is_message_body = part.children[0], True  # into the encapsulated message
        if part.is_multipart:
            if not 1 <= number <= len(part.children):
                raise SectionError(f"no part {number}")
            part = part.children[number - 1]
        elif number != 1 or not is_message_body:
            raise SectionError(f"no part {number} in a single-part body")
        is_message_body = False
    return part


def _header_lines(block: bytes) -> list[tuple[str, bytes]]:
    """(lower-cased name, whole field with its folded lines and CRLF) of a header block."""
    fields: list[tuple[str, bytes]] = []
    for line in block.split(b"\r\n")[:-1] if block.endswith(b"\r\n") else block.split(b"\r\n"):
        if not line:
            continue
        if line[:1] in (b" ", b"\t") and fields:
            name, text = fields[-1]
            fields[-1] = (name, text + line + b"\r\n")
            continue
        name = line.split(b":", 1)[0].strip().decode("ascii", "replace").lower()
        fields.append((name, line + b"\r\n"))
    return fields


def _select_fields(block: bytes, names: tuple[str, ...], keep: bool) -> bytes:
    wanted = {n.lower() for n in names}
    kept = [text for name, text in _header_lines(block) if (name in wanted) == keep]
    return b"".join(kept) + b"\r\n"


def section_bytes(raw: bytes, root: Part, section: Section) -> bytes:
    """The bytes of BODY[section] (before any <partial>)."""
    if not section.part:
        message = root
        header_end = root.body_start
        start = 0
    else:
        part = find_part(root, section.part)
        if section.text == "MIME":
            return raw[part.header_start : part.body_start]
        if section.text is None:
            return raw[part.body_start : part.body_end]
        if not (part.is_message and part.children):
            raise SectionError("HEADER and TEXT apply to a message part")
        message = part.children[0]
        start = message.header_start
        header_end = message.body_start
    if section.text is None:
        return raw[start : message.body_end]
    if section.text == "TEXT":
        return raw[header_end : message.body_end]
    block = raw[start:header_end]
    if section.text == "HEADER":
        return block
    return _select_fields(block, section.fields, keep=section.text == "HEADER.FIELDS")


def partial(data: bytes, window: tuple[int, int] | None) -> bytes:
    if window is None:
        return data
    start, count = window
    return data[start : start + count]


def decode_part(raw: bytes, part: Part) -> bytes:
    """BINARY (RFC 3516): the part's body with its transfer encoding undone."""
    try:
        return decode_strict(raw[part.body_start : part.body_end], part.encoding)
    except UnknownEncoding:
        raise UndecodablePart("unknown Content-Transfer-Encoding") from None


def header_block(raw: bytes) -> bytes:
    return raw[: find_body_start(raw)]


def header_value(raw: bytes, name: str) -> str | None:
    return parse_headers(raw, 0, find_body_start(raw)).get(name)
