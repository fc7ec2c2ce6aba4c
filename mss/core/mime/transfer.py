"""Content-Transfer-Encodings (RFC 2045 §6): decoding a body, and re-encoding binary parts.

- `decode_body`: base64 and quoted-printable undone, leniently (what mail readers show);
- `decode_strict`: the same for IMAP BINARY (RFC 3516), which must refuse an encoding
  it does not know: `UnknownEncoding`;
- `binary_as_base64`: a message whose `binary` parts (or parts holding NUL bytes) are
  re-encoded in base64, so that it can travel in 7bit/8bit protocols again.
Pure: bytes in, bytes out.
"""

from __future__ import annotations

import base64
import binascii
import re

from mss.core.mime.structure import Part, parse_message

# RFC 2045 §6.1: encodings whose body is the content itself.
IDENTITY_ENCODINGS = frozenset({"7bit", "8bit", "binary"})

_LINE_RE = re.compile(rb"([^\r\n]*)(\r\n|\n|\r|$)")
_QP_ESCAPE_RE = re.compile(rb"=([0-9A-Fa-f]{2})")
_CTE_FIELD_RE = re.compile(rb"(?im)^content-transfer-encoding[ \t]*:.*(?:\r?\n[ \t].*)*\r?\n")


class UnknownEncoding(ValueError):
    """A Content-Transfer-Encoding this server cannot undo (RFC 3516 UNKNOWN-CTE)."""


def decode_quoted_printable(body: bytes) -> bytes:
    """RFC 2045 §6.7: `=XX` octets, soft line breaks, and transport padding removed.

    Rule 3: white space at the end of an encoded line was added in transit and is
    deleted; a line ending in `=` (then optional white space) is a soft break: it
    joins the next line. An `=` not followed by two hex digits is kept as it is
    (§6.7 note 1: robust decoders pass malformed sequences through).
    """
    out: list[bytes] = []
    for match in _LINE_RE.finditer(body):
        line, ending = match.group(1).rstrip(b" \t"), match.group(2)
        if not line and not ending:
            continue  # the empty match at the end of the body
        if line.endswith(b"="):
            out.append(_QP_ESCAPE_RE.sub(_unescape, line[:-1]))
            continue  # a soft line break: no line break in the content
        out.append(_QP_ESCAPE_RE.sub(_unescape, line) + ending)
    return b"".join(out)


def _unescape(match: re.Match[bytes]) -> bytes:
    return bytes([int(match.group(1), 16)])


def decode_base64(body: bytes) -> bytes:
    """RFC 2045 §6.8: characters outside the alphabet ignored, missing padding added.

    Never fails: base64 bodies joined one after the other (padding inside) decode
    piece by piece, and a lone last character, which carries no whole octet, is dropped.
    """
    compact = body.translate(None, _NOT_BASE64)
    pieces = []
    for chunk in _PADDING_RE.split(compact):
        if len(chunk) % 4 == 1:
            chunk = chunk[:-1]
        pieces.append(binascii.a2b_base64(chunk + b"=" * (-len(chunk) % 4)))
    return b"".join(pieces)


_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_NOT_BASE64 = bytes(b for b in range(256) if b not in _BASE64_ALPHABET)
_PADDING_RE = re.compile(rb"=+")


def decode_body(body: bytes, encoding: str) -> bytes:
    """The content of a body (base64, quoted-printable; other encodings as they are)."""
    if encoding == "base64":
        return decode_base64(body)
    if encoding == "quoted-printable":
        return decode_quoted_printable(body)
    return body


def decode_strict(body: bytes, encoding: str) -> bytes:
    """The content of a body for IMAP BINARY: an unknown one raises (RFC 3516 UNKNOWN-CTE)."""
    if encoding in IDENTITY_ENCODINGS:
        return body
    if encoding == "base64":
        return decode_base64(body)
    if encoding == "quoted-printable":
        return decode_quoted_printable(body)
    raise UnknownEncoding(f"unknown Content-Transfer-Encoding {encoding[:40]}")


# --- binary content re-encoded -------------------------------------------------------------


def binary_as_base64(raw: bytes) -> bytes:
    """`raw` with every binary leaf part re-encoded in base64 (RFC 3516 §4.4 lets the
    server change the encoding of appended binary data).

    A leaf is binary when it says `Content-Transfer-Encoding: binary`, or when its body
    holds a NUL byte under an identity encoding (RFC 3501 forbids NUL in a literal, so
    such a part could not be fetched otherwise). Other bytes are kept as they are.
    """
    parts = [p for p in _leaves(parse_message(raw).body) if _is_binary(raw, p)]
    if not parts:
        return raw
    pieces: list[bytes] = []
    pos = 0
    for part in sorted(parts, key=lambda p: p.header_start):
        pieces.append(raw[pos : part.header_start])
        pieces.append(_reencoded(raw, part))
        pos = part.body_end
    pieces.append(raw[pos:])
    return b"".join(pieces)


def _leaves(part: Part) -> list[Part]:
    if not part.children:
        return [] if part.is_multipart else [part]
    return [leaf for child in part.children for leaf in _leaves(child)]


def _is_binary(raw: bytes, part: Part) -> bool:
    if part.body_start == part.body_end:
        return False  # nothing to encode
    if part.encoding == "binary":
        return True
    return (
        part.encoding in IDENTITY_ENCODINGS and raw.find(b"\0", part.body_start, part.body_end) >= 0
    )


def _reencoded(raw: bytes, part: Part) -> bytes:
    """The part's header with `Content-Transfer-Encoding: base64`, then its body encoded."""
    header = raw[part.header_start : part.body_start]
    newline = b"\n" if header.endswith(b"\n") and not header.endswith(b"\r\n") else b"\r\n"
    fields = _CTE_FIELD_RE.sub(b"", header[: -len(newline)] if header.endswith(newline) else header)
    if fields and not fields.endswith(b"\n"):
        fields += newline  # a header without its blank line (the body was empty)
    field = b"Content-Transfer-Encoding: base64" + newline
    encoded = base64.encodebytes(raw[part.body_start : part.body_end])  # 76-octet lines
    if part.body_end < len(raw):
        encoded = encoded[:-1]  # the line break before what follows is already there
    return fields + field + newline + encoded.replace(b"\n", newline)
