"""FETCH BINARY (RFC 3516): transfer encodings undone (quoted-printable per RFC 2045 §6.7,
base64), BINARY.SIZE the decoded size, NUL bytes only ever in a literal8; APPEND of a
literal8 stores binary parts in base64; no plain literal carries a NUL (RFC 3501 §9)."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mss.imap.parsing.commands import CommandError, parse_command
from mss.testing.imapclient import RawIMAP

from .harness import Running
from .test_imap_fetch_sections import selected_with


def mixed(*parts: bytes) -> bytes:
    body = b"".join(b"--b\r\n" + part + b"\r\n" for part in parts)
    return (
        b"From: user@domain.org\r\nMime-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + body + b"--b--\r\n"
    )


QP_BODY = (
    b"hello  \r\nbar=\r\n\r\nfoo\t=\r\nbar\r\nfoo\t \t= \r\n=62\r\nfoo = \t\r\nbar\r\n"
    b"foo =\r\n=62\r\nfoo  \r\nbar=\r\n\r\nfoo_bar\r\n"
)
QP_DECODED = (
    b"hello\r\nbar\r\nfoo\tbar\r\nfoo\t \tb\r\nfoo bar\r\nfoo b\r\nfoo\r\nbar\r\nfoo_bar\r\n"
)
WITH_NUL = b"abc\x00def\r\n\xe9\r\n"
ENCODINGS = mixed(
    b"Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + QP_BODY,
    b"Content-Type: text/plain\r\nContent-Transfer-Encoding: Base64\r\n\r\n"
    b"  aGVs \r\n bG8g\td29y\r\nbGQ=\r\n",
    b"Content-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644\r\n",
    b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + WITH_NUL,
)


@pytest.fixture
async def imap(mss: Running) -> AsyncIterator[RawIMAP]:
    client = await selected_with(mss, ENCODINGS)
    yield client
    await client.close()


async def fetch(imap: RawIMAP, items: str, number: int = 1) -> bytes:
    reply = await imap.command(f"FETCH {number} ({items})")
    assert reply.ok, reply.text()
    return b"".join(reply.lines)


async def test_binary_undoes_quoted_printable_as_rfc_2045_says(imap: RawIMAP) -> None:
    # transport padding removed, soft line breaks joined (also `= ` with white space after)
    assert b"BINARY[1] {%d}\r\n%s)" % (len(QP_DECODED), QP_DECODED) in await fetch(
        imap, "BINARY.PEEK[1]"
    )
    assert b"BINARY.SIZE[1] %d" % len(QP_DECODED) in await fetch(imap, "BINARY.SIZE[1]")


async def test_binary_partial_is_a_window_of_the_decoded_content(imap: RawIMAP) -> None:
    for start, count in ((0, 10), (10, 10), (15, 10), (40, 100), (900, 5)):
        window = QP_DECODED[start : start + count]
        data = await fetch(imap, f"BINARY.PEEK[1]<{start}.{count}>")
        assert b"BINARY[1]<%d> {%d}\r\n%s)" % (start, len(window), window) in data


async def test_binary_size_does_not_set_seen_binary_does(imap: RawIMAP) -> None:
    assert b"\\Seen" not in await fetch(imap, "BINARY.SIZE[2]")
    assert b"FLAGS (\\Seen \\Recent)" in await fetch(imap, "BINARY[2]")


async def test_binary_undoes_base64_whatever_the_white_space(imap: RawIMAP) -> None:
    data = await fetch(imap, "BINARY.PEEK[2] BINARY.SIZE[2]")
    assert b"BINARY[2] {11}\r\nhello world" in data and b"BINARY.SIZE[2] 11" in data


async def test_binary_of_an_unknown_encoding_is_no_unknown_cte(imap: RawIMAP) -> None:
    for item in ("BINARY.PEEK[3]", "BINARY.SIZE[3]"):
        reply = await imap.command(f"FETCH 1 ({item})")
        assert reply.response.startswith(b"NO [UNKNOWN-CTE]"), reply.text()
    assert b"BODY[3] {11}\r\nbegin 644\r\n" in await fetch(imap, "BODY.PEEK[3]")


async def test_nul_bytes_go_out_only_in_a_literal8(imap: RawIMAP) -> None:
    data = await fetch(imap, "BINARY.PEEK[4] BINARY.SIZE[4]")
    assert b"BINARY[4] ~{%d}\r\n%s" % (len(WITH_NUL), WITH_NUL) in data
    assert b"BINARY.SIZE[4] %d" % len(WITH_NUL) in data
    partial = await fetch(imap, "BINARY.PEEK[4]<0.3>")
    assert b"BINARY[4]<0> {3}\r\nabc)" in partial  # no NUL in the window: a plain literal


async def test_no_plain_literal_carries_a_nul(imap: RawIMAP) -> None:
    # RFC 3501 §9 CHAR8 excludes NUL: it goes out as 0x80, the length unchanged
    for items in ("BODY.PEEK[4]", "BODY.PEEK[]", "BODY.PEEK[TEXT]", "RFC822", "RFC822.TEXT"):
        data = await fetch(imap, items)
        assert b"\x00" not in data and b"abc\x80def" in data, items
    assert b"BODY[4] {%d}\r\nabc\x80def" % len(WITH_NUL) in await fetch(imap, "BODY.PEEK[4]")
    assert b"BINARY[] ~{" in await fetch(imap, "BINARY.PEEK[]")  # the whole message, as stored


BINARY_PART = b"\x00-\xe4\r\n\r\n\xff\x00"


async def append8(imap: RawIMAP, message: bytes) -> None:
    reply = await imap.command(b"APPEND INBOX ~{%d+}\r\n%s" % (len(message), message))
    assert reply.ok, reply.text()


async def test_append_of_a_literal8_stores_binary_parts_in_base64(imap: RawIMAP) -> None:
    single = (
        b"From: user@domain.org\r\nMime-Version: 1.0\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n"
        b"\r\n" + BINARY_PART
    )
    await append8(imap, single)
    await imap.command("NOOP")
    data = await fetch(imap, "BODY.PEEK[1] BINARY.PEEK[1] BINARY.SIZE[1] BODY.PEEK[1.MIME]", 2)
    encoded = base64.b64encode(BINARY_PART)
    assert b"BODY[1] {%d}\r\n%s\r\n" % (len(encoded) + 2, encoded) in data
    assert b"BINARY[1] ~{%d}\r\n%s" % (len(BINARY_PART), BINARY_PART) in data
    assert b"BINARY.SIZE[1] %d" % len(BINARY_PART) in data
    assert b"Content-Transfer-Encoding: base64\r\n" in data
    assert b"Content-Transfer-Encoding: binary" not in data


async def test_append_of_a_literal8_keeps_the_other_parts(imap: RawIMAP) -> None:
    text = b"Content-Type: text/plain\r\n\r\nunchanged \xc3\xa9\r\n"
    binary = (
        b"Content-Type: image/png\r\nContent-Transfer-Encoding:\r\n binary\r\n"
        b"Content-Disposition: attachment\r\n\r\n" + BINARY_PART
    )
    await append8(imap, mixed(text, binary))
    await imap.command("NOOP")
    data = await fetch(imap, "BODY.PEEK[1] BINARY.PEEK[2] BODY.PEEK[2.MIME] BODYSTRUCTURE", 2)
    assert b"BODY[1] {14}\r\nunchanged \xc3\xa9\r\n" in data
    assert b"BINARY[2] ~{%d}\r\n%s" % (len(BINARY_PART), BINARY_PART) in data
    mime = re.search(rb"BODY\[2\.MIME\] \{\d+\}\r\n(.*?)\r\n\r\n", data, re.S)
    assert mime is not None
    assert mime.group(1) == (
        b"Content-Type: image/png\r\nContent-Disposition: attachment\r\n"
        b"Content-Transfer-Encoding: base64"
    )
    assert b'("image" "png" NIL NIL NIL "base64" ' in data


async def test_append_of_a_plain_literal_with_nul_is_stored_fetchable(imap: RawIMAP) -> None:
    message = b"From: user@domain.org\r\nSubject: nul\r\n\r\nab\x00cd\r\n"
    reply = await imap.command(b"APPEND INBOX {%d+}\r\n%s" % (len(message), message))
    assert reply.ok, reply.text()
    await imap.command("NOOP")
    data = await fetch(imap, "BODY.PEEK[TEXT] BINARY.PEEK[1]", 2)
    assert b"\x00" not in data.split(b"BINARY[1]")[0]
    assert b"BINARY[1] ~{7}\r\nab\x00cd\r\n" in data


# --- the FETCH and APPEND grammar, fuzzed around BINARY and literal8 -----------------------

TOKENS = [b"1", b"*", b":", b"(", b")", b"[", b"]", b"<", b">", b".", b"0", b"10", b" ",
          b"BINARY", b"BINARY.PEEK", b"BINARY.SIZE", b"BODY.PEEK", b"HEADER", b"TEXT", b"MIME",
          b"~{3}\r\na\x00c", b"{3}\r\na\x00c", b"~{3+}\r\nabc", b"INBOX", b"(\\Seen)",
          b'"01-Jan-2026 10:00:00 +0000"']  # fmt: skip


@settings(max_examples=2000, deadline=1000)
@given(
    st.sampled_from([b"FETCH 1 ", b"UID FETCH 1 ", b"APPEND INBOX "]),
    st.lists(st.sampled_from(TOKENS), max_size=20),
)
def test_binary_items_and_literal8_never_crash_the_parser(
    start: bytes, tokens: list[bytes]
) -> None:
    """A BAD (CommandError) or a command, nothing else."""
    try:
        command = parse_command(b"t1 " + start + b"".join(tokens))
    except CommandError as error:
        message = str(error)
        assert message, "a BAD must carry a readable text"
    else:
        assert command.tag == "t1"


def test_binary_grammar() -> None:
    atts = parse_command(b"t FETCH 1 (BINARY.PEEK[1.2]<0.10> BINARY.SIZE[3] BINARY[])").args
    names = [(a.name, a.section.part if a.section else None, a.partial, a.peek)
             for a in atts["atts"]]  # fmt: skip
    assert names == [("BINARY", (1, 2), (0, 10), True), ("BINARY.SIZE", (3,), None, False),
                     ("BINARY", (), None, False)]  # fmt: skip
    for bad in (b"t FETCH 1 BINARY[1.TEXT]", b"t FETCH 1 BINARY.SIZE[1]<0.1>"):
        with pytest.raises(CommandError):
            parse_command(bad)
    [appended] = parse_command(b"t APPEND INBOX ~{3}\r\na\x00c").args["messages"]
    assert appended.binary and appended.parts == (b"a\x00c",)
