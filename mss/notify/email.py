"""Notices by e-mail, through the operator's smarthost (aiosmtplib).

The smarthost is reached with STARTTLS, implicit TLS, or — for a smarthost on the
loopback only (the settings refuse any other) — in clear; it may ask for AUTH. The
envelope sender is the return path with the notice's id after a `+` (VERP), so a
DSN coming back names the notice it is about (`bounce_token`); the MX turns those
DSNs into "this address is failing". The message says only that something waits
(`templates.py`), carries the notice's id as its Message-ID (a receiver drops
repeats), `Auto-Submitted: auto-generated` (RFC 3834) and no tracking of any kind.
"""

from __future__ import annotations

import quopri
import ssl
from email.header import Header
from email.utils import formatdate

import aiosmtplib

from mss.notify.base import ChannelError, ChannelName, Notice
from mss.notify.templates import email_body

TLS_MODES = ("starttls", "tls", "none")


def bounce_address(return_path: str, notice_id: str) -> str:
    """`local+<notice id>@domain` (VERP): the address DSNs about this notice come to."""
    local, _, domain = return_path.partition("@")
    return f"{local}+{notice_id}@{domain}"


def bounce_token(address: str, return_path: str) -> str | None:
    """The notice id of a VERP address of `return_path`, or None if it is not one."""
    local, _, domain = address.lower().partition("@")
    base, _, base_domain = return_path.lower().partition("@")
    if domain != base_domain or not local.startswith(base + "+"):
        return None
    token = local[len(base) + 1 :]
    return token if token and all(c.isalnum() or c == "-" for c in token) else None


class SmarthostChannel:
    name = ChannelName.EMAIL

    def __init__(
        self,
        *,
        host: str,
        port: int,
        tls: str,
        sender: str,
        return_path: str,
        hostname: str,
        service: str,
        user: str = "",
        password: str = "",
        tls_context: ssl.SSLContext | None = None,
        timeout: float = 30.0,
    ) -> None:
        if tls not in TLS_MODES:
            raise ValueError(f"smarthost TLS mode {tls!r}: one of {', '.join(TLS_MODES)}")
        self._host, self._port, self._tls = host, port, tls
        self._sender, self._return_path = sender, return_path
        self._hostname, self._service = hostname, service
        self._user, self._password = user, password
        self._context = tls_context or ssl.create_default_context()
        self._timeout = timeout
        self._idle: list[aiosmtplib.SMTP] = []  # sessions kept open between notices

    def __repr__(self) -> str:  # never the password
        return f"SmarthostChannel({self._host}:{self._port}, {self._tls})"

    def message(self, notice: Notice) -> bytes:
        """The notice as a message: plain text in UTF-8 (quoted-printable), its headers
        written out directly (the `email` package costs more than the whole send)."""
        body = quopri.encodestring(email_body(notice.text, self._service).encode("utf-8"))
        headers = [
            f"From: {_words(self._service)} <{self._sender}>",
            f"To: <{notice.destination}>",
            f"Subject: {_words(notice.subject)}",
            f"Date: {formatdate(localtime=False, usegmt=True)}",
            f"Message-ID: <{notice.id}@{self._hostname}>",
            "Auto-Submitted: auto-generated",  # RFC 3834 §5
            f"X-MSS-Notification-Id: {notice.id}",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: quoted-printable",
        ]
        return ("\r\n".join(headers) + "\r\n\r\n").encode() + body.replace(b"\n", b"\r\n")

    async def send(self, notice: Notice) -> str:
        mail = self.message(notice)
        client, reused = await self._client()
        try:
            await self._send(client, mail, notice)
        except (aiosmtplib.SMTPServerDisconnected, ConnectionError) as exc:
            if not reused:
                raise ChannelError(f"smarthost {self._host}: {exc}", permanent=False) from None
            client, _ = await self._client(fresh=True)  # the kept session had timed out
            await self._send(client, mail, notice)
        self._idle.append(client)
        return f"<{notice.id}@{self._hostname}>"

    async def _send(self, client: aiosmtplib.SMTP, mail: bytes, notice: Notice) -> None:
        try:
            await client.sendmail(
                bounce_address(self._return_path, notice.id), [notice.destination], mail
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            self._idle.append(client)  # the session is still good
            raise _refused(exc.recipients[0].code, exc.recipients[0].message) from None
        except (aiosmtplib.SMTPServerDisconnected, ConnectionError):
            await _close(client)
            raise
        except aiosmtplib.SMTPResponseException as exc:
            await _close(client)
            raise _refused(exc.code, exc.message, recipient=False) from None
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError, TimeoutError) as exc:
            await _close(client)
            raise ChannelError(f"smarthost {self._host}: {exc}", permanent=False) from None

    async def _client(self, *, fresh: bool = False) -> tuple[aiosmtplib.SMTP, bool]:
        """A connected session, and whether it was kept from an earlier notice (one TLS
        handshake for many notices); a new one when there is none (or `fresh`)."""
        while self._idle and not fresh:
            client = self._idle.pop()
            if client.is_connected:
                return client, True
        client = aiosmtplib.SMTP(
            hostname=self._host, port=self._port, use_tls=self._tls == "tls",
            start_tls=self._tls == "starttls", tls_context=self._context,
            timeout=self._timeout, local_hostname=self._hostname,
        )  # fmt: skip
        try:
            await client.connect()
            if self._user:
                await client.login(self._user, self._password)
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError, TimeoutError) as exc:
            await _close(client)
            raise ChannelError(f"smarthost {self._host}: {exc}", permanent=False) from None
        return client, False

    async def aclose(self) -> None:
        """QUIT the idle sessions (the process stops)."""
        while self._idle:
            await _close(self._idle.pop(), polite=True)


async def _close(client: aiosmtplib.SMTP, *, polite: bool = False) -> None:
    try:
        if polite and client.is_connected:
            await client.quit()
    except (aiosmtplib.SMTPException, OSError, ssl.SSLError, TimeoutError):
        pass
    finally:
        client.close()


def _words(text: str) -> str:
    """A header text, as RFC 2047 encoded words when it is not plain ASCII."""
    return text if text.isascii() else Header(text, "utf-8").encode()


def _refused(code: int, message: str, *, recipient: bool = True) -> ChannelError:
    """5xx for the recipient: that address will never take it (permanent); anything the
    smarthost refuses about us (sender, AUTH, 4xx) is ours to fix: temporary."""
    permanent = recipient and code >= 500
    what = "the address" if recipient else "the smarthost"
    return ChannelError(f"{what} refused: {code} {message}", permanent=permanent)
