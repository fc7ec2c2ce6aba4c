"""An IMAP session: dispatch, one `do_<command>` per command (RFC 3501 and extensions).

The preconditions (authenticated? a mailbox selected?) are checked once, from
the `COMMANDS` table, before dispatch. The commands live with their family:
`auth` (STARTTLS, LOGIN, AUTHENTICATE), `mailboxes` (SELECT, LIST, STATUS...),
`messages` (APPEND, STORE, COPY, MOVE, EXPUNGE...), `fetch`, `search`, `sort`,
`thread`, `context` (CANCELUPDATE), `quota` (GETQUOTA…); those
valid in any state, and IDLE, are here. Each command reads and writes the store
through the `MailboxStore` port and appends its responses to the output;
`ImapError` renders as NO or BAD with a response code. After each command the
client hears what changed in the selected mailbox (`SelectedView.sync`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from mss import __version__
from mss.imap.appending import AppendCommands
from mss.imap.auth import AuthCommands
from mss.imap.base import State
from mss.imap.errors import CONNECTION_LOST, AlreadyAnswered, ImapError, bad
from mss.imap.fetch import FetchCommands
from mss.imap.messages import MessageCommands
from mss.imap.notify import NotifyCommands
from mss.imap.parsing.commands import Command
from mss.imap.quota import QuotaCommands
from mss.imap.sort import SortCommands
from mss.imap.thread_command import ThreadCommands
from mss.store.folders import MailboxError

log = logging.getLogger(__name__)

# command -> (states it is allowed in)
_ANY = frozenset({State.NOT_AUTHENTICATED, State.AUTHENTICATED, State.SELECTED})
_AUTH = frozenset({State.AUTHENTICATED, State.SELECTED})
_SEL = frozenset({State.SELECTED})
COMMANDS: dict[str, frozenset[State]] = {
    "CAPABILITY": _ANY,
    "NOOP": _ANY,
    "LOGOUT": _ANY,
    "ID": _ANY,
    "NOTIFY": _AUTH,
    "STARTTLS": frozenset({State.NOT_AUTHENTICATED}),
    "AUTHENTICATE": frozenset({State.NOT_AUTHENTICATED}),
    "LOGIN": frozenset({State.NOT_AUTHENTICATED}),
    "ENABLE": _AUTH,
    "SELECT": _AUTH,
    "EXAMINE": _AUTH,
    "CREATE": _AUTH,
    "DELETE": _AUTH,
    "RENAME": _AUTH,
    "SUBSCRIBE": _AUTH,
    "UNSUBSCRIBE": _AUTH,
    "LIST": _AUTH,
    "LSUB": _AUTH,
    "STATUS": _AUTH,
    "APPEND": _AUTH,
    "NAMESPACE": _AUTH,
    "GETQUOTAROOT": _AUTH,
    "GETQUOTA": _AUTH,
    "SETQUOTA": _AUTH,
    "IDLE": _AUTH,
    "CHECK": _SEL,
    "CLOSE": _SEL,
    "UNSELECT": _SEL,
    "EXPUNGE": _SEL,
    "SEARCH": _SEL,
    "FETCH": _SEL,
    "STORE": _SEL,
    "COPY": _SEL,
    "MOVE": _SEL,
    "UID FETCH": _SEL,
    "UID SEARCH": _SEL,
    "SORT": _SEL,
    "UID SORT": _SEL,
    "THREAD": _SEL,
    "UID THREAD": _SEL,
    "CANCELUPDATE": _SEL,
    "UID STORE": _SEL,
    "UID COPY": _SEL,
    "UID MOVE": _SEL,
    "UID EXPUNGE": _SEL,
}
# RFC 3501 §7.4.1: no EXPUNGE response while answering these.
NO_EXPUNGE_RESPONSES = frozenset({"FETCH", "STORE", "SEARCH", "SORT", "THREAD"})

Handler = Callable[[Command], Awaitable[str | None]]


class Session(
    AuthCommands,
    NotifyCommands,
    AppendCommands,
    MessageCommands,
    FetchCommands,
    SortCommands,
    ThreadCommands,
    QuotaCommands,
):
    """One client's session; the server feeds it parsed commands (`run`)."""

    def greeting(self) -> bytes:
        caps, host = self.capabilities(), self.config.hostname
        return f"* OK [CAPABILITY {caps}] {host} mss IMAP4rev1 ready\r\n".encode()

    # --- dispatch ---------------------------------------------------------------------------

    async def run(self, command: Command) -> None:
        self.current = command.name
        async with self.turn:
            await self._run(command)

    async def _run(self, command: Command) -> None:
        try:
            ok = await self._dispatch(command)
            self._out.append(f"{command.tag} OK {ok or command.name + ' completed'}\r\n".encode())
        except AlreadyAnswered:
            return
        except ImapError as exc:
            self._out.append(exc.render(command.tag))
        except MailboxError as exc:
            self._out.append(ImapError(str(exc), code=exc.code).render(command.tag))
        except CONNECTION_LOST:
            raise  # the client left: the server logs it in one line
        except Exception:  # a bug must not cost the connection: log it, answer NO
            log.exception("IMAP %s failed", command.name)
            self._out.append(
                ImapError("Erreur temporaire du serveur (server error)", code="SERVERBUG").render(
                    command.tag
                )
            )
        await self.flush()

    async def _dispatch(self, command: Command) -> str | None:
        """Check the command's preconditions, run it, then tell what changed meanwhile."""
        handler = self._handler(command.name)
        ok = await handler(command)
        if self.state is State.SELECTED and command.name not in ("LOGOUT", "IDLE"):
            await self.sync(expunges=command.name not in NO_EXPUNGE_RESPONSES)
        return ok

    def _handler(self, name: str) -> Handler:
        allowed = COMMANDS.get(name)
        handler: Handler | None = getattr(self, "do_" + name.replace(" ", "_"), None)
        if allowed is None or handler is None:
            raise bad(f"Commande inconnue : {name} (unknown command)")
        if self.state not in allowed:
            raise bad(self._wrong_state(name))
        return handler

    def _wrong_state(self, name: str) -> str:
        if self.state is State.NOT_AUTHENTICATED:
            return f"{name} : identifiez-vous d'abord (needs authentication first)"
        if COMMANDS[name] == _SEL:
            return f"{name} : sélectionnez d'abord une boîte (needs a selected mailbox)"
        return f"{name} impossible dans cet état (not allowed now)"

    # --- any state ------------------------------------------------------------------------

    async def do_CAPABILITY(self, command: Command) -> None:
        self.untagged("CAPABILITY " + self.capabilities())

    async def do_NOOP(self, command: Command) -> None:
        return None

    async def do_LOGOUT(self, command: Command) -> str:
        self.untagged("BYE mss IMAP4rev1 server logging out")
        self._deselect()
        self.state = State.LOGOUT
        return "LOGOUT completed"

    async def do_ID(self, command: Command) -> None:
        self.untagged(f'ID ("name" "mss" "version" "{__version__}" "vendor" "mss")')

    async def do_ENABLE(self, command: Command) -> None:
        enabled = []
        for capability in command.args["capabilities"]:
            if capability == "CONDSTORE":  # RFC 7162 §3.1
                self.condstore = True
                enabled.append(capability)
            elif capability == "QRESYNC":  # RFC 7162 §3.2.3: CONDSTORE with it
                self.condstore = self.qresync = True
                enabled.append(capability)
        self.untagged("ENABLED" + "".join(f" {c}" for c in enabled))

    # --- IDLE (RFC 2177) --------------------------------------------------------------------
    # While it waits for DONE, an IDLE session holds nothing but its own task: a change
    # starts a short task that tells it (`_tell_while_idle`), taking turns with NOTIFY.

    _idling = False
    _teller: asyncio.Task[None] | None = None

    async def do_IDLE(self, command: Command) -> None:
        await self.channel.write(b"+ idling\r\n")
        await self._tell_changes()
        line = await self._wait_for_done()
        if line is None:
            raise ConnectionResetError("closed during IDLE")
        if line.strip().upper() != b"DONE":
            raise bad("DONE attendu (expected DONE)")

    async def _wait_for_done(self) -> bytes | None:
        """The client's next line (DONE), the changes told meanwhile; BYE at the limit."""
        self._idling = True
        if self._changed:  # poked while the changes were read
            self.poke()
        self.turn.release()  # the changes (and NOTIFY's news) go out while IDLE waits
        try:
            async with asyncio.timeout(self.config.idle_limit):
                return await self.channel.read_line()
        except TimeoutError:
            pass
        finally:
            self._idling = False
            await self.turn.acquire()
        self.untagged("BYE IDLE for too long")
        await self.flush()
        raise ConnectionResetError("IDLE limit")

    def poke(self) -> None:
        super().poke()
        if self._idling and self._teller is None:
            self._teller = asyncio.get_running_loop().create_task(self._tell_while_idle())

    async def _tell_while_idle(self) -> None:
        try:
            async with self.turn:
                while self._idling and self._changed and self.selected is not None:
                    await self._tell_changes()
        except CONNECTION_LOST:
            pass  # the session's own read sees the end
        except Exception:
            log.exception("IMAP IDLE: telling the changes failed")
        finally:
            self._teller = None

    def close(self) -> None:
        if self._teller is not None:
            self._teller.cancel()
        super().close()

    async def _tell_changes(self) -> None:
        if self.selected is not None:
            await self.sync(expunges=True)
            await self.flush()
