"""APPEND's grammar with MULTIAPPEND (RFC 3502) and CATENATE (RFC 4469):

    append         = "APPEND" SP mailbox 1*(SP append-message)
    append-message = [flag-list SP] [date-time SP] append-data
    append-data    = literal / literal8 / "CATENATE" SP "(" cat-part *(SP cat-part) ")"
    cat-part       = "TEXT" SP (literal / literal8) / "URL" SP astring

Each message is a list of parts: bytes to copy, or an IMAP URL (RFC 5092) of a message
or section already stored, resolved by the session (`imap.appending`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from mss.imap.parsing.tokens import ParseError, Reader

MAX_MESSAGES = 100  # messages in one MULTIAPPEND
MAX_PARTS = 50  # parts in one CATENATE


@dataclass(frozen=True, slots=True)
class Url:
    """A CATENATE URL part, as sent."""

    text: str


Part = bytes | Url


@dataclass(frozen=True, slots=True)
class AppendMessage:
    flags: tuple[str, ...]
    date: dt.datetime | None
    parts: tuple[Part, ...]  # one literal for a plain APPEND
    binary: bool = False  # a literal8 among them (RFC 3516)


def g_append(r: Reader, mailbox: str) -> dict[str, Any]:
    messages: list[AppendMessage] = []
    while r.maybe(b" "):
        messages.append(_message(r))
        if len(messages) > MAX_MESSAGES:
            raise ParseError("too many messages in one APPEND")
    if not messages:
        raise ParseError("APPEND needs a message")
    return {"mailbox": mailbox, "messages": messages}


def _message(r: Reader) -> AppendMessage:
    flags: list[str] = []
    date: dt.datetime | None = None
    if r.peek_is(b"("):
        flags = r.list_of("flag")
        r.space()
    if r.peek_is(b'"'):
        date = r.date_time()
        r.space()
    if r.maybe_word(b"CATENATE "):
        parts, binary = _catenate(r)
    else:
        binary = r.peek_is(b"~")
        parts = (r.literal(binary=True),)
    return AppendMessage(tuple(flags), date, parts, binary)


def _catenate(r: Reader) -> tuple[tuple[Part, ...], bool]:
    r.expect(b"(")
    parts: list[Part] = []
    binary = False
    while not r.maybe(b")"):
        if parts:
            r.space()
        if r.maybe_word(b"TEXT "):
            binary = binary or r.peek_is(b"~")
            parts.append(r.literal(binary=True))
        elif r.maybe_word(b"URL "):
            parts.append(Url(r.astring().decode("utf-8", "replace")))
        else:
            raise ParseError("CATENATE parts are TEXT or URL")
        if len(parts) > MAX_PARTS:
            raise ParseError("too many CATENATE parts")
    if not parts:
        raise ParseError("CATENATE needs a part")
    return tuple(parts), binary
