"""SMTP policy hooks: from aiosmtpd's events to the delivery pipeline.

Two handlers, one per door:
- `SubmissionHandler` (587 STARTTLS / 465 TLS): AUTH is required, over TLS only
  (PLAIN, LOGIN, XOAUTH2, OAUTHBEARER, EXTERNAL with a client certificate);
  the authenticated account must own MAIL FROM and the From header.
- `MXHandler` (25): other operators of the trust space. STARTTLS is required
  before MAIL and the peer must present a certificate chaining to the trust
  anchors (checked by TLS, revocation included); the sender's domain must be on
  the whitelist; only local recipients (no relay).

Every hook turns a `Rejection` into its reply line and anything unexpected into
a logged 451, so a bug never drops the connection or loses a message.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Any, TypeVar

from aiosmtpd.smtp import AuthResult

from mss.core import codes
from mss.core.dsn import MailDSN, RcptDSN
from mss.core.sasl import (
    SaslError,
    decode_base64,
    parse_external,
    parse_oauthbearer,
    parse_plain,
    parse_xoauth2,
)
from mss.delivery.checks import Door
from mss.delivery.inbound import Accepted, Pipeline, SessionInfo
from mss.errors import Rejection
from mss.security.auth import LoginResult, LoginService
from mss.smtp.server import MssSMTP

T = TypeVar("T")
log = logging.getLogger(__name__)
DOOR = "submission"  # in the login service's log of refusals

F = TypeVar("F", bound=Callable[..., Awaitable[str]])

EXTENSIONS = ("250-PIPELINING", "250-ENHANCEDSTATUSCODES", "250-DSN")


def replies(hook: F) -> F:
    """Render Rejection as its reply; log anything else and answer 451."""

    @functools.wraps(hook)
    async def wrapper(*args: Any) -> str:
        try:
            return await hook(*args)
        except Rejection as exc:
            level = logging.INFO if exc.client_fault else logging.ERROR
            log.log(level, "refused: %s", exc.smtp_reply())
            return exc.smtp_reply()
        except Exception:
            log.exception("SMTP hook %s failed", hook.__name__)
            return codes.TEMPORARY_FAILURE

    return wrapper  # type: ignore[return-value]


def _session_info(server: MssSMTP, door: Door) -> SessionInfo:
    session = server.sess
    return SessionInfo(
        door=door,
        helo=session.host_name or "unknown",
        peer_ip=server.peer_ip(),
        tls=server.tls,
        login=session.auth_data if session.authenticated else None,
        peer=server.peer_certificate,
    )


class _Handler:
    door: Door

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self._finishing: set[asyncio.Future[Accepted]] = set()

    async def handle_EHLO(
        self, server: MssSMTP, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        kept = [r for r in responses[:-1] if r.strip() != "250-AUTH"]
        return [*kept, *EXTENSIONS, "250 HELP"]

    def handle_STARTTLS(self, server: MssSMTP, session: Any, envelope: Any) -> bool:
        server.tls_established()
        return True

    @replies
    async def handle_MAIL(
        self, server: MssSMTP, session: Any, envelope: Any, address: str, params: list[str]
    ) -> str:
        self._check_peer(server)
        envelope.mss_sender = await self._pipeline.sender(_session_info(server, self.door), address)
        envelope.mss_recipients = []
        return codes.SENDER_OK

    def _check_peer(self, server: MssSMTP) -> None:
        """The MX demands a trust-space certificate; submission needs nothing more here."""

    @replies
    async def handle_RCPT(
        self, server: MssSMTP, session: Any, envelope: Any, address: str, dsn: RcptDSN
    ) -> str:
        recipient = await self._pipeline.recipient(
            _session_info(server, self.door),
            envelope.mss_sender,
            address,
            dsn,
            envelope.mss_recipients,
        )
        envelope.mss_recipients.append(recipient)
        return codes.RECIPIENT_OK

    @replies
    async def handle_DATA(self, server: MssSMTP, session: Any, envelope: Any) -> str:
        """A message read to its final dot is stored even if its client hangs up before
        the reply (as Postfix does): the client, without its 250, sends it again, and
        that retry is answered without a second copy (delivery/retries.py)."""
        work = asyncio.ensure_future(self._pipeline.accept(
            _session_info(server, self.door),
            envelope.mss_sender,
            envelope.mss_recipients,
            envelope.content,
            getattr(envelope, "mss_dsn", None) or MailDSN(),
        ))  # fmt: skip
        self._finishing.add(work)
        work.add_done_callback(self._finishing.discard)
        try:
            accepted = await asyncio.shield(work)  # a lost connection cancels this coroutine only
        except asyncio.CancelledError:
            work.add_done_callback(_orphan_done)
            raise
        return f"250 2.0.0 OK queued as {accepted.queue_id}"

    async def handle_exception(self, error: Exception) -> str:
        log.exception("SMTP session error")
        return codes.TEMPORARY_FAILURE


class MXHandler(_Handler):
    door = Door.MX

    def _check_peer(self, server: MssSMTP) -> None:
        if not server.tls:
            raise Rejection(530, "5.7.0", codes.STARTTLS_REQUIRED.split(" ", 2)[2])
        identity = server.peer_certificate
        if identity is None or identity.kind != "operator":
            raise Rejection(*_split(codes.CLIENT_CERT_REQUIRED))


class SubmissionHandler(_Handler):
    door = Door.SUBMISSION

    def __init__(self, pipeline: Pipeline, logins: LoginService, *, allow_patients: bool) -> None:
        super().__init__(pipeline)
        self._logins = logins
        self._kinds: Collection[str] = (
            ("professional", "applicative", "patient")
            if allow_patients
            else ("professional", "applicative")
        )

    async def handle_EHLO(
        self, server: MssSMTP, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        lines = await super().handle_EHLO(server, session, envelope, hostname, responses)
        if not self._logins.bearer_enabled:
            lines = [_drop_mechanisms(line, {"XOAUTH2", "OAUTHBEARER"}) for line in lines]
        if server.peer_certificate is None:
            lines = [_drop_mechanisms(line, {"EXTERNAL"}) for line in lines]
        return lines

    # --- SASL mechanisms (aiosmtpd calls auth_<MECHANISM>) -------------------------------------

    async def _response(
        self, server: MssSMTP, args: list[str], challenge: str = ""
    ) -> bytes | None:
        """The client's response: initial (RFC 4954 §4, "=" is empty) or after a 334."""
        if len(args) > 1:
            if args[1] == "=":
                return b""
            try:
                return decode_base64(args[1])
            except SaslError:
                await server.push(codes.AUTH_MALFORMED)
                return None
        answer = await server.challenge_auth(challenge)
        return answer if isinstance(answer, bytes) else None

    async def _parsed(
        self, server: MssSMTP, args: list[str], parse: Callable[[bytes], T]
    ) -> T | None:
        """The client's response, parsed; None when absent or malformed (then answered)."""
        raw = await self._response(server, args)
        if raw is None:
            return None
        try:
            return parse(raw)
        except SaslError:
            await server.push(codes.AUTH_MALFORMED)
            return None

    async def _finish(self, server: MssSMTP, result: LoginResult) -> AuthResult:
        if result.throttled:
            return AuthResult(success=False, handled=False, message=codes.AUTH_THROTTLED)
        if not result.ok:  # logged by the login service
            return AuthResult(success=False, handled=False, message=codes.AUTH_INVALID)
        return AuthResult(success=True, auth_data=result.identity)

    async def auth_PLAIN(self, server: MssSMTP, args: list[str]) -> AuthResult:
        creds = await self._parsed(server, args, parse_plain)
        if creds is None:
            return AuthResult(success=False, handled=True)
        if creds.authzid and creds.authzid.lower() != creds.authcid.lower():
            return AuthResult(success=False, handled=False, message=codes.AUTH_INVALID)
        result = await self._logins.with_password(
            creds.authcid, creds.password, server.peer_ip(), self._kinds, door=DOOR
        )
        return await self._finish(server, result)

    async def auth_LOGIN(self, server: MssSMTP, args: list[str]) -> AuthResult:
        user = await self._response(server, args, "Username:")
        if user is None:
            return AuthResult(success=False, handled=True)
        password = await server.challenge_auth("Password:")
        if not isinstance(password, bytes):
            return AuthResult(success=False, handled=True)
        try:
            login, secret = user.decode(), password.decode()
        except UnicodeDecodeError:
            await server.push(codes.AUTH_MALFORMED)
            return AuthResult(success=False, handled=True)
        result = await self._logins.with_password(
            login, secret, server.peer_ip(), self._kinds, door=DOOR
        )
        return await self._finish(server, result)

    async def _bearer(
        self, server: MssSMTP, args: list[str], parse: Callable[[bytes], Any]
    ) -> AuthResult:
        if not self._logins.bearer_enabled:
            return AuthResult(
                success=False, handled=False, message=codes.AUTH_MECHANISM_UNAVAILABLE
            )
        creds = await self._parsed(server, args, parse)
        if creds is None:
            return AuthResult(success=False, handled=True)
        result = await self._logins.with_bearer(
            creds.user, creds.token, server.peer_ip(), self._kinds, door=DOOR
        )
        if not result.ok and not result.throttled:
            # RFC 7628 §3.2.2 / XOAUTH2: an error challenge, the client answers empty, then 535.
            await server.challenge_auth('{"status":"401","schemes":"bearer"}')
        return await self._finish(server, result)

    async def auth_XOAUTH2(self, server: MssSMTP, args: list[str]) -> AuthResult:
        return await self._bearer(server, args, parse_xoauth2)

    async def auth_OAUTHBEARER(self, server: MssSMTP, args: list[str]) -> AuthResult:
        return await self._bearer(server, args, parse_oauthbearer)

    async def auth_EXTERNAL(self, server: MssSMTP, args: list[str]) -> AuthResult:
        authzid = await self._parsed(server, args, parse_external)
        if authzid is None:
            return AuthResult(success=False, handled=True)
        result = await self._logins.with_certificate(
            server.peer_certificate, authzid, server.peer_ip(), self._kinds, door=DOOR
        )
        return await self._finish(server, result)


def _orphan_done(work: asyncio.Future[Accepted]) -> None:
    """The end of a message whose client hung up before the reply: logged, as no reply is."""
    if work.cancelled():
        return
    if (error := work.exception()) is None:
        log.info("queued %s for a client gone before the reply", work.result().queue_id)
    elif isinstance(error, Rejection):
        log.info("refused for a client gone before the reply: %s", error.smtp_reply())
    else:
        log.error("message of a client gone before the reply not stored: %r", error)


def _drop_mechanisms(line: str, names: set[str]) -> str:
    if not line.startswith("250-AUTH "):
        return line
    kept = [m for m in line[len("250-AUTH ") :].split() if m not in names]
    return "250-AUTH " + " ".join(kept)


def _split(reply: str) -> tuple[int, str, str]:
    code, enhanced, text = reply.split(" ", 2)
    return int(code), enhanced, text
