"""Issue 17, logs an operator can read: one INFO line when an SMTP connection ends, in
the same shape as IMAP's (door, who, from where, how), and a client that drops in the
middle of anything is no ERROR with a traceback."""

from __future__ import annotations

import asyncio
import logging

import pytest

from .harness import PASSWORD, Running

JEAN = "jean.dupont@pro.mssante.test"


def _closed(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name.startswith("mss.smtp") and "closed" in r.getMessage()
    ]


async def _wait_closed(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    for _ in range(100):
        if _closed(caplog):
            break
        await asyncio.sleep(0.05)
    return _closed(caplog)


@pytest.mark.parametrize("stage", ["greeting", "EHLO", "MAIL", "DATA"])
async def test_a_dropped_smtp_connection_is_one_info_line(
    mss: Running, caplog: pytest.LogCaptureFixture, stage: str
) -> None:
    caplog.set_level(logging.DEBUG)
    await mss.add_pro(JEAN)
    client = mss.smtp("submission")
    await client.connect()
    if stage != "greeting":
        await client.starttls()
        await client.login(JEAN, PASSWORD)
    if stage in ("MAIL", "DATA"):
        await client.mail(JEAN)
        await client.rcpt(JEAN)
    if stage == "DATA":
        await client.execute_command(b"DATA")
        client.transport.write("Subject: coupé\r\n\r\nla moitié d'un mess".encode())  # type: ignore[union-attr]
    client.transport.abort()  # type: ignore[union-attr]
    [closed] = await _wait_closed(caplog)
    assert closed.levelno == logging.INFO and closed.exc_info is None
    text = closed.getMessage()
    assert "submission" in text and "127.0.0.1" in text and "\n" not in text
    assert (JEAN in text) == (stage != "greeting")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.records
    assert not [r for r in caplog.records if r.name == "mail.log" and r.levelno >= logging.INFO]


async def test_a_quit_is_one_info_line(mss: Running, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    client = mss.smtp("submission")
    await client.connect()
    await client.quit()
    [closed] = await _wait_closed(caplog)
    assert "QUIT" in closed.getMessage()


def test_aiosmtpd_masks_an_auth_line_it_logs_and_computes_nothing_for_one_it_drops(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import aiosmtpd.smtp

    masked: list[bytes] = []
    original = aiosmtpd.smtp.sanitize

    def sanitize(text: bytes) -> bytes:
        masked.append(text)
        return original(text)

    monkeypatch.setattr(aiosmtpd.smtp, "sanitize", sanitize)
    mail_log = logging.getLogger("mail.log")
    line = b"AUTH PLAIN AGplYW4AbW90LWRlLXBhc3Nl\r\n"
    aiosmtpd.smtp.sanitized_log(mail_log.info, "%r >> %r", ("127.0.0.1", 1), line)
    assert masked == []  # mail.log is at WARNING: the line is dropped, nothing computed
    caplog.set_level(logging.DEBUG, logger="mail.log")  # an operator who wants aiosmtpd's lines
    aiosmtpd.smtp.sanitized_log(mail_log.info, "%r >> %r", ("127.0.0.1", 1), line)
    assert masked == [line]
    logged = [r.getMessage() for r in caplog.records if r.name == "mail.log"]
    assert logged and "********" in logged[-1] and "AGplYW4" not in logged[-1]
