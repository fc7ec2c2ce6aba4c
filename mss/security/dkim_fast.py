"""Three of dkimpy's per-message steps, done once or in C, for the MX's hot path.

dkimpy (1.1) spends about half of a verification on three steps that need not cost it:
- `rfc822_parse` splits the *whole* message into lines with a regular expression to
  find the end of its header, then joins the body's lines again (about 100 µs for
  10 KB). A message with CRLF line ends only — all that the MX accepts: a bare CR or
  LF is refused before (`smtp/server.py`) — gives the same header fields from its
  header block alone and the same body as the bytes after the blank line. Anything
  else (a bare LF, no blank line, an empty header) still goes to dkimpy's own parse.
- `load_pk_from_dns` parses the key record (tags, base64, ASN.1) for every message.
  The record is still asked of the lookup each time (what it answers may change); its
  parse is kept by the record's text, so a changed record is parsed again.
- the relaxed canonicalisation of header fields (RFC 6376 §3.4.2) calls `re.sub` by
  the pattern's text, twice a field: the same substitutions by compiled patterns.

`install()` makes dkimpy use all three; tests/test_dkim_fast.py compares them with
dkimpy's own on every shape of message, field and record.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

_NAME = re.compile(rb"([\x21-\x7e]+?):")
_FOLD = re.compile(b"\r?\n")
_SPACES = re.compile(b"[\t ]+")
_ORIGINAL: dict[str, Any] = {}


def rfc822_parse(message: bytes) -> tuple[list[list[bytes]], bytes]:
    """dkimpy's `rfc822_parse(message)`: ([[name, value + CRLF], …], body)."""
    end = message.find(b"\r\n\r\n")
    if end <= 0 or message[:2] == b"\r\n" or message.count(b"\n") != message.count(b"\r\n"):
        return _ORIGINAL["rfc822_parse"](message)  # type: ignore[no-any-return]
    import dkim

    headers: list[list[bytes]] = []
    for line in message[:end].split(b"\r\n"):
        if line[0] in (0x09, 0x20):
            headers[-1][1] += line + b"\r\n"  # as dkimpy: IndexError if the first is one
            continue
        match = _NAME.match(line)
        if match is not None:
            headers.append([match.group(1), line[match.end(0) :] + b"\r\n"])
        elif not line.startswith(b"From "):
            raise dkim.MessageFormatError(f"Unexpected characters in RFC822 header: {line!r}")
    return headers, message[end + 4 :]


@lru_cache(maxsize=256)
def _evaluated(name: bytes, record: bytes | str) -> Any:
    import dkim

    return dkim.evaluate_pk(name, record)


def load_pk_from_dns(name: bytes, dnsfunc: Any = None, timeout: int = 5) -> Any:
    """dkimpy's `load_pk_from_dns`: the record asked each time, its parse kept."""
    import dkim

    record = (dnsfunc or dkim.get_txt)(name, timeout=timeout)
    if isinstance(record, bytes | str) and record:
        return _evaluated(name, record)
    return dkim.evaluate_pk(name, record)  # nothing found: dkimpy's own error


def relaxed_headers(headers: list[list[bytes]]) -> list[tuple[bytes, bytes]]:
    """dkimpy's `Relaxed.canonicalize_headers`: names in lower case, values unfolded,
    runs of spaces and tabs made one space, stripped, ended by CRLF."""
    return [(name.lower().rstrip(), _SPACES.sub(b" ", _FOLD.sub(b"", value)).strip() + b"\r\n")
            for name, value in headers]  # fmt: skip


def install() -> None:
    """Make dkimpy use all three, once per process (every verification calls this)."""
    if _ORIGINAL:
        return
    import dkim
    from dkim.canonicalization import Relaxed

    _ORIGINAL["rfc822_parse"] = dkim.rfc822_parse
    _ORIGINAL["load_pk_from_dns"] = dkim.load_pk_from_dns
    _ORIGINAL["relaxed_headers"] = Relaxed.canonicalize_headers
    dkim.rfc822_parse = rfc822_parse
    dkim.load_pk_from_dns = load_pk_from_dns
    Relaxed.canonicalize_headers = staticmethod(relaxed_headers)
