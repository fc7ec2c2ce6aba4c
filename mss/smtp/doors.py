"""The three SMTP doors, built from plain values: MX (25, STARTTLS offered to other
operators), submission (587, STARTTLS then AUTH) and submissions (465, implicit TLS).

`app` reads the settings and passes what a connection needs here; this module never
sees the configuration.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mss.security.proxy_protocol import ProxyPolicy
from mss.smtp.server import Listener, MssSMTP, ProtocolFactory


@dataclass(frozen=True, kw_only=True)
class SmtpOptions:
    """What every SMTP connection is given."""

    hostname: str
    max_recipients: int
    max_line_length: int  # RFC 5322 §2.1.1
    max_message_size: int  # SIZE, RFC 1870
    idle_timeout: float  # RFC 5321 §4.5.3.2.7
    data_timeout: float


def protocol_factory(
    handler: Any,
    options: SmtpOptions,
    tls: Callable[[], ssl.SSLContext],
    *,
    submission: bool,
    implicit: bool,
) -> ProtocolFactory:
    """Make one `MssSMTP` per connection; STARTTLS uses the context current at that time."""

    def make(on_lost: Callable[[MssSMTP], None]) -> MssSMTP:
        return MssSMTP(
            handler,
            on_lost=on_lost,
            max_recipients=options.max_recipients,
            max_line_length=options.max_line_length,
            data_timeout=options.data_timeout,
            implicit_tls=implicit,
            hostname=options.hostname,
            ident="mss ESMTP",
            tls_context=None if implicit else tls(),
            require_starttls=not implicit,
            timeout=options.idle_timeout,
            data_size_limit=options.max_message_size,
            enable_SMTPUTF8=True,
            auth_required=submission,
            auth_exclude_mechanism=None if submission else ["PLAIN", "LOGIN"],
            loop=asyncio.get_running_loop(),
        )

    return make


def smtp_listeners(
    mx_handler: Any,
    submission_handler: Any,
    options: SmtpOptions,
    tls: Callable[[], ssl.SSLContext],
    *,
    host: str,
    ports: Mapping[str, int],
    sockets: Mapping[str, socket.socket],
    proxy: ProxyPolicy | None = None,
) -> list[Listener]:
    """The MX, submission and submissions listeners (not started yet).

    `ports` and `sockets` are keyed by door name; a socket given for a door (bound
    by the supervisor) is used instead of binding the port."""

    def door(name: str, handler: Any, *, submission: bool, implicit: bool) -> Listener:
        factory = protocol_factory(handler, options, tls, submission=submission, implicit=implicit)
        return Listener(
            name, host, ports[name], factory, tls if implicit else None, sock=sockets.get(name),
            proxy=proxy,
        )  # fmt: skip

    return [
        door("mx", mx_handler, submission=False, implicit=False),
        door("submission", submission_handler, submission=True, implicit=False),
        door("submissions", submission_handler, submission=True, implicit=True),
    ]
