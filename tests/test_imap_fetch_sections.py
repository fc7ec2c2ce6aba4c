"""FETCH BODY[section] inside message/rfc822 parts (RFC 3501 §6.4.5 part numbering):
a message/rfc822 part is the whole encapsulated message, its HEADER and TEXT are the
encapsulated message's, and the numbers after it name the encapsulated message's parts,
nested messages included."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mss.testing.imapclient import RawIMAP

from .harness import PASSWORD, Running
from .test_imap_commands import USER, connect, deliver, selected

INNER = (
    b"From: sub@domain.org\r\n"
    b"Date: Sun, 12 Aug 2012 12:34:56 +0300\r\n"
    b"Subject: submsg\r\n"
    b"\r\n"
    b"Hello world\r\n"
)
MIDDLE = (
    b"From: user2@domain.org\r\nMime-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n" + INNER
)
HEADER = b"From: user@domain.org\r\nMime-Version: 1.0\r\n"
# 1: a message whose body is a message; 2: a message in a message in a message
RFC822 = HEADER + b"Content-Type: message/rfc822\r\n\r\n" + INNER
TWICE = HEADER + b"Content-Type: message/rfc822\r\n\r\n" + MIDDLE
# 3: a multipart whose second part is a message holding a multipart digest
DIGEST = (
    b"From: sub@domain.org\r\n"
    b'Content-Type: multipart/digest; boundary="d"\r\n'
    b"\r\n"
    b"--d\r\n"
    b"\r\n"
    b"From: m1@example.com\r\nSubject: m1\r\n\r\nm1 body\r\n\r\n"
    b"--d\r\n"
    b"X-Mime: m2 header\r\n"
    b"\r\n"
    b"From: m2@example.com\r\nSubject: m2\r\n\r\nm2 body\r\n\r\n"
    b"--d--\r\n"
)
MIXED = (
    HEADER + b'Content-Type: multipart/mixed; boundary="m"\r\n'
    b"\r\n"
    b"--m\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"first\r\n"
    b"--m\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"\r\n" + DIGEST + b"--m--\r\n"
)


async def selected_with(mss: Running, *messages: bytes) -> RawIMAP:
    """A session of a new user whose INBOX holds these messages, selected."""
    await mss.add_pro(USER)
    for raw in messages:
        await deliver(mss, raw)
    client = await connect(mss)
    await client.login(USER, PASSWORD)
    return await selected(client)


@pytest.fixture
async def imap(mss: Running) -> AsyncIterator[RawIMAP]:
    client = await selected_with(mss, RFC822, TWICE, MIXED)
    yield client
    await client.close()


def literal(data: bytes) -> str:
    return f"{{{len(data)}}}\r\n{data.decode()}"


async def fetch(imap: RawIMAP, number: int, section: str) -> str:
    reply = await imap.command(f"FETCH {number} BODY.PEEK[{section}]")
    assert reply.ok, reply.text()
    return reply.text()


async def test_message_part_is_the_whole_encapsulated_message(imap: RawIMAP) -> None:
    assert f"BODY[1] {literal(INNER)})" in await fetch(imap, 1, "1")
    assert f"BODY[1] {literal(MIDDLE)})" in await fetch(imap, 2, "1")
    assert f"BODY[TEXT] {literal(INNER)})" in await fetch(imap, 1, "TEXT")


async def test_numbers_after_a_message_part_name_the_encapsulated_parts(imap: RawIMAP) -> None:
    assert "BODY[1.1] {13}\r\nHello world\r\n)" in await fetch(imap, 1, "1.1")
    assert f"BODY[1.1] {literal(INNER)})" in await fetch(imap, 2, "1.1")
    assert "BODY[1.1.1] {13}\r\nHello world\r\n)" in await fetch(imap, 2, "1.1.1")


async def test_header_and_text_of_a_message_part_are_the_encapsulated_ones(
    imap: RawIMAP,
) -> None:
    inner_header = INNER[: INNER.index(b"\r\n\r\n") + 4]
    assert f"BODY[1.HEADER] {literal(inner_header)})" in await fetch(imap, 1, "1.HEADER")
    assert "BODY[1.TEXT] {13}\r\nHello world\r\n)" in await fetch(imap, 1, "1.TEXT")
    fields = await fetch(imap, 1, "1.HEADER.FIELDS (FROM SUBJECT X-FOO)")
    assert literal(b"From: sub@domain.org\r\nSubject: submsg\r\n\r\n") in fields
    others = await fetch(imap, 1, "1.HEADER.FIELDS.NOT (FROM SUBJECT)")
    assert literal(b"Date: Sun, 12 Aug 2012 12:34:56 +0300\r\n\r\n") in others
    middle_header = MIDDLE[: MIDDLE.index(b"\r\n\r\n") + 4]
    assert f"BODY[1.HEADER] {literal(middle_header)})" in await fetch(imap, 2, "1.HEADER")
    assert f"BODY[1.TEXT] {literal(INNER)})" in await fetch(imap, 2, "1.TEXT")
    assert f"BODY[1.1.HEADER] {literal(inner_header)})" in await fetch(imap, 2, "1.1.HEADER")
    assert "BODY[1.1.TEXT] {13}\r\nHello world\r\n)" in await fetch(imap, 2, "1.1.TEXT")


async def test_parts_of_a_multipart_inside_a_message_part(imap: RawIMAP) -> None:
    # the line break before the next delimiter belongs to it (RFC 2046 §5.1.1)
    assert f"BODY[2] {literal(DIGEST[:-2])})" in await fetch(imap, 3, "2")
    assert "BODY[2.HEADER] {" in await fetch(imap, 3, "2.HEADER")
    m1 = b"From: m1@example.com\r\nSubject: m1\r\n\r\nm1 body\r\n"
    assert f"BODY[2.1] {literal(m1)})" in await fetch(imap, 3, "2.1")
    assert "BODY[2.1.MIME] {2}\r\n\r\n)" in await fetch(imap, 3, "2.1.MIME")
    assert "BODY[2.1.TEXT] {9}\r\nm1 body\r\n)" in await fetch(imap, 3, "2.1.TEXT")
    assert literal(b"X-Mime: m2 header\r\n\r\n") in await fetch(imap, 3, "2.2.MIME")
    header = b"From: m2@example.com\r\nSubject: m2\r\n\r\n"
    assert f"BODY[2.2.HEADER] {literal(header)})" in await fetch(imap, 3, "2.2.HEADER")
    assert "BODY[2.2.1] {9}\r\nm2 body\r\n)" in await fetch(imap, 3, "2.2.1")


async def test_a_part_that_does_not_exist_is_nil(imap: RawIMAP) -> None:
    assert "BODY[2] NIL" in await fetch(imap, 1, "2")
    assert "BODY[1.2] NIL" in await fetch(imap, 1, "1.2")
    assert "BODY[1.1.1] NIL" in await fetch(imap, 3, "1.1.1")  # part 1 is text, not a message
    assert "BODY[1.1] NIL" in await fetch(imap, 3, "1.1")
    assert "BODY[1.HEADER] NIL" in await fetch(imap, 3, "1.HEADER")
