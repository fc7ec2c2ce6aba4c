"""The SMTP protocol: aiosmtpd's `SMTP`, tightened for a health-data operator.

What this subclass changes, and why:
- DATA is read in large pieces up to `<CRLF>.<CRLF>` (not line by line), then
  checked: a bare CR or LF anywhere is refused (SMTP smuggling; RFC 5321
  §2.3.8), as are lines over the limit (RFC 5322 §2.1.1) and messages over
  SIZE; DATA has its own timeout. The answer comes only after the handler
  returned, i.e. after the group commit.
- MAIL and RCPT accept the DSN parameters (RFC 3461: RET, ENVID, NOTIFY,
  ORCPT) with their case-sensitive xtext values, besides SIZE, BODY, SMTPUTF8.
- A recipient-count limit (452 4.5.3, RFC 5321 §4.5.3.1.8).
- TCP_NODELAY on every connection; implicit TLS (port 465) is recognised as TLS.
- Every 4xx/5xx answer to MAIL, RCPT or DATA is counted (`mss_messages_refused_total`),
  whichever layer decided it; each session has its log id (`mss.logs`).
Policy lives in the handlers (`handler.py`); this module is protocol only.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, AnyStr

import aiosmtpd.smtp
from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session

from mss import logs, metrics
from mss.core import codes
from mss.core.digits import ascii_digits
from mss.core.dsn import DSNParamError, MailDSN, RcptDSN, parse_mail_param, parse_rcpt_param
from mss.security.pki import CertIdentity
from mss.security.proxy_protocol import ProxyPolicy, open_door
from mss.security.tls import peer_identity

log = logging.getLogger(__name__)
# aiosmtpd's own lines (a "Peer:" and a "connection lost" per connection, each command at
# DEBUG) in its own shape: the one line per connection below replaces them
logging.getLogger("mail.log").setLevel(logging.WARNING)


def _not_login_data_chatter(record: logging.LogRecord) -> bool:
    # aiosmtpd warns on every successful AUTH about an attribute it sets itself.
    return "login_data is deprecated" not in record.getMessage()


logging.getLogger("mail.log").addFilter(_not_login_data_chatter)
_aiosmtpd_sanitized_log = aiosmtpd.smtp.sanitized_log


def _sanitized_log(func: Callable[..., None], msg: AnyStr, *args: Any, **kwargs: Any) -> None:
    """aiosmtpd masks AUTH lines (a regular expression) before every command's log call,
    even when its logger drops them: 1–3 % of the loop's time. Skipped when dropped."""
    logger = getattr(func, "__self__", None)
    level = logging.getLevelName(getattr(func, "__name__", "").upper())
    known = isinstance(logger, logging.Logger) and isinstance(level, int)
    if known and not logger.isEnabledFor(level):  # type: ignore[union-attr]
        return
    _aiosmtpd_sanitized_log(func, msg, *args, **kwargs)


aiosmtpd.smtp.sanitized_log = _sanitized_log

TERMINATOR = b"\r\n.\r\n"
DATA_PIECE_LIMIT = 1 << 20  # what one readuntil may buffer while looking for ".\r\n"


class MssEnvelope(Envelope):
    """aiosmtpd's envelope plus what the handlers decided along the way."""

    def __init__(self) -> None:
        super().__init__()
        self.mss_dsn = MailDSN()
        self.mss_sender: Any = None
        self.mss_recipients: list[Any] = []


Verb = Callable[["MssSMTP", str | None], Awaitable[None]]


def _counts_refusals(verb: Verb) -> Verb:
    """While `verb` runs, a 4xx/5xx reply pushed is a refusal of a message."""

    @functools.wraps(verb)
    async def counted(self: MssSMTP, arg: str | None) -> None:
        self.counting_refusals = True
        try:
            await verb(self, arg)
        finally:
            self.counting_refusals = False

    return counted


class MssSMTP(SMTP):
    """One SMTP connection."""

    # RFC 4954 §4: an AUTH line with its initial response may reach 12288 octets
    # (bearer tokens are long); every other command keeps the 512 limit.
    line_length_limit = 12288 + 2

    def __init__(
        self,
        handler: Any,
        *,
        max_recipients: int,
        max_line_length: int,
        data_timeout: float,
        implicit_tls: bool = False,
        on_lost: Callable[[MssSMTP], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, **kwargs)  # requiring TLS for AUTH (its default)
        if implicit_tls:
            # aiosmtpd only knows STARTTLS; on 465 every byte is already encrypted. Told
            # so after it is built, it raises no false alarm (a warning and a log line at
            # each connection, when built with `auth_require_tls=False`).
            self._auth_require_tls = False
        self.command_size_limits["AUTH"] = 12288
        self.max_recipients = max_recipients
        self.data_timeout = data_timeout
        self.implicit_tls = implicit_tls
        self.peer_certificate: CertIdentity | None = None
        self._on_lost = on_lost
        self._quit = False
        self.max_line_length = max_line_length
        self.counting_refusals = False

    def _create_envelope(self) -> MssEnvelope:
        return MssEnvelope()

    # AttributeError (not AssertionError) before the connection exists: aiosmtpd's
    # constructor inspects every attribute of the protocol object.
    @property
    def sess(self) -> Session:
        if self.session is None:
            raise AttributeError("no session yet")
        return self.session

    @property
    def env(self) -> MssEnvelope:
        if not isinstance(self.envelope, MssEnvelope):
            raise AttributeError("no envelope yet")
        return self.envelope

    def connection_lost(self, error: Exception | None) -> None:
        self._log_end(error)
        super().connection_lost(error)
        if self._on_lost is not None:
            self._on_lost(self)

    def _log_end(self, error: Exception | None) -> None:
        """One INFO line per connection, as IMAP's: door, from where, who, how it ended."""
        session = self.session
        who = "-"
        if session is not None and session.authenticated:
            who = getattr(session.auth_data, "address", None) or "-"
        how = "QUIT" if self._quit else "by the client without QUIT"
        if error is not None:
            how = f"lost ({type(error).__name__})"
        door = getattr(getattr(self.event_handler, "door", None), "value", "smtp")
        log.info("SMTP %s connection from %s user=%s closed: %s",
                 door, self.peer_ip() or "?", who, how)  # fmt: skip

    async def smtp_QUIT(self, arg: str) -> None:
        self._quit = True
        await super().smtp_QUIT(arg)

    # --- connection ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self.transport is None
        if first:  # before aiosmtpd starts the session's task, which inherits the id
            logs.begin("smtp")
        super().connection_made(transport)
        if not first:
            return  # the STARTTLS layer: see `tls_established`
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            self.sess.ssl = {"ssl_object": ssl_object}
            self.peer_certificate = peer_identity(ssl_object)

    def tls_established(self) -> None:
        """Called by the handler's STARTTLS hook: read the client's certificate."""
        extra = self.sess.ssl or {}
        self.peer_certificate = peer_identity(extra.get("ssl_object"))

    @property
    def tls(self) -> bool:
        return self.implicit_tls or self._tls_protocol is not None

    def peer_ip(self) -> str | None:
        peer: Any = self.session.peer if self.session else None
        return str(peer[0]) if isinstance(peer, tuple) and peer else None

    # --- MAIL and RCPT with DSN parameters ---------------------------------------------------

    async def _split_command(
        self, arg: str | None, keyword: str, syntax: str
    ) -> tuple[str, list[str]] | None:
        if arg is None:
            await self.push(syntax)
            return None
        rest = self._strip_command_keyword(keyword, arg)
        if rest is None:
            await self.push(syntax)
            return None
        address, params = split_path(rest)
        if address is None:
            await self.push(codes.BAD_ADDRESS)
            return None
        if params and not self.sess.extended_smtp:
            await self.push(syntax)
            return None
        return address, params

    async def push(self, status: AnyStr) -> None:
        if self.counting_refusals and isinstance(status, str) and status[:1] in ("4", "5"):
            metrics.count_refusal(self.event_handler.door.value, status)
        if isinstance(status, str):  # a reply may echo the client's bytes that were not
            # UTF-8 (aiosmtpd decodes with surrogateescape): escaped, never an exception
            charset = "utf-8" if self.enable_SMTPUTF8 else "ascii"
            await super().push(status.encode(charset, "backslashreplace"))
        else:
            await super().push(status)

    @_counts_refusals
    async def smtp_MAIL(self, arg: str | None) -> None:
        if await self.check_helo_needed() or await self.check_auth_needed("MAIL"):
            return
        if self.env.mail_from is not None:
            await self.push(codes.NESTED_MAIL)
            return
        parsed = await self._split_command(arg, "FROM:", codes.SYNTAX_MAIL)
        if parsed is None:
            return
        address, params = parsed
        dsn = MailDSN()
        for param in params:
            key, eq, value = param.partition("=")
            key = key.upper()
            if key == "SIZE":
                if not ascii_digits(value):
                    await self.push(codes.SYNTAX_MAIL)
                    return
                if self.data_size_limit and int(value) > self.data_size_limit:
                    await self.push(codes.MESSAGE_TOO_BIG)
                    return
            elif key == "BODY":
                if value.upper() not in ("7BIT", "8BITMIME"):
                    await self.push("501 5.5.4 BODY must be 7BIT or 8BITMIME")
                    return
            elif key == "SMTPUTF8":
                if eq:
                    await self.push("501 5.5.4 SMTPUTF8 takes no value")
                    return
                self.env.smtp_utf8 = True
            else:
                try:
                    dsn = parse_mail_param(dsn, key, value)
                except DSNParamError as exc:
                    await self.push(f"555 5.5.4 {exc}")
                    return
        self.env.mss_dsn = dsn
        status = await self._call_handler_hook("MAIL", address, params)
        if status is MISSING:
            status = codes.SENDER_OK
        if status.startswith("250"):
            self.env.mail_from = address
            self.env.mail_options.extend(params)
        await self.push(status)

    @_counts_refusals
    async def smtp_RCPT(self, arg: str | None) -> None:
        if await self.check_helo_needed() or await self.check_auth_needed("RCPT"):
            return
        if self.env.mail_from is None:
            await self.push(codes.NEED_MAIL)
            return
        parsed = await self._split_command(arg, "TO:", codes.SYNTAX_RCPT)
        if parsed is None:
            return
        address, params = parsed
        if len(self.env.rcpt_tos) >= self.max_recipients:
            await self.push(codes.TOO_MANY_RECIPIENTS)
            return
        dsn = RcptDSN()
        for param in params:
            key, _, value = param.partition("=")
            try:
                dsn = parse_rcpt_param(dsn, key.upper(), value)
            except DSNParamError as exc:
                await self.push(f"555 5.5.4 {exc}")
                return
        status = await self._call_handler_hook("RCPT", address, dsn)
        if status is MISSING:
            status = codes.RECIPIENT_OK
        if status.startswith("250"):
            self.env.rcpt_tos.append(address)
            self.env.rcpt_options.extend(params)
        await self.push(status)

    # --- DATA ----------------------------------------------------------------------------

    @_counts_refusals
    async def smtp_DATA(self, arg: str | None) -> None:
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        if not self.env.rcpt_tos:
            await self.push(codes.NEED_RCPT)
            return
        if arg:
            await self.push("501 5.5.4 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        try:
            content, problem = await asyncio.wait_for(self._read_data(), self.data_timeout)
        except TimeoutError:
            await self.push(codes.DATA_TIMEOUT)
            if self.transport is not None:
                self.transport.close()
            return
        if problem is None:
            problem = self._check_content(content)
        if problem is not None:
            self._reset_envelope()
            await self.push(problem)
            return
        self.env.content = content
        self.env.original_content = content
        status = await self._call_handler_hook("DATA")
        self._reset_envelope()
        await self.push(codes.OK if status is MISSING else status)

    async def _read_data(self) -> tuple[bytes, str | None]:
        """Read up to `<CRLF>.<CRLF>`; un-dot-stuff (RFC 5321 §4.5.2); enforce SIZE.

        The bulk is one `readuntil` of the whole terminator. Only where the
        buffer ends with a beginning of the terminator (at the very start, where
        the CRLF is the DATA command's own, or after a piece cut by the size
        limit) are bytes read one by one, so that no terminator is missed.
        """
        reader = self._reader
        limit = self.data_size_limit
        buffer = bytearray(b"\r\n")  # the CRLF that ended the DATA command line
        too_big = False
        # StreamReader has no public way to raise the separator search limit for a while.
        saved_limit = reader._limit  # type: ignore[attr-defined]
        reader._limit = DATA_PIECE_LIMIT  # type: ignore[attr-defined]
        try:
            while not buffer.endswith(TERMINATOR):
                if _ends_with_terminator_start(buffer):
                    buffer += await reader.readexactly(1)
                    continue
                try:
                    buffer += await reader.readuntil(TERMINATOR)
                except asyncio.LimitOverrunError as exc:
                    buffer += await reader.readexactly(exc.consumed)
                if limit and len(buffer) > limit + len(TERMINATOR) + 2:
                    too_big = True
                    del buffer[: len(buffer) - 8]  # keep enough to see the terminator
        except asyncio.IncompleteReadError as exc:
            raise ConnectionResetError("connection closed during DATA") from exc
        finally:
            reader._limit = saved_limit  # type: ignore[attr-defined]
        if too_big:
            return b"", codes.MESSAGE_TOO_BIG
        body = bytes(buffer[: -len(TERMINATOR) + 2])  # keep the CRLF of the last line
        return body.replace(b"\r\n.", b"\r\n")[2:], None

    def _reset_envelope(self) -> None:
        self.envelope = self._create_envelope()

    def _check_content(self, content: bytes) -> str | None:
        crlf = content.count(b"\r\n")
        if content.count(b"\r") != crlf or content.count(b"\n") != crlf:
            return codes.BARE_LINE_ENDING
        # Lines are CRLF-separated here (bare CR/LF refused above); a split is linear.
        if len(content) > self.max_line_length and (
            max(map(len, content.split(b"\r\n"))) > self.max_line_length
        ):
            return codes.LINE_TOO_LONG
        return None


def split_path(text: str) -> tuple[str | None, list[str]]:
    """`<address> params…` of MAIL/RCPT (RFC 5321 §4.1.2): the address and the parameters.

    Deliberately simple: the address is checked strictly later (core.address);
    here only its delimitation matters. `<>` is the null path. A source route
    (`<@a,@b:x@y>`, obsolete) is dropped.
    """
    text = text.strip()
    if text.startswith("<"):
        end = text.find(">")
        if end < 0:
            return None, []
        address, rest = text[1:end], text[end + 1 :]
        if rest and not rest.startswith(" "):
            return None, []
        if address.startswith("@") and ":" in address:
            address = address.split(":", 1)[1]
    else:
        address, _, rest = text.partition(" ")
    if any(c in address for c in "<> \t\r\n"):
        return None, []
    return address, rest.split()


def _ends_with_terminator_start(buffer: bytearray) -> bool:
    """Does `buffer` end with a proper, non-empty beginning of `<CRLF>.<CRLF>`?"""
    return any(buffer.endswith(TERMINATOR[:n]) for n in range(len(TERMINATOR) - 1, 0, -1))


ProtocolFactory = Callable[[Callable[[MssSMTP], None]], MssSMTP]


class Listener:
    """One listening socket serving `MssSMTP` connections."""

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        factory: ProtocolFactory,
        tls: Callable[[], ssl.SSLContext] | None,
        *,
        sock: socket.socket | None = None,
        proxy: ProxyPolicy | None = None,
    ) -> None:
        self.name = name
        self._proxy = proxy or ProxyPolicy()
        self._host = host
        self._port = port
        self._factory = factory
        self._tls = tls  # implicit TLS (465): the context for each connection
        self._shared = sock  # a listening socket bound by the supervisor (several workers)
        self._server: asyncio.Server | None = None
        self._connections: set[MssSMTP] = set()
        self._idle = asyncio.Event()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def _make(self) -> MssSMTP:
        try:
            protocol = self._factory(self._lost)
        except Exception:  # asyncio would drop the connection without a word
            log.exception("cannot create the SMTP protocol for a %s connection", self.name)
            raise
        self._connections.add(protocol)
        self._idle.clear()
        return protocol

    def _lost(self, protocol: MssSMTP) -> None:
        self._connections.discard(protocol)
        if not self._connections:
            self._idle.set()

    async def start(self) -> None:
        self._server = await open_door(
            self._make, self._tls, self._proxy,
            shared=self._shared, host=self._host, port=self._port,
        )  # fmt: skip

    async def stop(self, grace: float = 10.0) -> None:
        """Stop accepting, let sessions finish (up to `grace` seconds), then close them."""
        if self._server is None:
            return
        self._server.close()
        if self._connections:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), grace)
        for protocol in list(self._connections):
            if protocol.transport is not None:
                protocol.transport.close()
        await self._server.wait_closed()
