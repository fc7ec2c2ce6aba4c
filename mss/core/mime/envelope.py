"""The IMAP ENVELOPE (RFC 3501 §7.4.2): address lists parsed, other values raw.

Address lists are read as RFC 5322 §3.4 writes them, obsolete forms of §4.4 included
(routes, spaced dots, empty list elements), and as Dovecot reads the rest: a bare
address is named by its comment, `user@domain (Real Name)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mss.core.mime.headers import Headers, _quoted, _skip_cfws

# An address of the envelope: (display name, source route, mailbox, host); a group
# opens with (None, None, name, None) and closes with (None, None, None, None).
EnvAddress = tuple[str | None, str | None, str | None, str | None]

# RFC 3501 §7.4.2: a NIL host marks a group, so in an ENVELOPE an address without a
# domain (or a mailbox) gets these, as Dovecot fills them: `From: root` is no group.
MISSING_MAILBOX = "MISSING_MAILBOX"
MISSING_DOMAIN = "MISSING_DOMAIN"


@dataclass(slots=True)
class Envelope:
    """RFC 3501 §7.4.2 ENVELOPE: raw strings, address lists parsed."""

    date: str | None = None
    subject: str | None = None
    from_: list[EnvAddress] | None = None
    sender: list[EnvAddress] | None = None
    reply_to: list[EnvAddress] | None = None
    to: list[EnvAddress] | None = None
    cc: list[EnvAddress] | None = None
    bcc: list[EnvAddress] | None = None
    in_reply_to: str | None = None
    message_id: str | None = None

    def to_json(self) -> list[Any]:
        return [
            self.date,
            self.subject,
            self.from_,
            self.sender,
            self.reply_to,
            self.to,
            self.cc,
            self.bcc,
            self.in_reply_to,
            self.message_id,
        ]

    @classmethod
    def from_json(cls, data: list[Any]) -> Envelope:
        def addresses(value: Any) -> list[EnvAddress] | None:
            return None if value is None else [tuple(a) for a in value]

        return cls(
            date=data[0],
            subject=data[1],
            from_=addresses(data[2]),
            sender=addresses(data[3]),
            reply_to=addresses(data[4]),
            to=addresses(data[5]),
            cc=addresses(data[6]),
            bcc=addresses(data[7]),
            in_reply_to=data[8],
            message_id=data[9],
        )


def _phrase_or_local(
    text: str, pos: int, stops: str, comments: list[str] | None = None, sep: str = " "
) -> tuple[str, int]:
    """Read words (atoms, quoted strings) until one of `stops`, joined by `sep`; comments
    skipped (their text appended to `comments` when given).

    A phrase keeps one space between its words; a local part or a domain is read with
    `sep=""`: the white space and comments between its dot-atoms are not part of it
    (RFC 5322 §4.4 obs-local-part, obs-domain)."""
    words: list[str] = []
    n = len(text)
    while True:
        pos = _skip_cfws(text, pos, comments)
        if pos >= n or text[pos] in stops:
            return sep.join(words), pos
        if text[pos] == '"':
            word, pos = _quoted(text, pos)
            words.append(word)
            continue
        start = pos
        while pos < n and text[pos] not in stops and text[pos] not in ' \t\r\n"(':
            pos += 1
        if pos == start:  # a stray special: consume it as text
            pos += 1
        words.append(text[start:pos])


def _angle_addr(text: str, pos: int) -> tuple[str | None, str | None, str | None, int]:
    """`<[@route,@route:]local@domain>` starting after '<': route, mailbox, host, end.

    Comments and white space may stand between the tokens (RFC 5322 §3.4.1 CFWS):
    `<user (c)@ (c) domain>` is user@domain."""
    end = text.find(">", pos)
    stop = len(text) if end < 0 else end
    inner = text[pos:stop]
    route: str | None = None
    if inner.lstrip().startswith("@") and ":" in inner:
        route, _, inner = inner.partition(":")
        route = route.strip()
    local, at = _phrase_or_local(inner, 0, "@", sep="")
    host = _phrase_or_local(inner, at + 1, "", sep="")[0] if at < len(inner) else ""
    return route, local or None, host or None, stop + 1


def _addr_spec(value: str, pos: int) -> tuple[EnvAddress | None, int]:
    """A bare addr-spec at `pos`; its display name is its last comment.

    `user@domain (Real Name)` names Real Name, as Dovecot and most readers show it
    (RFC 5322 §3.4 leaves a comment's meaning open); a comment before it does not.
    """
    comments: list[str] = []
    local, pos = _phrase_or_local(value, pos, ",;:<@", comments, sep="")
    domain = ""
    if pos < len(value) and value[pos] == "@":
        domain, pos = _phrase_or_local(value, pos + 1, ",;", comments, sep="")
    if not (local or domain):
        return None, pos
    name = comments[-1].strip() if comments else ""
    return (name or None, None, local or None, domain or None), pos


def parse_address_list(value: str | None, *, fill: bool = False) -> list[EnvAddress] | None:
    """An address-list header as IMAP envelope addresses (RFC 3501 §7.4.2).

    Groups become a start marker (None, None, name, None) and an end marker
    (None, None, None, None). A bare `user@domain (Real Name)` is named by its
    comment. With `fill`, a missing mailbox or domain of an address is filled in
    (MISSING_MAILBOX, MISSING_DOMAIN) so that it cannot be taken for a group marker.
    Returns None for a missing or empty header.
    """
    if value is None:
        return None
    result: list[EnvAddress] = []
    pos, n = 0, len(value)
    in_group = False
    while pos < n:
        pos = _skip_cfws(value, pos)
        if pos >= n:
            break
        ch = value[pos]
        if ch == ",":
            pos += 1
            continue
        if ch == ";":
            if in_group:
                result.append((None, None, None, None))
                in_group = False
            pos += 1
            continue
        start = pos
        phrase, pos = _phrase_or_local(value, pos, ",;:<@")
        if pos < n and value[pos] == ":" and not in_group:
            result.append((None, None, phrase, None))
            in_group = True
            pos += 1
            continue
        if pos < n and value[pos] == "<":
            route, local, host, pos = _angle_addr(value, pos + 1)
            result.append(_filled((phrase or None, route, local, host), fill))
            continue
        address, pos = _addr_spec(value, start)
        if address is not None:
            result.append(_filled(address, fill))
        elif pos < n and value[pos] not in ",;":
            pos += 1
    if in_group:
        result.append((None, None, None, None))
    return result or None


def _filled(address: EnvAddress, fill: bool) -> EnvAddress:
    if not fill:
        return address
    name, route, mailbox, host = address
    return name, route, mailbox or MISSING_MAILBOX, host or MISSING_DOMAIN


def build_envelope(headers: Headers) -> Envelope:
    """The IMAP ENVELOPE of a header section (RFC 3501 §7.4.2).

    Sender and Reply-To default to From when absent, as the RFC requires.
    """
    from_ = parse_address_list(headers.get("From"), fill=True)
    sender = parse_address_list(headers.get("Sender"), fill=True) or from_
    reply_to = parse_address_list(headers.get("Reply-To"), fill=True) or from_
    return Envelope(
        date=headers.get("Date"),
        subject=headers.get("Subject"),
        from_=from_,
        sender=sender,
        reply_to=reply_to,
        to=parse_address_list(headers.get("To"), fill=True),
        cc=parse_address_list(headers.get("Cc"), fill=True),
        bcc=parse_address_list(headers.get("Bcc"), fill=True),
        in_reply_to=headers.get("In-Reply-To"),
        message_id=headers.get("Message-ID"),
    )
