"""NOTIFY (RFC 5465): news told without asking, between commands: STATUS of the other
mailboxes, EXISTS / FETCH / EXPUNGE of the selected one; NONE stops them; events mss
does not serve are NO [BADEVENT]. Over real IMAPS, news arriving with no command sent."""

from __future__ import annotations

import asyncio
import re

from mss.testing.imapclient import RawIMAP

from .harness import PASSWORD, Running
from .test_imap_commands import SIMPLE, USER, connect, deliver, imap, mailbox

__all__ = ["imap", "mailbox"]  # fixtures shared with test_imap_commands.py


async def _unasked(client: RawIMAP, pattern: bytes, seconds: float = 5.0) -> bytes:
    """The first line matching `pattern` that the server sends with no command asked."""
    while True:
        line = await asyncio.wait_for(client.read_line(), seconds)
        if re.match(pattern, line):
            return line


async def _silent(client: RawIMAP, seconds: float = 0.5) -> None:
    try:
        line = await asyncio.wait_for(client.read_line(), seconds)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected {line!r}")


def _message(n: int) -> bytes:
    return SIMPLE.replace(b"<simple@", f"<notify{n}@".encode())


async def test_notify_status_of_other_mailboxes_without_asking(
    mailbox: Running, imap: RawIMAP
) -> None:
    assert (await imap.command("CREATE Dossier")).ok
    reply = await imap.command("NOTIFY SET STATUS (PERSONAL (MessageNew MessageExpunge))")
    assert reply.ok
    told = b"".join(reply.lines)
    assert re.search(rb"\* STATUS INBOX \(MESSAGES 2 UIDNEXT 3 UIDVALIDITY \d+\)", told)
    assert b"* STATUS Dossier (MESSAGES 0 UIDNEXT 1 UIDVALIDITY" in told
    await deliver(mailbox, _message(1), "Dossier")
    line = await _unasked(imap, rb"\* STATUS Dossier")
    assert line.startswith(b"* STATUS Dossier (MESSAGES 1 UIDNEXT 2 UIDVALIDITY ")
    assert (await imap.command("NOTIFY NONE")).ok
    await deliver(mailbox, _message(2), "Dossier")
    await _silent(imap)


async def test_notify_selected_tells_new_and_changed_messages_at_once(
    mailbox: Running, imap: RawIMAP
) -> None:
    assert (await imap.command("SELECT INBOX")).ok
    set_ = "NOTIFY SET (SELECTED (MessageNew MessageExpunge FlagChange)) (INBOXES NONE)"
    assert (await imap.command(set_)).ok
    await deliver(mailbox, _message(1))
    assert await _unasked(imap, rb"\* 3 EXISTS") == b"* 3 EXISTS\r\n"
    other = await connect(mailbox)
    await other.login(USER, PASSWORD)
    assert (await other.command("SELECT INBOX")).ok
    assert (await other.command("STORE 1 +FLAGS (\\Flagged)")).ok
    assert b"\\Flagged" in await _unasked(imap, rb"\* 1 FETCH")
    assert (await other.command("STORE 2 +FLAGS (\\Deleted)")).ok
    assert (await other.command("EXPUNGE")).ok
    assert await _unasked(imap, rb"\* 2 EXPUNGE") == b"* 2 EXPUNGE\r\n"
    assert (await imap.command("NOOP")).ok  # and the session goes on
    await other.close()


async def test_notify_news_reach_an_idling_client(mailbox: Running, imap: RawIMAP) -> None:
    assert (await imap.command("CREATE Dossier")).ok
    assert (await imap.command("SELECT INBOX")).ok
    assert (await imap.command("NOTIFY SET (MAILBOXES Dossier (MessageNew MessageExpunge))")).ok
    await imap.send(b"i1 IDLE\r\n")
    assert (await imap.read_line()).startswith(b"+")
    await deliver(mailbox, _message(1), "Dossier")
    assert (await _unasked(imap, rb"\* STATUS")).startswith(b"* STATUS Dossier (MESSAGES 1 ")
    await imap.send(b"DONE\r\n")
    assert (await imap.until("i1")).ok


async def test_notify_unserved_events_and_bad_syntax(imap: RawIMAP) -> None:
    reply = await imap.command("NOTIFY SET (PERSONAL (MessageNew MessageExpunge MailboxName))")
    assert reply.response.startswith(b"NO [BADEVENT (MessageNew MessageExpunge FlagChange)]")
    for bad in ("NOTIFY", "NOTIFY SET", "NOTIFY SET (NOWHERE (MessageNew))",
                "NOTIFY SET (PERSONAL ())", "NOTIFY SET (MAILBOXES (MessageNew))"):  # fmt: skip
        assert (await imap.command(bad)).status == "BAD", bad
    assert (await imap.command("NOTIFY NONE")).ok
