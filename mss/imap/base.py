"""What every IMAP command family shares of a session: its state, its connection,
the mailbox store, the output buffer, and the capabilities it offers.

`SessionBase` holds them; the command families (`auth`, `mailboxes`, `messages`,
`fetch`, `search`) are mixins over it, and `state.Session` puts them together
and dispatches. Responses are buffered in `_out` and written at the command's
end (`flush`), or earlier when a command streams many of them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Protocol

from mss.imap.backend import MailboxStore
from mss.imap.bus import MailboxBus
from mss.imap.errors import ImapError, no_such_mailbox
from mss.imap.parsing.utf7 import MailboxNameError, decode
from mss.security.auth import LoginIdentity, LoginService
from mss.security.pki import CertIdentity
from mss.store.folders import MailboxInfo

if TYPE_CHECKING:
    from mss.imap.selected import Selected

IDLE_LIMIT = 2 * 3600.0  # RFC 2177 §3: clients re-issue IDLE every 29 minutes


class State(Enum):
    NOT_AUTHENTICATED = 1
    AUTHENTICATED = 2
    SELECTED = 3
    LOGOUT = 4


class Channel(Protocol):
    """What a session needs of its connection (the server provides it)."""

    tls: bool
    peer_ip: str | None
    peer_certificate: CertIdentity | None

    async def write(self, data: bytes) -> None: ...

    async def read_line(self) -> bytes | None: ...

    async def start_tls(self) -> None: ...


@dataclass(frozen=True, kw_only=True)
class ImapConfig:
    hostname: str
    allow_patients: bool = False
    max_message_size: int = 25 * 1024 * 1024
    idle_limit: float = IDLE_LIMIT


_BEFORE_LOGIN = ("IMAP4rev1", "SASL-IR", "ID", "ENABLE", "IDLE", "LITERAL+", "NAMESPACE")
_AFTER_LOGIN = (
    "UIDPLUS",
    "MOVE",
    "SPECIAL-USE",
    "CREATE-SPECIAL-USE",
    "CHILDREN",
    "UNSELECT",
    "BINARY",
    "CONDSTORE",
    "QRESYNC",
    "NOTIFY",
    "MULTIAPPEND",
    "CATENATE",
    "THREAD=ORDEREDSUBJECT",
    "THREAD=REFERENCES",
    "ESEARCH",
    "SORT",
    "SORT=DISPLAY",
    "ESORT",
    "CONTEXT=SEARCH",
    "CONTEXT=SORT",
    "WITHIN",
    "LIST-EXTENDED",
    "QUOTA",  # RFC 9208 (imap/quota.py)
    "QUOTA=RES-STORAGE",
    "QUOTA=RES-MESSAGE",
    "QUOTA=RES-MAILBOX",
)


class SessionBase:
    """A session's state and output, shared by the command families."""

    def __init__(
        self,
        channel: Channel,
        store: MailboxStore,
        logins: LoginService,
        bus: MailboxBus,
        config: ImapConfig,
    ) -> None:
        self.channel = channel
        self.store = store
        self.logins = logins
        self.bus = bus
        self.config = config
        self.state = State.NOT_AUTHENTICATED
        self.identity: LoginIdentity | None = None
        self.account_id: int | None = None
        self.selected: Selected | None = None
        self._condstore = False
        self.qresync = False  # ENABLE QRESYNC (RFC 7162 §3.2.3): VANISHED, SELECT (QRESYNC …)
        self._out: list[bytes] = []
        self._changed = False
        # A command's answer and NOTIFY's news take turns on the connection
        self.turn = asyncio.Lock()
        self.current = ""  # the command running or last run (the log line of a lost client)

    # --- output -------------------------------------------------------------------------------

    def untagged(self, data: bytes | str) -> None:
        self._out.append(b"* " + (data.encode() if isinstance(data, str) else data) + b"\r\n")

    async def flush(self) -> None:
        if self._out:
            data = b"".join(self._out)
            self._out.clear()
            await self.channel.write(data)

    def close(self) -> None:
        """The connection is gone: stop watching the mailbox."""
        self._deselect()

    def poke(self) -> None:
        """Another session (or a delivery) changed the selected mailbox."""
        self._changed = True

    # --- CONDSTORE (RFC 7162 §3.1) -------------------------------------------------------------

    @property
    def condstore(self) -> bool:
        """A CONDSTORE-enabling command was seen: FETCH responses carry MODSEQ."""
        return self._condstore

    @condstore.setter
    def condstore(self, enabled: bool) -> None:
        # RFC 7162 §3.1: enabled with a mailbox selected, it tells the mailbox's HIGHESTMODSEQ
        if enabled and not self._condstore and self.selected is not None:
            self.untagged(f"OK [HIGHESTMODSEQ {self.selected.modseq}] Highest")
        self._condstore = enabled

    # --- capabilities -------------------------------------------------------------------------

    def capabilities(self) -> str:
        caps = list(_BEFORE_LOGIN)
        if self.state is not State.NOT_AUTHENTICATED:
            caps += _AFTER_LOGIN
        elif not self.channel.tls:
            caps += ["STARTTLS", "LOGINDISABLED"]
        else:
            caps += self._mechanisms()
        return " ".join(caps)

    def _mechanisms(self) -> list[str]:
        mechanisms = ["AUTH=PLAIN"]
        if self.logins.bearer_enabled:
            mechanisms += ["AUTH=XOAUTH2", "AUTH=OAUTHBEARER"]
        if self.channel.peer_certificate is not None:
            mechanisms.append("AUTH=EXTERNAL")
        return mechanisms

    # --- mailboxes ----------------------------------------------------------------------------

    @staticmethod
    def _name(raw: str) -> str:
        """A mailbox name from the wire; one that is not modified UTF-7 names no mailbox
        (a valid command about an impossible name: NO, RFC 3501 §5.1.3)."""
        try:
            return decode(raw)
        except MailboxNameError as exc:
            raise ImapError(f"Nom de boîte invalide (invalid mailbox name: {exc})",
                            code="CANNOT") from None  # fmt: skip

    def _account(self) -> int:
        assert self.account_id is not None
        return self.account_id

    async def _mailbox(self, raw: str, *, code: str = "NONEXISTENT") -> MailboxInfo:
        name = self._name(raw)
        box = await self.store.mailbox(self._account(), name)
        if box is None:
            raise no_such_mailbox(code)
        return box

    def _sel(self) -> Selected:
        assert self.selected is not None
        return self.selected

    def _deselect(self) -> None:
        if self.selected is not None:
            self.bus.unwatch(self.selected.info.id, self)
            self.selected = None
        if self.state is State.SELECTED:
            self.state = State.AUTHENTICATED
