"""The exception tree of mss.

    MssError                 base of every error mss raises on purpose (core.errors)
    ├── CoreValueError       core: a value its pure parsers refuse (also a ValueError):
    │                        InvalidAddress, InvalidINS, InvalidPatient, WhitelistError,
    │                        SaslError, DSNParamError
    ├── ConfigError          an invalid setting; names the key (stops start-up)
    ├── InputError           bad input to a command or API (one clear line)
    │   ├── DuplicateError   the thing already exists (an address, an INS)
    │   └── MailboxError     store.folders: an IMAP mailbox operation answered NO
    ├── NotFoundError        a named account, patient or mailbox does not exist
    ├── StoreError           the store failed in a way the caller cannot fix
    │   └── KeyFileError     store.blobs: the blob key file is missing or malformed
    ├── Rejection            a decision with its wire reply: SMTP code, enhanced
    │                        status code (RFC 3463) and a readable text
    ├── DMPError             dmp.errors: a refusal of the DMP with its ANS name and
    │   └── …                acknowledgement code (DMPPatientNotFound, DocumentError…)
    ├── CertificateError     security.pki: a certificate mss cannot map to an
    │                        identity, issue or revoke
    ├── TokenError           security.tokens: a bearer token refused (says why,
    │                        never the token)
    └── Unauthorized         web.errors: an HTTP request naming nobody we know (401
                             with the scheme of the credentials to send)

Foreign errors (sqlite3, psycopg, cryptography, PyJWT…) are translated at the
boundary that calls them (`raise StoreError(...) from exc`). The pure `core`
package imports nothing outside `core`: the root `MssError` is defined in
`core/errors.py`, so that core's own errors (also `ValueError`s) are in the tree
too; their callers catch them and translate them into a protocol reply.
"""

from __future__ import annotations

from mss.core.errors import CoreValueError, MssError

__all__ = ["CoreValueError", "MssError"]  # the root lives in core (see its docstring)


class ConfigError(MssError):
    """An invalid configuration value; the message names the key."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


class InputError(MssError):
    """Bad input from a user or a script: the message is shown as is."""


class DuplicateError(InputError):
    """The thing to create already exists."""


class NotFoundError(MssError):
    """A named object does not exist."""


class StoreError(MssError):
    """The store could not do what was asked (I/O, database)."""


class Rejection(MssError):
    """A refusal with its wire reply, raised where the decision is made.

    `client_fault` says whether the peer caused it (logged at INFO) or the server
    did (logged with its traceback).
    """

    def __init__(self, code: int, enhanced: str, text: str, *, client_fault: bool = True) -> None:
        super().__init__(f"{code} {enhanced} {text}")
        self.code = code
        self.enhanced = enhanced
        self.text = text
        self.client_fault = client_fault

    @property
    def temporary(self) -> bool:
        return 400 <= self.code < 500

    def smtp_reply(self) -> str:
        """The SMTP reply line, RFC 5321 §4.2 with RFC 2034 enhanced codes."""
        return f"{self.code} {self.enhanced} {self.text}"
