"""A fast, pure MIME structure parser: bytes in, part tree with offsets out.

What IMAP needs of a message is computed once, at delivery, and stored as JSON:
the ENVELOPE (RFC 3501 §7.4.2) and the BODYSTRUCTURE (RFC 3501 §7.4.2), plus the
byte offsets of every part's header and body, so that `BODY[1.2.MIME]` or
`BODY[2.TEXT]` are slices of the stored blob. Header values are kept raw (encoded
words stay encoded, as IMAP ENVELOPE requires), only unfolded (RFC 5322 §2.2.3).

The parser never raises on malformed input: a message without a blank line has
only headers, a multipart without its closing delimiter ends at the end of its
parent, and nesting deeper than `MAX_DEPTH` or more than `MAX_PARTS` parts is
treated as opaque text. Multipart splitting follows RFC 2046 §5.1.1: the line
break before a delimiter belongs to the delimiter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

MAX_DEPTH = 50
MAX_PARTS = 5000
MAX_HEADER_FIELDS = 2000

Params = list[tuple[str, str]]
# An address of the envelope: (display name, source route, mailbox, host); a group
# opens with (None, None, name, None) and closes with (None, None, None, None).
EnvAddress = tuple[str | None, str | None, str | None, str | None]

_FOLD_RE = re.compile(rb"\r?\n(?=[ \t])")
_MSGID_RE = re.compile(r"<[^<>\s]*>")


class Headers:
    """Header fields in order; names compared case-insensitively."""

    __slots__ = ("_index", "fields")

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        self.fields = fields
        self._index: dict[str, list[str]] = {}
        for key, value in fields:
            self._index.setdefault(key.lower(), []).append(value)

    def __repr__(self) -> str:
        return f"Headers({self.fields!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and other.fields == self.fields

    def get(self, name: str) -> str | None:
        values = self._index.get(name.lower())
        return values[0] if values else None

    def get_all(self, name: str) -> list[str]:
        return list(self._index.get(name.lower(), ()))


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


@dataclass(slots=True)
class Part:
    """One MIME entity with its offsets in the whole message.

    `header_start:body_start` is the entity's header section including the
    blank line; `body_start:body_end` its body.
    """

    maintype: str
    subtype: str
    params: Params
    content_id: str | None
    description: str | None
    encoding: str
    md5: str | None
    disposition: tuple[str, Params] | None
    language: list[str] | None
    location: str | None
    header_start: int
    body_start: int
    body_end: int
    lines: int
    children: list[Part] = field(default_factory=list)
    # For message/rfc822: the envelope of the encapsulated message; its root part
    # is children[0].
    envelope: Envelope | None = None

    @property
    def size(self) -> int:
        return self.body_end - self.body_start

    @property
    def is_multipart(self) -> bool:
        return self.maintype == "multipart"

    @property
    def is_message(self) -> bool:
        return self.envelope is not None

    def to_json(self) -> list[Any]:
        return [
            self.maintype,
            self.subtype,
            self.params,
            self.content_id,
            self.description,
            self.encoding,
            self.md5,
            None if self.disposition is None else [self.disposition[0], self.disposition[1]],
            self.language,
            self.location,
            self.header_start,
            self.body_start,
            self.body_end,
            self.lines,
            [c.to_json() for c in self.children],
            None if self.envelope is None else self.envelope.to_json(),
        ]

    @classmethod
    def from_json(cls, data: list[Any]) -> Part:
        disposition = data[7]
        return cls(
            data[0],
            data[1],
            [tuple(p) for p in data[2]],
            data[3],
            data[4],
            data[5],
            data[6],
            None if disposition is None else (disposition[0], [tuple(p) for p in disposition[1]]),
            data[8],
            data[9],
            data[10],
            data[11],
            data[12],
            data[13],
            [cls.from_json(c) for c in data[14]],
            None if data[15] is None else Envelope.from_json(data[15]),
        )


@dataclass(slots=True)
class ParsedMessage:
    """What delivery stores about a message besides its bytes."""

    headers: Headers
    envelope: Envelope
    body: Part
    message_id: str | None
    in_reply_to: list[str]
    references: list[str]
    subject: str | None


# --- headers -------------------------------------------------------------------------


def find_body_start(raw: bytes, start: int = 0, end: int | None = None) -> int:
    """Offset just after the blank line ending the header section at `start`.

    Returns `end` when there is no blank line (the entity is all header). An
    entity that begins with a blank line has an empty header section.
    """
    end = len(raw) if end is None else end
    if raw.startswith(b"\r\n", start) and start + 2 <= end:
        return start + 2
    if raw.startswith(b"\n", start) and start + 1 <= end:
        return start + 1
    pos = start
    while True:
        nl = raw.find(b"\n", pos, end)
        if nl < 0:
            return end
        nxt = nl + 1
        if raw.startswith(b"\r\n", nxt) and nxt + 2 <= end:
            return nxt + 2
        if raw.startswith(b"\n", nxt) and nxt + 1 <= end:
            return nxt + 1
        pos = nxt


def decode_header_bytes(value: bytes) -> str:
    """Header bytes to text: UTF-8 (RFC 6532), else Latin-1 so nothing is lost."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def parse_headers(raw: bytes, start: int = 0, end: int | None = None) -> Headers:
    """Header fields of `raw[start:end]` (a header section), unfolded, in order."""
    block = raw[start : len(raw) if end is None else end]
    fields: list[tuple[str, str]] = []
    for line in _FOLD_RE.sub(b"", block).split(b"\n"):
        name, colon, value = line.partition(b":")
        if not colon or not name or name[:1] in b" \t" or b" " in name.rstrip():
            continue
        fields.append(
            (name.rstrip().decode("ascii", "replace"), decode_header_bytes(value.strip()))
        )
        if len(fields) >= MAX_HEADER_FIELDS:
            break
    return Headers(fields)


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded words (`=?utf-8?q?…?=`); the text unchanged if malformed."""
    if "=?" not in value:
        return value
    from email.header import decode_header, make_header

    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError, UnicodeError):
        return value


def searchable_headers(headers: Headers) -> str:
    """One `name: value` line per field, encoded words decoded, case-folded (IMAP SEARCH)."""
    return "".join(
        f"{name.lower()}: {decode_words(value).casefold()}\n" for name, value in headers.fields
    )


# --- structured header values --------------------------------------------------------


def _skip_cfws(text: str, pos: int) -> int:
    """Skip folding whitespace and (nested) comments, RFC 5322 §3.2.2."""
    depth = 0
    n = len(text)
    while pos < n:
        ch = text[pos]
        if depth:
            if ch == "\\":
                pos += 1
            elif ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
        elif ch == "(":
            depth = 1
        elif ch not in " \t\r\n":
            break
        pos += 1
    return pos


def _quoted(text: str, pos: int) -> tuple[str, int]:
    """A quoted-string starting at `text[pos] == '"'`: its content and the end."""
    out: list[str] = []
    pos += 1
    n = len(text)
    while pos < n:
        ch = text[pos]
        if ch == "\\" and pos + 1 < n:
            out.append(text[pos + 1])
            pos += 2
            continue
        if ch == '"':
            return "".join(out), pos + 1
        out.append(ch)
        pos += 1
    return "".join(out), pos


_TSPECIALS = set('()<>@,;:\\"/[]?=')


def _token(text: str, pos: int) -> tuple[str, int]:
    start = pos
    while pos < len(text) and text[pos] not in _TSPECIALS and text[pos] not in " \t\r\n":
        pos += 1
    return text[start:pos], pos


def parse_params(text: str, pos: int) -> Params:
    """`; attribute=value` parameters (RFC 2045 §5.1), values unquoted, kept raw otherwise."""
    params: Params = []
    n = len(text)
    while pos < n:
        pos = _skip_cfws(text, pos)
        if pos >= n:
            break
        if text[pos] != ";":
            pos += 1
            continue
        pos = _skip_cfws(text, pos + 1)
        name, pos = _token(text, pos)
        pos = _skip_cfws(text, pos)
        if not name or pos >= n or text[pos] != "=":
            continue
        pos = _skip_cfws(text, pos + 1)
        if pos < n and text[pos] == '"':
            value, pos = _quoted(text, pos)
        else:
            start = pos
            while pos < n and text[pos] not in "; \t\r\n":
                pos += 1
            value = text[start:pos]
        params.append((name.lower(), value))
    return params


def parse_content_type(value: str | None, default: tuple[str, str]) -> tuple[str, str, Params]:
    """`type/subtype; params` of a Content-Type (RFC 2045 §5), lower-cased type names."""
    if value is None:
        return default[0], default[1], []
    pos = _skip_cfws(value, 0)
    maintype, pos = _token(value, pos)
    pos = _skip_cfws(value, pos)
    subtype = ""
    if pos < len(value) and value[pos] == "/":
        pos = _skip_cfws(value, pos + 1)
        subtype, pos = _token(value, pos)
    if not maintype or not subtype:
        # RFC 2045 §5.2: an unparsable Content-Type means text/plain us-ascii.
        return "text", "plain", [("charset", "us-ascii")]
    return maintype.lower(), subtype.lower(), parse_params(value, pos)


def parse_disposition(value: str | None) -> tuple[str, Params] | None:
    """Content-Disposition (RFC 2183): the type lower-cased and its parameters."""
    if value is None:
        return None
    pos = _skip_cfws(value, 0)
    kind, pos = _token(value, pos)
    if not kind:
        return None
    return kind.lower(), parse_params(value, pos)


def parse_msg_ids(value: str | None) -> list[str]:
    """The `<id@host>` items of Message-ID, In-Reply-To or References (RFC 5322 §3.6.4)."""
    if not value:
        return []
    return _MSGID_RE.findall(value)


# --- addresses ---------------------------------------------------------------------


def _phrase_or_local(text: str, pos: int, stops: str) -> tuple[str, int]:
    """Read words (atoms, quoted strings) until one of `stops`; comments dropped."""
    words: list[str] = []
    n = len(text)
    while True:
        pos = _skip_cfws(text, pos)
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


def parse_address_list(value: str | None) -> list[EnvAddress] | None:
    """An address-list header as IMAP envelope addresses (RFC 3501 §7.4.2).

    Groups become a start marker (None, None, name, None) and an end marker
    (None, None, None, None). Returns None for a missing or empty header.
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
        phrase, pos = _phrase_or_local(value, pos, ",;:<@")
        if pos < n and value[pos] == ":" and not in_group:
            result.append((None, None, phrase, None))
            in_group = True
            pos += 1
            continue
        if pos < n and value[pos] == "<":
            route, local, host, pos = _angle_addr(value, pos + 1)
            result.append((phrase or None, route, local, host))
            continue
        # A bare addr-spec: the phrase read so far is its local part.
        local = phrase.replace(" ", "")
        domain = ""
        if pos < n and value[pos] == "@":
            domain, pos = _phrase_or_local(value, pos + 1, ",;")
            domain = domain.replace(" ", "")
        if local or domain:
            result.append((None, None, local or None, domain or None))
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


# --- the part tree -----------------------------------------------------------------


class _Budget:
    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts = 0


def _count_lines(raw: bytes, start: int, end: int) -> int:
    return raw.count(b"\n", start, end)


def _parse_entity(
    raw: bytes, start: int, end: int, default: tuple[str, str], depth: int, budget: _Budget
) -> Part:
    body_start = find_body_start(raw, start, end)
    headers = parse_headers(raw, start, body_start)
    return _entity_from_headers(raw, headers, start, body_start, end, default, depth, budget)


def _entity_from_headers(
    raw: bytes,
    headers: Headers,
    start: int,
    body_start: int,
    end: int,
    default: tuple[str, str],
    depth: int,
    budget: _Budget,
) -> Part:
    budget.parts += 1
    maintype, subtype, params = parse_content_type(headers.get("Content-Type"), default)
    if maintype == "text" and not any(k == "charset" for k, _ in params):
        params.append(("charset", "us-ascii"))  # RFC 2045 §5.2
    language = headers.get("Content-Language")
    part = Part(
        maintype=maintype,
        subtype=subtype,
        params=params,
        content_id=headers.get("Content-ID"),
        description=headers.get("Content-Description"),
        encoding=(headers.get("Content-Transfer-Encoding") or "7bit").strip().lower() or "7bit",
        md5=headers.get("Content-MD5"),
        disposition=parse_disposition(headers.get("Content-Disposition")),
        language=[t.strip() for t in language.split(",") if t.strip()] if language else None,
        location=headers.get("Content-Location"),
        header_start=start,
        body_start=body_start,
        body_end=end,
        lines=0,
    )
    too_deep = depth >= MAX_DEPTH or budget.parts >= MAX_PARTS
    boundary = dict(params).get("boundary")
    if maintype == "multipart" and boundary and not too_deep:
        child_default = ("message", "rfc822") if subtype == "digest" else ("text", "plain")
        for c_start, c_end in split_multipart(
            raw, body_start, end, boundary.encode("utf-8", "replace")
        ):
            part.children.append(
                _parse_entity(raw, c_start, c_end, child_default, depth + 1, budget)
            )
            if budget.parts >= MAX_PARTS:
                break
    elif maintype == "message" and subtype in ("rfc822", "global") and not too_deep:
        inner_body = find_body_start(raw, body_start, end)
        inner_headers = parse_headers(raw, body_start, inner_body)
        part.envelope = build_envelope(inner_headers)
        part.children.append(
            _entity_from_headers(
                raw,
                inner_headers,
                body_start,
                inner_body,
                end,
                ("text", "plain"),
                depth + 1,
                budget,
            )
        )
        part.lines = _count_lines(raw, body_start, end)
    elif maintype == "multipart":
        part.lines = 0
    else:
        part.lines = _count_lines(raw, body_start, end)
    return part


def split_multipart(raw: bytes, start: int, end: int, boundary: bytes) -> list[tuple[int, int]]:
    """Body parts of a multipart body in `raw[start:end]`, as (start, end) offsets.

    RFC 2046 §5.1.1: a delimiter is `--boundary` at the start of a line followed by
    optional whitespace; the line break before it belongs to it; `--boundary--`
    closes. A missing close delimiter ends the last part at `end`.
    """
    delim = b"--" + boundary
    parts: list[tuple[int, int]] = []
    part_start: int | None = None
    pos = start
    while pos <= end:
        if (
            pos + len(delim) <= end
            and raw.startswith(delim, pos)
            and (pos == start or raw[pos - 1 : pos] == b"\n")
        ):
            found = pos
        else:
            nl = raw.find(b"\n" + delim, pos, end)
            if nl < 0:
                break
            found = nl + 1
        after = found + len(delim)
        closing = raw.startswith(b"--", after)
        tail = after + 2 if closing else after
        if tail < end and raw[tail : tail + 1] not in b" \t\r\n":
            pos = found + 1  # a longer boundary that merely starts like ours
            continue
        if part_start is not None:
            parts.append((part_start, _strip_line_break_before(raw, part_start, found)))
        line_end = raw.find(b"\n", tail, end)
        next_start = end if line_end < 0 else line_end + 1
        if closing:
            return parts
        part_start = next_start
        pos = next_start
        if len(parts) >= MAX_PARTS:
            return parts
    if part_start is not None:
        parts.append((part_start, end))
    return parts


def _strip_line_break_before(raw: bytes, part_start: int, delimiter: int) -> int:
    end = delimiter
    if end > part_start and raw[end - 1 : end] == b"\n":
        end -= 1
        if end > part_start and raw[end - 1 : end] == b"\r":
            end -= 1
    return end


def parse_message(raw: bytes) -> ParsedMessage:
    """Parse a whole message (RFC 5322 + MIME); never raises on malformed input."""
    body_start = find_body_start(raw)
    headers = parse_headers(raw, 0, body_start)
    root = _entity_from_headers(
        raw, headers, 0, body_start, len(raw), ("text", "plain"), 0, _Budget()
    )
    ids = parse_msg_ids(headers.get("Message-ID"))
    return ParsedMessage(
        headers=headers,
        envelope=build_envelope(headers),
        body=root,
        message_id=ids[0] if ids else None,
        in_reply_to=parse_msg_ids(headers.get("In-Reply-To")),
        references=parse_msg_ids(headers.get("References")),
        subject=headers.get("Subject"),
    )
