"""APPEND with MULTIAPPEND (RFC 3502) and CATENATE (RFC 4469): several messages stored
together or not at all; messages built from text and IMAP URLs (RFC 5092) of what the
account already holds. Over real IMAPS."""

from __future__ import annotations

import re
from pathlib import Path

from mss.testing.imapclient import RawIMAP

from .harness import PASSWORD, Running, running
from .test_imap_commands import USER, connect, deliver, imap, mailbox, selected_session

__all__ = ["imap", "mailbox"]  # fixtures shared with test_imap_commands.py

ONE = b"From: a@pro.mssante.test\r\nSubject: un\r\n\r\nPremier.\r\n"
TWO = b"From: b@pro.mssante.test\r\nSubject: deux\r\n\r\nSecond.\r\n"


def _lit(data: bytes) -> bytes:
    return b"{%d+}\r\n" % len(data) + data


async def _count(imap: RawIMAP) -> int:
    line = (await imap.command("STATUS INBOX (MESSAGES)")).lines[0]
    found = re.search(rb"MESSAGES (\d+)", line)
    assert found
    return int(found.group(1))


async def _body(imap: RawIMAP, uid: int) -> bytes:
    assert (await imap.command("EXAMINE INBOX")).ok
    reply = await imap.command(f"UID FETCH {uid} BODY.PEEK[]")
    assert reply.ok
    return re.sub(rb"^.*?\{\d+\}\r\n", b"", reply.lines[0], count=1, flags=re.S)[:-3]


async def _validity(imap: RawIMAP) -> int:
    line = (await imap.command("STATUS INBOX (UIDVALIDITY)")).lines[0]
    found = re.search(rb"UIDVALIDITY (\d+)", line)
    assert found
    return int(found.group(1))


async def test_multiappend_stores_every_message_and_says_their_uids(imap: RawIMAP) -> None:
    reply = await imap.command(b"APPEND INBOX (\\Seen) " + _lit(ONE) + b" " + _lit(TWO))
    assert reply.ok
    assert re.search(rb"\[APPENDUID \d+ 3:4\]", reply.tagged)
    assert await _body(imap, 3) == ONE and await _body(imap, 4) == TWO
    flags = (await imap.command("UID FETCH 3:4 FLAGS")).text()
    assert flags.count("\\Seen") == 1  # the flags are the first message's own


async def test_multiappend_is_all_or_nothing(imap: RawIMAP) -> None:
    before = await _count(imap)
    bad = b' CATENATE (URL "/INBOX/;UID=99")'
    reply = await imap.command(b"APPEND INBOX " + _lit(ONE) + bad)
    assert reply.response.startswith(b'NO [BADURL "/INBOX/;UID=99"]')
    assert await _count(imap) == before


async def test_catenate_builds_a_message_from_text_and_urls(imap: RawIMAP) -> None:
    assert (await imap.command(b"APPEND INBOX " + _lit(ONE))).ok  # UID 3
    validity = await _validity(imap)
    head = f'URL "/INBOX;UIDVALIDITY={validity}/;UID=3/;SECTION=HEADER"'.encode()
    body = b'URL "/inbox/;uid=3/;section=TEXT/;partial=0.4"'
    reply = await imap.command(b"APPEND INBOX CATENATE (" + head + b" TEXT " + _lit(b"Ajout: ")
                               + b" " + body + b")")  # fmt: skip
    assert reply.ok
    assert await _body(imap, 4) == ONE[: ONE.index(b"\r\n\r\n") + 4] + b"Ajout: Prem"


async def test_catenate_urls_that_name_nothing_are_badurl(imap: RawIMAP) -> None:
    assert (await imap.command(b"APPEND INBOX " + _lit(ONE))).ok
    before = await _count(imap)
    urls = [
        '"/INBOX;UIDVALIDITY=1/;UID=3"',
        '"/Nulle-part/;UID=1"',
        '"/INBOX/;UID=3/;SECTION=9"',
        '"imap://ailleurs/INBOX/;UID=3"',
        '"/../INBOX/;UID=3"',
        '"/INBOX/;UID=3\\"x"',
    ]
    for url in urls:
        reply = await imap.command(f"APPEND INBOX CATENATE (URL {url} TEXT {{1+}}\r\nx)".encode())
        assert reply.response.startswith(b"NO [BADURL "), (url, reply.tagged)
        assert reply.tagged.count(b'"') == 2  # the URL quoted once, nothing of it breaks out
    assert (await imap.command("APPEND INBOX CATENATE (TEXT {0+}\r\n)")).status == "NO"  # empty
    assert await _count(imap) == before
    assert (await imap.command("APPEND INBOX CATENATE ()")).status == "BAD"
    assert (await imap.command("APPEND INBOX CATENATE (FOO x)")).status == "BAD"


async def test_catenate_cannot_multiply_what_one_append_holds(instance: Path) -> None:
    """URLs copy stored messages: one APPEND still holds at most `max_message_size`
    bytes in all (its literals are bounded so), else NO [TOOBIG] and nothing stored."""
    async with running(instance, env={"MSS_LIMITS_MAX_MESSAGE_SIZE": "2048"}) as mss:
        await mss.add_pro(USER)
        client = await connect(mss)
        await client.login(USER, PASSWORD)
        big = ONE + b"x" * 1200 + b"\r\n"
        assert (await client.command(b"APPEND INBOX " + _lit(big))).ok  # UID 1
        once = b'CATENATE (URL "/INBOX/;UID=1")'
        assert (await client.command(b"APPEND INBOX " + once)).ok
        reply = await client.command(b"APPEND INBOX " + once + b" " + once)
        assert reply.response.startswith(b"NO [TOOBIG]")
        reply = await client.command(
            b"APPEND INBOX CATENATE (" + b" ".join([b'URL "/INBOX/;UID=1"'] * 2) + b")"
        )
        assert reply.response.startswith(b"NO [TOOBIG]")
        assert await _count(client) == 2
        await client.close()


async def test_append_to_the_selected_mailbox_is_recent_to_this_session(
    mailbox: Running, imap: RawIMAP
) -> None:
    """APPEND to the mailbox the session selected read-write: at its end the session is
    told of the new message and of one delivered meanwhile, both \\Recent to it (RFC 3501
    §2.3.2: to one session only); another session sees them, not as \\Recent."""
    assert "* 2 RECENT" in (await imap.command("SELECT INBOX")).text()
    other = await selected_session(mailbox)
    await deliver(mailbox, ONE)  # UID 3, told to no session yet
    text = (await imap.command(b"APPEND INBOX " + _lit(TWO))).text()  # UID 4
    assert "* 4 EXISTS" in text and "* 4 RECENT" in text
    assert (await imap.command("FETCH 3:4 FLAGS")).text().count("\\Recent") == 2
    told = (await other.command("NOOP")).text()
    assert "* 4 EXISTS" in told and "* 0 RECENT" in told
    assert "\\Recent" not in (await other.command("FETCH 3:4 FLAGS")).text()
    await other.close()
