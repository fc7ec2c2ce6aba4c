"""Header sections (RFC 5322 §2.2, §3.6) and structured field values (RFC 2045, 2183).

Values are kept raw (encoded words stay encoded, as IMAP ENVELOPE requires),
only unfolded (RFC 5322 §2.2.3); header bytes are UTF-8 (RFC 6532), else Latin-1.
Pure: never raises on malformed input.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from email.utils import collapse_rfc2231_value, decode_params, unquote

MAX_HEADER_FIELDS = 2000

Params = list[tuple[str, str]]

_FOLD_RE = re.compile(rb"\r?\n(?=[ \t])")
_MSGID_RE = re.compile(r"<[^<>\s]*>")


class Headers:
    """Header fields in order; names compared case-insensitively."""

    __slots__ = ("_index", "fields", "truncated")

    def __init__(self, fields: list[tuple[str, str]], *, truncated: bool = False) -> None:
        self.fields = fields
        self.truncated = truncated  # more than MAX_HEADER_FIELDS: the rest was not read
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

    def count(self, name: str) -> int:
        return len(self._index.get(name.lower(), ()))

    def get_all(self, name: str) -> list[str]:
        return list(self._index.get(name.lower(), ()))


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
            return Headers(fields, truncated=True)
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


def _skip_cfws(text: str, pos: int, comments: list[str] | None = None) -> int:
    """Skip folding whitespace and (nested) comments, RFC 5322 §3.2.2; the text of each
    outermost comment (quoted-pairs undone) is appended to `comments` when given."""
    depth = 0
    n = len(text)
    inside: list[str] = []
    while pos < n:
        ch = text[pos]
        if depth:
            if ch == "\\" and pos + 1 < n:
                pos += 1
                ch = text[pos]
            elif ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
                if not depth:
                    if comments is not None:
                        comments.append("".join(inside))
                    inside.clear()
                    pos += 1
                    continue
            inside.append(ch)
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


def param(params: Params, name: str) -> str:
    """A parameter's value as the standard library reads it: the first occurrence wins,
    RFC 2231 continuations and charsets decoded (`name*0*=utf-8''…`); "" if absent."""
    wanted = [(k, v) for k, v in params if k == name or k.startswith(name + "*")]
    if not wanted:
        return ""
    for key, value in decode_params([("", ""), *wanted])[1:]:
        if key == name:
            if isinstance(value, tuple):  # (charset, language, text), as email.message does
                value = (value[0], value[1], unquote(value[2]))
            return _collapse(value).strip()
    return ""


def _collapse(value: str | tuple[str | None, str | None, str]) -> str:
    """An RFC 2231 value as text, in its charset (`decode_text`)."""
    if not isinstance(value, tuple):
        return collapse_rfc2231_value(value)
    # the text's characters are its bytes (email.utils' own reading of them)
    return decode_text(bytes(value[2], "raw-unicode-escape"), value[0] or "us-ascii")


# Codecs Python knows that are no charset of mail: `undefined` always fails, `idna`
# refuses errors="replace", `punycode` fails on 3.11 and from 3.13 turns any bytes into
# CJK noise. A message naming one is read as UTF-8, on every Python alike.
NOT_MAIL_CHARSETS = frozenset({"undefined", "idna", "punycode"})


def _utf8(payload: bytes) -> str:
    return payload.decode("utf-8", errors="replace")


def decode_text(payload: bytes, charset: str, otherwise: Callable[[bytes], str] = _utf8) -> str:
    """Bytes of text in the charset a message names (errors replaced); `otherwise` (UTF-8)
    when the name is unknown (`x-inconnu`), no text encoding (`rot13`, `base64`:
    LookupError) or no mail charset (`NOT_MAIL_CHARSETS`). Never raises."""
    try:
        if codecs.lookup(charset).name not in NOT_MAIL_CHARSETS:
            return payload.decode(charset, errors="replace")
    except (LookupError, ValueError):  # ValueError: UnicodeError, a codec's own failure
        pass
    return otherwise(payload)


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
