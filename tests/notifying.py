"""What the notification tests share: a smarthost (an aiosmtpd sink over STARTTLS with
the instance's certificate), the `[notify]` settings pointing at it, a patient waiting."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


class Sink:
    """A smarthost: STARTTLS with the instance's certificate; keeps what it is given."""

    def __init__(self) -> None:
        self.mail: list[tuple[str, list[str], bytes]] = []
        self.refuse: set[str] = set()

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes) and envelope.mail_from is not None
        self.mail.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@pytest.fixture
async def sink(instance: Path) -> AsyncIterator[tuple[Sink, int]]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(instance / "certs" / "server.crt", instance / "certs" / "server.key")
    handler = Sink()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, tls_context=context,
                            require_starttls=True)  # fmt: skip
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def notify_settings(port: int, **more: Any) -> dict[str, dict[str, Any]]:
    return {"notify": {"smarthost": f"127.0.0.1:{port}", "smarthost_tls": "starttls",
                       "smarthost_ca": "certs/ca.crt", "space_url": "https://espace.test/",
                       **more}}  # fmt: skip


async def until(condition: Any, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if await condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")
