"""The IMAP ENVELOPE (RFC 3501 §7.4.2): address lists parsed, other values raw."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mss.core.mime.headers import Headers, _quoted, _skip_cfws

# An address of the envelope: (display name, source route, mailbox, host); a group
# opens with (None, None, name, None) and closes with (None, None, None, None).
EnvAddress = tuple[str | None, str | None, str | None, str | None]


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
    text: str, pos: int, stops: str, comments: list[str] | None = None
) -> tuple[str, int]:
    """Read words (atoms, quoted strings) until one of `stops`; comments skipped (their
    text appended to `comments` when given)."""
    words: list[str] = []
    n = len(text)
    while True:
        pos = _skip_cfws(text, pos, comments)
        if pos >= n or text[pos] in stops:
            return " ".join(words), pos
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
    """`<[@route:]local@domain>` starting after '<': route, mailbox, host, end."""
    end = text.find(">", pos)
    inner = text[pos : len(text) if end < 0 else end]
    route: str | None = None
    if inner.lstrip().startswith("@") and ":" in inner:
        route, _, inner = inner.partition(":")
        route = route.strip()
    local, at, host = _split_addr_spec(inner.strip())
    return route, local, host if at else None, len(text) if end < 0 else end + 1


def _split_addr_spec(spec: str) -> tuple[str | None, str, str]:
    if not spec:
        return None, "", ""
    if spec.startswith('"'):
        local, pos = _quoted(spec, 0)
        rest = spec[pos:].strip()
        if rest.startswith("@"):
            return local, "@", rest[1:].strip()
        return local, "", ""
    local, at, host = spec.rpartition("@")
    if not at:
        return spec, "", ""
    return local.strip(), at, host.strip()


def _addr_spec(
    value: str, pos: int, local: str, comments: list[str]
) -> tuple[EnvAddress | None, int]:
    """A bare addr-spec whose local part was read; its display name is its last comment.

    `user@domain (Real Name)` names Real Name, as Dovecot and most readers show it
    (RFC 5322 §3.4 leaves a comment's meaning open; obs-local-part keeps its dots).
    """
    local = local.replace(" ", "")
    domain = ""
    if pos < len(value) and value[pos] == "@":
        domain, pos = _phrase_or_local(value, pos + 1, ",;", comments)
        domain = domain.replace(" ", "")
    if not (local or domain):
        return None, pos
    name = comments[-1].strip() if comments else ""
    return (name or None, None, local or None, domain or None), pos


def parse_address_list(value: str | None) -> list[EnvAddress] | None:
    """An address-list header as IMAP envelope addresses (RFC 3501 §7.4.2).

    Groups become a start marker (None, None, name, None) and an end marker
    (None, None, None, None). A bare `user@domain (Real Name)` is named by its
    comment. Returns None for a missing or empty header.
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
        comments: list[str] = []
        phrase, pos = _phrase_or_local(value, pos, ",;:<@", comments)
        if pos < n and value[pos] == ":" and not in_group:
            result.append((None, None, phrase, None))
            in_group = True
            pos += 1
            continue
        if pos < n and value[pos] == "<":
            route, local, host, pos = _angle_addr(value, pos + 1)
            result.append((phrase or None, route, local, host))
            continue
        address, pos = _addr_spec(value, pos, phrase, comments)
        if address is not None:
            result.append(address)
        elif pos < n and value[pos] not in ",;":
            pos += 1
    if in_group:
        result.append((None, None, None, None))
    return result or None


def build_envelope(headers: Headers) -> Envelope:
    """The IMAP ENVELOPE of a header section (RFC 3501 §7.4.2).

    Sender and Reply-To default to From when absent, as the RFC requires.
    """
    from_ = parse_address_list(headers.get("From"))
    sender = parse_address_list(headers.get("Sender")) or from_
    reply_to = parse_address_list(headers.get("Reply-To")) or from_
    return Envelope(
        date=headers.get("Date"),
        subject=headers.get("Subject"),
        from_=from_,
        sender=sender,
        reply_to=reply_to,
        to=parse_address_list(headers.get("To")),
        cc=parse_address_list(headers.get("Cc")),
        bcc=parse_address_list(headers.get("Bcc")),
        in_reply_to=headers.get("In-Reply-To"),
        message_id=headers.get("Message-ID"),
    )
