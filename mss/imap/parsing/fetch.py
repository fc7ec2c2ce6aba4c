"""FETCH attributes (RFC 3501 §6.4.5, RFC 3516 BINARY, RFC 7162 MODSEQ): pure.

`fetch_atts(reader)` reads a FETCH item list (or a macro: ALL, FAST, FULL) into
`FetchAtt`s; a `Section` is the `[1.2.HEADER.FIELDS (A B)]` part of BODY[…].
"""

from __future__ import annotations

from dataclasses import dataclass

from mss.imap.parsing.tokens import ParseError, Reader


@dataclass(frozen=True, slots=True)
class Section:
    """`[1.2.HEADER.FIELDS (A B)]`: part path, text specifier, header field names."""

    part: tuple[int, ...] = ()
    text: str | None = None  # HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT, MIME
    fields: tuple[str, ...] = ()

    def label(self) -> str:
        parts = [".".join(str(p) for p in self.part)] if self.part else []
        if self.text:
            text = self.text
            if self.fields:
                text += " (" + " ".join(self.fields) + ")"
            parts.append(text)
        return ".".join(parts)


@dataclass(frozen=True, slots=True)
class FetchAtt:
    name: str  # FLAGS, UID, INTERNALDATE, RFC822.SIZE, ENVELOPE, BODY, BODYSTRUCTURE,
    # RFC822, RFC822.HEADER, RFC822.TEXT, MODSEQ, BODY[…], BINARY[…], BINARY.SIZE[…]
    section: Section | None = None
    partial: tuple[int, int] | None = None
    peek: bool = False

    def label(self) -> str:
        """The item's name in the response (RFC 3501 §7.4.2: partial shows the origin only)."""
        if self.section is None:
            return self.name
        text = f"{self.name}[{self.section.label()}]"
        if self.partial is not None:
            text += f"<{self.partial[0]}>"
        return text


FETCH_MACROS = {
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}
SIMPLE_FETCH = frozenset(
    [
        "FLAGS",
        "UID",
        "INTERNALDATE",
        "RFC822.SIZE",
        "ENVELOPE",
        "BODY",
        "BODYSTRUCTURE",
        "RFC822",
        "RFC822.HEADER",
        "RFC822.TEXT",
        "MODSEQ",
    ]
)


def _section(reader: Reader) -> Section:
    reader.expect(b"[")
    part: list[int] = []
    text: str | None = None
    fields: list[str] = []
    while not reader.peek_is(b"]"):
        if reader.peek() is not None and 0x30 <= reader.peek() <= 0x39:  # type: ignore[operator]
            part.append(reader.number(nonzero=True))
            if not reader.maybe(b"."):
                break
            continue
        word = reader.atom().upper()
        if word not in ("HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME"):
            raise ParseError(f"unknown section text {word}")
        if word == "MIME" and not part:
            raise ParseError("MIME needs a part number")
        text = word
        if word.startswith("HEADER.FIELDS"):
            reader.space()
            reader.expect(b"(")
            while True:
                fields.append(reader.astring().decode("ascii", "replace").upper())
                if reader.maybe(b")"):
                    break
                reader.space()
        break
    reader.expect(b"]")
    return Section(tuple(part), text, tuple(fields))


def _partial(reader: Reader) -> tuple[int, int] | None:
    if not reader.maybe(b"<"):
        return None
    start = reader.number()
    reader.expect(b".")
    count = reader.number(nonzero=True)
    reader.expect(b">")
    return start, count


def _fetch_att(reader: Reader) -> FetchAtt:
    name = reader.atom(stop_at_bracket=True).upper()
    for prefix in ("BODY.PEEK", "BODY", "BINARY.PEEK", "BINARY", "BINARY.SIZE"):
        if name == prefix and reader.peek_is(b"["):
            section = _section(reader)
            if prefix.startswith("BINARY") and section.text is not None:
                raise ParseError("BINARY takes a part number only")
            partial = None if prefix == "BINARY.SIZE" else _partial(reader)
            base = prefix.replace(".PEEK", "")
            return FetchAtt(base, section, partial, peek=prefix.endswith(".PEEK"))
    if name not in SIMPLE_FETCH:
        raise ParseError(f"unknown FETCH item {name}")
    return FetchAtt(name)


def fetch_atts(reader: Reader) -> list[FetchAtt]:
    if reader.maybe(b"("):
        atts = []
        while True:
            atts.append(_fetch_att(reader))
            if reader.maybe(b")"):
                return atts
            reader.space()
    start = reader.pos
    word = reader.atom(stop_at_bracket=True).upper()
    if word in FETCH_MACROS:
        return [FetchAtt(n) for n in FETCH_MACROS[word]]
    reader.pos = start
    return [_fetch_att(reader)]


def parse_section(text: str) -> Section:
    """A section as an IMAP URL writes it (`;section=1.HEADER`, RFC 5092), without brackets."""
    reader = Reader(b"[" + text.encode("utf-8", "replace").upper() + b"]")
    found = _section(reader)
    reader.end()
    return found
