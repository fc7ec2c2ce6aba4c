"""The IMAP socket loop: reading commands (literals included), TLS, limits.

One asyncio task per connection reads a command line; when it ends with a
literal announcement it reads the literal (after a "+" continuation for a
synchronizing literal, RFC 3501 §7.5; none for LITERAL+, RFC 7888) and goes
on until the command is complete, then hands it to the session. Before login,
lines and literals are kept small (a stranger cannot make us buffer megabytes);
after login, a literal may hold a whole message. A connection idle for
`idle_timeout` seconds is logged out (RFC 3501 §5.4: at least 30 minutes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable

from mss import logs, metrics
from mss.imap.base import State
from mss.imap.errors import CONNECTION_LOST, LiteralRefused, TooBig
from mss.imap.parsing.commands import CommandError, parse_command
from mss.imap.parsing.tokens import literal_announcement
from mss.imap.state import Session
from mss.security.pki import CertIdentity
from mss.security.proxy_protocol import ProxyPolicy, open_door
from mss.security.tls import peer_identity
from mss.security.tls_transport import start_tls_server

log = logging.getLogger(__name__)

PRE_AUTH_LINE = 40 * 1024  # RFC 2971's largest ID (30 pairs of 30 + 1,024 octets) fits
PRE_AUTH_LITERAL = 8 * 1024
LINE_LIMIT = 64 * 1024
LINES_PER_TURN = 64  # lines read from a full buffer before the other connections' turn


class Connection:
    """One client connection; the `Channel` a session talks through."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        implicit_tls: bool,
        starttls: Callable[[], ssl.SSLContext] | None,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.tls = implicit_tls
        self._starttls = starttls
        peer = writer.get_extra_info("peername")
        self.peer_ip: str | None = str(peer[0]) if isinstance(peer, tuple) and peer else None
        self.peer_certificate: CertIdentity | None = (
            peer_identity(writer.get_extra_info("ssl_object")) if implicit_tls else None
        )
        sock = writer.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.authenticated = False
        self._lines = 0

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_line(self) -> bytes | None:
        """One line. Reading what is already buffered does not give the event loop back:
        every `LINES_PER_TURN` lines the other connections get their turn, however many
        a burst holds (commands sent without waiting, or the 60,000 literals of one
        NOTIFY)."""
        self._lines += 1
        if self._lines % LINES_PER_TURN == 0:
            await asyncio.sleep(0)
        limit = LINE_LIMIT if self.authenticated else PRE_AUTH_LINE
        try:
            line = await self.reader.readuntil(b"\r\n")
        except asyncio.IncompleteReadError:
            return None
        except asyncio.LimitOverrunError:
            raise TooBig("line too long") from None
        if len(line) > limit:
            raise TooBig("line too long")
        return line[:-2]

    async def read_command(self, literal_limit: int) -> bytes | None:
        """A whole command, literals inline, or None at end of stream.

        After a literal's bytes comes the rest of the command line, which is
        appended directly (the CRLF before the literal's data is the literal's).
        """
        command = bytearray()
        while True:
            line = await self.read_line()
            if line is None:
                return None
            command += line
            announced = literal_announcement(line)
            if announced is None:
                return bytes(command)
            size, nonsync, _binary = announced
            limit = literal_limit if self.authenticated else PRE_AUTH_LITERAL
            if size > limit or len(command) + size > limit + LINE_LIMIT:
                if nonsync:
                    raise TooBig("literal too big")
                # RFC 7888 §4: refuse a synchronizing literal instead of "+"
                raise LiteralRefused(bytes(command).split(b" ", 1)[0].decode("ascii", "replace"))
            if not nonsync:
                await self.write(b"+ Ready for literal data\r\n")
            try:
                command += b"\r\n" + await self.reader.readexactly(size)
            except asyncio.IncompleteReadError:
                return None

    async def start_tls(self) -> None:
        """Switch to TLS. What the client sent after STARTTLS before the handshake was
        sent in clear: it is thrown away, never read as commands under TLS (RFC 3501
        §6.2.1; a cleartext LOGIN smuggled behind STARTTLS must not log in)."""
        if self._starttls is None:
            raise ssl.SSLError("STARTTLS is not available here")
        smuggled: bytearray = self.reader._buffer  # type: ignore[attr-defined]  # asyncio's own
        if smuggled:
            log.warning("IMAP STARTTLS: %d bytes sent in clear after it, discarded", len(smuggled))
            smuggled.clear()
        # no await between the clearing and the switch: nothing more is read in clear
        await start_tls_server(self.writer, self._starttls())
        self.tls = True
        self.peer_certificate = peer_identity(self.writer.get_extra_info("ssl_object"))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


SessionFactory = Callable[[Connection], Session]


class ImapListener:
    """One listening socket (STARTTLS on 143, implicit TLS on 993)."""

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        sessions: SessionFactory,
        *,
        implicit_tls: Callable[[], ssl.SSLContext] | None,
        starttls: Callable[[], ssl.SSLContext] | None,
        literal_limit: int,
        idle_timeout: float = 30 * 60,
        sock: socket.socket | None = None,
        proxy: ProxyPolicy | None = None,
    ) -> None:
        self.name = name
        self._proxy = proxy or ProxyPolicy()
        self._shared = sock  # a listening socket bound by the supervisor (several workers)
        self._host = host
        self._port = port
        self._sessions = sessions
        self._implicit = implicit_tls
        self._starttls = starttls
        self._literal_limit = literal_limit
        self._idle_timeout = idle_timeout
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections = 0

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await open_door(
            self._stream, self._implicit, self._proxy,
            shared=self._shared, host=self._host, port=self._port,
        )  # fmt: skip

    def _stream(self) -> asyncio.StreamReaderProtocol:
        """What `asyncio.start_server` makes per connection, behind the PROXY gate."""
        reader = asyncio.StreamReader(limit=LINE_LIMIT + 2)
        return asyncio.StreamReaderProtocol(reader, self._accept)

    async def stop(self, grace: float = 5.0) -> None:
        if self._server is None:
            return
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=grace)
        await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        metrics.IMAP_SESSIONS.labels(self.name).inc()
        logs.begin("imap")
        connection = Connection(
            reader, writer, implicit_tls=self._implicit is not None, starttls=self._starttls
        )
        session = self._sessions(connection)
        how = "closed: by the client"
        try:
            how = await self._serve(connection, session)
        except CONNECTION_LOST as exc:
            how = (
                f"closed: client lost during {session.current or 'greeting'} ({type(exc).__name__})"
            )
        except TooBig as exc:
            how = "closed: line or literal too big"
            with contextlib.suppress(Exception):
                await connection.write(f"* BYE {exc}\r\n".encode())
        except asyncio.CancelledError:
            how = "closed: server shutting down"
            with contextlib.suppress(Exception):
                bye = "* BYE Arrêt du serveur (server shutting down)\r\n".encode()
                await asyncio.wait_for(connection.write(bye), 1)
        except Exception:
            how = "closed after a server error"
            log.exception("IMAP connection failed")
        finally:
            _log_end(connection, session, how)
            session.close()
            connection.close()
            self.connections -= 1
            metrics.IMAP_SESSIONS.labels(self.name).dec()
            self._tasks.discard(task)

    async def _serve(self, connection: Connection, session: Session) -> str:
        """Serve commands until the session ends; say how it ended."""
        await connection.write(session.greeting())
        while session.state is not State.LOGOUT:
            try:
                async with asyncio.timeout(self._idle_timeout):  # no task per command
                    line = await connection.read_command(self._literal_limit)
            except TimeoutError:
                bye = "* BYE Déconnexion : inactif trop longtemps (autologout, idle too long)"
                await connection.write(f"{bye}\r\n".encode())
                return "closed: autologout"
            except LiteralRefused as refused:
                await connection.write(
                    f"{refused.tag} NO [TOOBIG] Littéral trop volumineux "
                    "(literal too big)\r\n".encode()
                )
                continue
            if line is None:
                return f"closed: by the client after {session.current or 'greeting'}"
            try:
                command = parse_command(line)
            except CommandError as exc:
                await connection.write(
                    f"{exc.tag or '*'} BAD Syntaxe invalide (syntax error: {exc})\r\n".encode()
                )
                continue
            await session.run(command)
            connection.authenticated = session.state in (State.AUTHENTICATED, State.SELECTED)
        return "closed: logged out"


def _log_end(connection: Connection, session: Session, how: str) -> None:
    """One INFO line per connection: who, from where, how it ended (no traceback)."""
    who = session.identity.address if session.identity is not None else "-"
    log.info("IMAP connection from %s user=%s %s", connection.peer_ip or "?", who, how)
