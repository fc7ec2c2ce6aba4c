"""IMAP's exceptions, all under `mss.errors.MssError`.

    MssError
    ├── ImapError          a refusal: NO or BAD with a response code (RFC 5530)
    ├── AlreadyAnswered    the tagged reply is already sent (STARTTLS): nothing more
    ├── TooBig             a line or literal over the limit: BYE, connection closed
    ├── LiteralRefused     a synchronizing literal over the limit: NO [TOOBIG] (RFC 7888 §4)
    ├── ParseError         parsing.tokens: malformed input, answered BAD
    │   └── CommandError   parsing.commands: the same, with the tag when it was read
    ├── MailboxNameError   parsing.utf7: not modified UTF-7, answered BAD
    └── SectionError       responses: no such section in this message

The store's `MailboxError` (an `InputError`) renders as NO with its response code.
"""

from __future__ import annotations

import asyncio
import ssl

from mss.errors import MssError

# The client went away (or its TLS broke) in the middle of something: not a bug of ours,
# one INFO line when the connection ends (server.py), never a traceback
CONNECTION_LOST = (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, TimeoutError)


class ImapError(MssError):
    """A refusal: `NO` or `BAD` with an optional response code (RFC 5530)."""

    def __init__(self, text: str, *, status: str = "NO", code: str | None = None) -> None:
        super().__init__(text)
        self.status = status
        self.code = code
        self.text = text

    def render(self, tag: str) -> bytes:
        code = f"[{self.code}] " if self.code else ""
        return f"{tag} {self.status} {code}{self.text}\r\n".encode()


def bad(text: str) -> ImapError:
    return ImapError(text, status="BAD")


def read_only() -> ImapError:
    return ImapError("La boîte est en lecture seule (read-only)", code="READ-ONLY")


def no_such_mailbox(code: str = "NONEXISTENT") -> ImapError:
    return ImapError("Boîte inexistante (no such mailbox)", code=code)


class AlreadyAnswered(MssError):
    """STARTTLS answered before switching: nothing more to send."""


class TooBig(MssError):
    """A line or literal over the limit: the connection is closed with BYE."""


class LiteralRefused(MssError):
    """A synchronizing literal over the limit: the command is refused, nothing was sent."""

    def __init__(self, tag: str) -> None:
        super().__init__(tag)
        self.tag = tag
