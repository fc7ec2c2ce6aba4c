"""ESEARCH (RFC 4731) and SEARCH with CONDSTORE (RFC 7162 §3.1, §3.1.5) over a real IMAP
session: the RETURN options, their MODSEQ, and the HIGHESTMODSEQ that a CONDSTORE-enabling
FETCH or SEARCH tells about the selected mailbox."""

from __future__ import annotations

import re

import pytest

from mss.testing.imapclient import RawIMAP

from .harness import PASSWORD, Running
from .test_imap_commands import USER, connect, selected


@pytest.fixture
async def five(mss: Running) -> RawIMAP:
    """INBOX selected with five messages (UIDs 1, 2, 4, 5, 6 once 3 is expunged)."""
    await mss.add_pro(USER)
    client = await connect(mss)
    await client.login(USER, PASSWORD)
    for n in range(6):
        raw = f"Subject: {n}\r\n\r\nbody\r\n".encode()
        assert (await client.command(f"APPEND INBOX {{{len(raw)}+}}\r\n".encode() + raw)).ok
    await selected(client)
    assert (await client.command("UID STORE 3 +FLAGS (\\Deleted)")).ok
    assert (await client.command("EXPUNGE")).ok
    return client


def _esearch(reply_lines: list[bytes]) -> str:
    (line,) = [x for x in reply_lines if x.startswith(b"* ESEARCH")]
    return line.decode().rstrip("\r\n")


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("SEARCH RETURN (ALL) ALL", "ALL 1:5"),
        ("SEARCH RETURN () ALL", "ALL 1:5"),  # no option: ALL
        ("search return (min max) all", "MIN 1 MAX 5"),  # keywords in any case
        ("SEARCH RETURN (COUNT) 2:4", "COUNT 3"),
        ("SEARCH RETURN (MAX COUNT MIN) 2,4", "MIN 2 MAX 4 COUNT 2"),
        ("SEARCH RETURN (MIN MAX ALL COUNT) 1000", "COUNT 0"),
        ("SEARCH RETURN (MIN) 1000", ""),
        ("UID SEARCH RETURN (ALL) ALL", "UID ALL 1:2,4:6"),
        ("UID SEARCH RETURN (MIN MAX) 3:*", "UID MIN 4 MAX 6"),
        ("UID SEARCH RETURN () UID 3", "UID"),  # UID 3 was expunged
        ("SEARCH RETURN (COUNT) CHARSET utf-8 SUBJECT 4", "COUNT 1"),
    ],
)
async def test_esearch_returns_the_options_asked(
    five: RawIMAP, command: str, expected: str
) -> None:
    reply = await five.command(command, tag="e1")
    assert reply.ok, reply.text()
    assert _esearch(reply.lines) == f'* ESEARCH (TAG "e1") {expected}'.rstrip()
    assert not reply.untagged("SEARCH")


@pytest.mark.parametrize(
    "command",
    ["SEARCH RETURN (FIRST) ALL", "SEARCH RETURN (SAVE) ALL", "SEARCH RETURN ALL", "SEARCH RETURN"],
)
async def test_esearch_unknown_options_are_bad(five: RawIMAP, command: str) -> None:
    reply = await five.command(command)
    assert reply.status == "BAD" and b"b'" not in reply.tagged
    assert (await five.command("NOOP")).ok  # the session goes on


async def _modseqs(client: RawIMAP) -> dict[int, int]:
    """Message number -> modseq after setting \\Seen on 1, 3, 2, 4 in that order."""
    found = {}
    for n in (1, 3, 2, 4):
        text = (await client.command(f"STORE {n} +FLAGS (\\Seen)")).text()
        found[n] = int(re.search(r"MODSEQ \((\d+)\)", text).group(1))  # type: ignore[union-attr]
    return found


async def test_esearch_modseq_is_that_of_the_messages_returned(five: RawIMAP) -> None:
    assert (await five.command("FETCH 1 MODSEQ")).ok
    modseq = await _modseqs(five)
    expected = {
        "MIN": f"MIN 1 MODSEQ {modseq[1]}",
        "MAX": f"MAX 3 MODSEQ {modseq[3]}",
        "MIN MAX": f"MIN 1 MAX 3 MODSEQ {max(modseq[1], modseq[3])}",
        "ALL": f"ALL 1:3 MODSEQ {modseq[2]}",
        "COUNT": f"COUNT 3 MODSEQ {modseq[2]}",
    }
    for options, answer in expected.items():
        reply = await five.command(f"SEARCH RETURN ({options}) 1:3 MODSEQ 1", tag="m")
        assert _esearch(reply.lines) == f'* ESEARCH (TAG "m") {answer}'
    reply = await five.command(f"SEARCH RETURN (ALL) 1:3 MODSEQ {modseq[2] + 1}", tag="m")
    assert _esearch(reply.lines) == '* ESEARCH (TAG "m")'  # nothing returned: no MODSEQ
    entry = await five.command(f'SEARCH RETURN (ALL) 2:3 MODSEQ "/flags/\\\\seen" all {modseq[3]}')
    assert _esearch(entry.lines).endswith(f"ALL 2:3 MODSEQ {modseq[2]}")


@pytest.mark.parametrize("enabling", ["FETCH 1 (MODSEQ)", "SEARCH MODSEQ 1", "UID FETCH 1 MODSEQ"])
async def test_a_condstore_enabling_command_tells_the_highestmodseq_once(
    five: RawIMAP, enabling: str
) -> None:
    first = await five.command(enabling)
    highest = [x for x in first.lines if x.startswith(b"* OK [HIGHESTMODSEQ ")]
    assert len(highest) == 1, first.text()
    status = (await five.command("STATUS INBOX (HIGHESTMODSEQ)")).text()
    assert highest[0].split()[3].rstrip(b"]") in status.encode()
    again = await five.command(enabling)
    assert not [x for x in again.lines if b"HIGHESTMODSEQ" in x]


async def test_select_condstore_tells_the_highestmodseq_only_as_select_does(
    five: RawIMAP,
) -> None:
    reply = await five.command("SELECT INBOX (CONDSTORE)")
    assert len([x for x in reply.lines if b"[HIGHESTMODSEQ " in x]) == 1
    assert not [x for x in (await five.command("FETCH 1 MODSEQ")).lines if b"HIGHESTMODSEQ" in x]
