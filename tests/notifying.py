"""What the notification tests share: a smarthost (an aiosmtpd sink over STARTTLS with
the instance's certificate), the `[notify]` settings pointing at it, a patient waiting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session

from mss.testing.smarthost import smarthost


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
def sink(instance: Path) -> Iterator[tuple[Sink, int]]:
    handler = Sink()
    with smarthost(handler, instance / "certs") as port:
        yield handler, port


def notify_settings(port: int, **more: Any) -> dict[str, dict[str, Any]]:
    return {"notify": {"smarthost": f"127.0.0.1:{port}", "smarthost_tls": "starttls",
                       "smarthost_ca": "certs/ca.crt", "space_url": "https://espace.test/",
                       "push_private_networks": True, **more}}  # fmt: skip


async def until(condition: Any, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if await condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


Route = Callable[[web.Request], Awaitable[web.Response]]


@asynccontextmanager
async def http_receiver(posts: dict[str, Route]) -> AsyncIterator[str]:
    """An HTTP server on the loopback taking POSTs at `posts` (path → handler): the
    SMS gateway, the push service, a webhook receiver. Yields its base URL."""
    app = web.Application()
    for path, handler in posts.items():
        app.router.add_post(path, handler)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
