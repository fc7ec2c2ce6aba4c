"""Issue 17, logs an operator can read: a client that drops its connection (during IDLE
or any command) is one INFO line, never an ERROR with a traceback."""

from __future__ import annotations

import asyncio
import logging

import pytest

from .harness import PASSWORD, Running
from .test_imap_commands import SIMPLE, USER, connect, deliver, mailbox

__all__ = ["mailbox"]  # a fixture shared with test_imap_commands.py


def _lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("mss.imap")]


@pytest.mark.parametrize("during", ["IDLE", "FETCH 1:* (BODY.PEEK[])", "APPEND INBOX {99}"])
async def test_a_dropped_connection_is_one_info_line(
    mailbox: Running, caplog: pytest.LogCaptureFixture, during: str
) -> None:
    caplog.set_level(logging.DEBUG, logger="mss.imap")
    client = await connect(mailbox)
    await client.login(USER, PASSWORD)
    assert (await client.command("SELECT INBOX")).ok
    await client.send(f"x {during}\r\n".encode())
    client.writer.transport.abort()  # the client goes away without LOGOUT
    await deliver(mailbox, SIMPLE)  # wakes an IDLE session: it writes to the dead socket
    for _ in range(100):
        if any("closed" in r.getMessage() for r in _lines(caplog)):
            break
        await asyncio.sleep(0.05)
    records = _lines(caplog)
    assert not [r for r in records if r.levelno >= logging.WARNING], records
    closed = [r for r in records if "closed" in r.getMessage()]
    assert len(closed) == 1 and closed[0].levelno == logging.INFO
    assert USER in closed[0].getMessage() and "\n" not in closed[0].getMessage()
    assert closed[0].exc_info is None
