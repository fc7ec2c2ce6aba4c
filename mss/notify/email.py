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

import ssl
from email.message import EmailMessage
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

    def __repr__(self) -> str:  # never the password
        return f"SmarthostChannel({self._host}:{self._port}, {self._tls})"

    def message(self, notice: Notice) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = f"{self._service} <{self._sender}>"
        mail["To"] = notice.destination
        mail["Subject"] = notice.subject
        mail["Date"] = formatdate(localtime=False, usegmt=True)
        mail["Message-ID"] = f"<{notice.id}@{self._hostname}>"
        mail["Auto-Submitted"] = "auto-generated"  # RFC 3834 §5
        mail["X-MSS-Notification-Id"] = notice.id
        mail.set_content(email_body(notice.text, self._service))
        return mail

    async def send(self, notice: Notice) -> str:
        mail = self.message(notice)
        try:
            await aiosmtplib.send(
                mail, sender=bounce_address(self._return_path, notice.id),
                recipients=[notice.destination], hostname=self._host, port=self._port,
                use_tls=self._tls == "tls", start_tls=self._tls == "starttls",
                tls_context=self._context, username=self._user or None,
                password=self._password or None, timeout=self._timeout,
                local_hostname=self._hostname,
            )  # fmt: skip
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise _refused(exc.recipients[0].code, exc.recipients[0].message) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise _refused(exc.code, exc.message, recipient=False) from None
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError, TimeoutError) as exc:
            raise ChannelError(f"smarthost {self._host}: {exc}", permanent=False) from None
        return str(mail["Message-ID"])


def _refused(code: int, message: str, *, recipient: bool = True) -> ChannelError:
    """5xx for the recipient: that address will never take it (permanent); anything the
    smarthost refuses about us (sender, AUTH, 4xx) is ours to fix: temporary."""
    permanent = recipient and code >= 500
    what = "the address" if recipient else "the smarthost"
    return ChannelError(f"{what} refused: {code} {message}", permanent=permanent)
