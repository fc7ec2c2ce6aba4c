"""The MIME part tree of a message, with the byte offsets of every part (RFC 2045, 2046).

What IMAP needs of a message is computed once, at delivery, and stored as JSON:
the ENVELOPE and the BODYSTRUCTURE (RFC 3501 §7.4.2), plus the byte offsets of
every part's header and body, so that `BODY[1.2.MIME]` or `BODY[2.TEXT]` are
slices of the stored blob.

The parser never raises on malformed input: a message without a blank line has
only headers, a multipart without its closing delimiter ends at the end of its
parent, and nesting deeper than `MAX_DEPTH` or more than `MAX_PARTS` parts is
treated as opaque text. Multipart splitting follows RFC 2046 §5.1.1: the line
break before a delimiter belongs to the delimiter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mss.core.mime.envelope import Envelope, build_envelope
from mss.core.mime.headers import (
    MAX_HEADER_FIELDS,
    Headers,
    Params,
    find_body_start,
    param,
    parse_content_type,
    parse_disposition,
    parse_headers,
    parse_msg_ids,
)

MAX_DEPTH = 50
MAX_PARTS = 5000


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
    # False when a limit was hit (MAX_DEPTH, MAX_PARTS, MAX_HEADER_FIELDS) or the
    # structure is ambiguous (a MIME field or a boundary twice): other readers of the
    # message (mail clients, the standard library) may then see parts this parse did not.
    complete: bool = True


class _Budget:
    __slots__ = ("complete", "parts")

    def __init__(self) -> None:
        self.parts = 0
        self.complete = True  # no limit hit, nothing ambiguous (see ParsedMessage)


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
    part = _part_of_headers(headers, default, start, body_start, end)
    too_deep = depth >= MAX_DEPTH or budget.parts >= MAX_PARTS
    boundary = param(part.params, "boundary")
    if headers.truncated or _ambiguous(headers, part.params):
        budget.complete = False
    if too_deep and (part.is_multipart or part.maintype == "message"):
        budget.complete = False  # what lies inside is not parsed
    if part.is_multipart and boundary and not too_deep:
        _add_body_parts(raw, part, boundary, depth, budget)
    elif part.maintype == "message" and part.subtype in ("rfc822", "global") and not too_deep:
        _add_encapsulated(raw, part, depth, budget)
    elif not part.is_multipart:
        part.lines = _count_lines(raw, body_start, end)
    return part


def _part_of_headers(
    headers: Headers, default: tuple[str, str], start: int, body_start: int, end: int
) -> Part:
    """The entity's own fields (RFC 2045 §5–8, RFC 2183, RFC 3282), not its children."""
    maintype, subtype, params = parse_content_type(headers.get("Content-Type"), default)
    if maintype == "text" and not any(k == "charset" for k, _ in params):
        params.append(("charset", "us-ascii"))  # RFC 2045 §5.2
    language = headers.get("Content-Language")
    return Part(
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


def _add_body_parts(raw: bytes, part: Part, boundary: str, depth: int, budget: _Budget) -> None:
    """The body parts of a multipart (a digest's default to message/rfc822, RFC 2046 §5.1.5)."""
    child_default = ("message", "rfc822") if part.subtype == "digest" else ("text", "plain")
    delimiter = boundary.encode("utf-8", "replace")
    for c_start, c_end in split_multipart(raw, part.body_start, part.body_end, delimiter):
        part.children.append(_parse_entity(raw, c_start, c_end, child_default, depth + 1, budget))
        if budget.parts >= MAX_PARTS:
            budget.complete = False
            break


def _add_encapsulated(raw: bytes, part: Part, depth: int, budget: _Budget) -> None:
    """A message/rfc822 body: its envelope, and its root entity as the only child."""
    body_start, end = part.body_start, part.body_end
    inner_body = find_body_start(raw, body_start, end)
    inner_headers = parse_headers(raw, body_start, inner_body)
    part.envelope = build_envelope(inner_headers)
    inner = _entity_from_headers(
        raw, inner_headers, body_start, inner_body, end, ("text", "plain"), depth + 1, budget
    )
    part.children.append(inner)
    part.lines = _count_lines(raw, body_start, end)


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
    budget = _Budget()
    root = _entity_from_headers(raw, headers, 0, body_start, len(raw), ("text", "plain"), 0, budget)
    ids = parse_msg_ids(headers.get("Message-ID"))
    return ParsedMessage(
        headers=headers,
        envelope=build_envelope(headers),
        body=root,
        message_id=ids[0] if ids else None,
        in_reply_to=parse_msg_ids(headers.get("In-Reply-To")),
        references=parse_msg_ids(headers.get("References")),
        subject=headers.get("Subject"),
        complete=budget.complete,
    )


# Fields that say what an entity is: seen twice, readers may disagree on which counts.
_ONCE = ("content-type", "content-transfer-encoding", "content-disposition")


def _ambiguous(headers: Headers, params: Params) -> bool:
    """A MIME field twice, or a boundary given twice: another reader may see other parts."""
    if any(headers.count(name) > 1 for name in _ONCE):
        return True
    return sum(1 for k, _ in params if k.startswith("boundary")) > 1


def with_prefix(parsed: ParsedMessage, prefix: bytes, raw: bytes) -> ParsedMessage:
    """`parse_message(prefix + raw)` from the parse of `raw`, without parsing it again.

    `prefix` is whole header lines put before the message on its way in (trace fields,
    a Message-ID or Date added at submission); the body's offsets move by its length,
    in place: `parsed` describes `prefix + raw` afterwards, no longer `raw`. A message
    whose first line continues a header field (it would fold into the prefix's last
    field) is parsed again whole.
    """
    if not prefix:
        return parsed
    if raw[:1] in (b" ", b"\t"):
        return parse_message(prefix + raw)
    added = parse_headers(prefix).fields
    headers = Headers((added + parsed.headers.fields)[:MAX_HEADER_FIELDS])
    envelope = parsed.envelope
    if any(name.lower() in _ENVELOPE_FIELDS for name, _ in added):
        envelope = build_envelope(headers)
    _shift(parsed.body, len(prefix), root=True)
    ids = parse_msg_ids(headers.get("Message-ID"))
    return ParsedMessage(
        headers=headers,
        envelope=envelope,
        body=parsed.body,
        message_id=ids[0] if ids else None,
        in_reply_to=parse_msg_ids(headers.get("In-Reply-To")),
        references=parse_msg_ids(headers.get("References")),
        subject=headers.get("Subject"),
        complete=parsed.complete,
    )


_ENVELOPE_FIELDS = frozenset(
    ("date", "subject", "from", "sender", "reply-to", "to", "cc", "bcc", "in-reply-to",
     "message-id")
)  # fmt: skip


def _shift(part: Part, by: int, *, root: bool = False) -> None:
    if not root:
        part.header_start += by
    part.body_start += by
    part.body_end += by
    for child in part.children:
        _shift(child, by)
