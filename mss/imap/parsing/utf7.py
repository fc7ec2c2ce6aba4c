"""Modified UTF-7 for mailbox names (RFC 3501 §5.1.3): pure."""

from __future__ import annotations

import base64
import binascii

from mss.errors import MssError


class MailboxNameError(MssError):
    """A name that is not valid modified UTF-7."""


def encode(name: str) -> str:
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            data = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(data).decode().rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return "".join(out)


def decode(text: str) -> str:
    if text.isascii() and text.isprintable() and "&" not in text:
        return text  # printable ASCII (0x20–0x7E) without "&": itself
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ord(ch) > 0x7E or ord(ch) < 0x20:
            raise MailboxNameError("8-bit or control character in a modified UTF-7 name")
        if ch != "&":
            out.append(ch)
            i += 1
            continue
        end = text.find("-", i)
        if end < 0:
            raise MailboxNameError("unterminated & sequence")
        chunk = text[i + 1 : end]
        if not chunk:
            out.append("&")
        else:
            data = chunk.replace(",", "/")
            data += "=" * (-len(data) % 4)
            try:
                out.append(base64.b64decode(data, validate=True).decode("utf-16-be"))
            except (binascii.Error, UnicodeDecodeError, ValueError):
                raise MailboxNameError("bad base64 in a modified UTF-7 name") from None
        i = end + 1
    return "".join(out)
