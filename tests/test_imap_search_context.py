"""Search contexts over a real IMAP session (RFC 5267 §4, CONTEXT=SEARCH and CONTEXT=SORT):
PARTIAL results, and the ADDTO / REMOVEFROM updates of a search made with UPDATE, whoever
changes the mailbox, until CANCELUPDATE or the mailbox is left."""

from __future__ import annotations

import pytest

from mss.testing.imapclient import RawIMAP

from .harness import PASSWORD, Running
from .test_imap_commands import USER, connect, selected, selected_session


@pytest.fixture
async def five(mss: Running) -> RawIMAP:
    """INBOX selected with five messages, subjects s1..s5, bodies of growing size."""
    await mss.add_pro(USER)
    client = await connect(mss)
    await client.login(USER, PASSWORD)
    for n in range(1, 6):
        raw = f"Subject: s{n}\r\n\r\n{'x' * (100 * (6 - n))}\r\n".encode()
        assert (await client.command(f"APPEND INBOX {{{len(raw)}+}}\r\n".encode() + raw)).ok
    return await selected(client)


def _esearch(lines: list[bytes]) -> list[str]:
    return [x.decode().rstrip("\r\n") for x in lines if x.startswith(b"* ESEARCH")]


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("SEARCH RETURN (PARTIAL 2:4) ALL", "PARTIAL (2:4 2:4)"),
        ("SEARCH RETURN (PARTIAL 4:2) ALL", "PARTIAL (2:4 2:4)"),  # either order
        ("SEARCH RETURN (PARTIAL 4:9) 1,3:5", "PARTIAL (4:9 5)"),
        ("SEARCH RETURN (PARTIAL 6:6) ALL", "PARTIAL (6:6 NIL)"),
        ("SEARCH RETURN (COUNT PARTIAL 1:2) 2:5", "COUNT 4 PARTIAL (1:2 2:3)"),
        ("UID SEARCH RETURN (PARTIAL 5:5) ALL", "UID PARTIAL (5:5 5)"),
        ("SORT RETURN (PARTIAL 1:3) (SIZE) UTF-8 ALL", "PARTIAL (1:3 5,4,3)"),
        ("SORT RETURN (PARTIAL 2:5) (REVERSE SUBJECT) UTF-8 ALL", "PARTIAL (2:5 4,3,2,1)"),
    ],
)
async def test_partial_answers_the_positions_asked(
    five: RawIMAP, command: str, expected: str
) -> None:
    reply = await five.command(command, tag="p")
    assert reply.ok, reply.text()
    assert _esearch(reply.lines) == [f'* ESEARCH (TAG "p") {expected}']


@pytest.mark.parametrize(
    "command",
    [
        "SEARCH RETURN (PARTIAL 1) ALL",
        "SEARCH RETURN (PARTIAL 0:3) ALL",
        "SEARCH RETURN (PARTIAL 1:*) ALL",
        "SEARCH RETURN (PARTIAL) ALL",
        "CANCELUPDATE",
        "CANCELUPDATE unquoted",
    ],
)
async def test_malformed_contexts_are_bad(five: RawIMAP, command: str) -> None:
    reply = await five.command(command)
    assert reply.status == "BAD" and b"b'" not in reply.tagged


async def test_update_tells_what_enters_and_leaves_the_result(mss: Running, five: RawIMAP) -> None:
    reply = await five.command("SEARCH RETURN (UPDATE ALL) SEEN", tag="u")
    assert _esearch(reply.lines) == ['* ESEARCH (TAG "u")']
    assert _esearch((await five.command("STORE 2,4 +FLAGS (\\Seen)")).lines) == [
        '* ESEARCH (TAG "u") ADDTO (0 2,4)'
    ]
    other = await selected_session(mss)  # another session's change, seen at the next command
    assert (await other.command("STORE 2 -FLAGS (\\Seen)")).ok
    assert _esearch((await five.command("NOOP")).lines) == ['* ESEARCH (TAG "u") REMOVEFROM (0 2)']
    raw = b"Subject: new\r\n\r\nx\r\n"
    appended = await other.command(b"APPEND INBOX (\\Seen) {%d+}\r\n" % len(raw) + raw)
    assert appended.ok
    assert _esearch((await five.command("NOOP")).lines) == ['* ESEARCH (TAG "u") ADDTO (0 6)']
    await other.close()


async def test_an_expunge_is_removed_from_the_result_before_the_expunge_responses(
    five: RawIMAP,
) -> None:
    await five.command("UID SEARCH RETURN (UPDATE) 3:5", tag="a")
    await five.command("SEARCH RETURN (UPDATE) 3:5", tag="b")
    reply = await five.command("STORE 4 +FLAGS.SILENT (\\Deleted)")
    assert _esearch(reply.lines) == []
    lines = (await five.command("EXPUNGE")).lines
    assert [x.decode().rstrip("\r\n") for x in lines] == [
        '* ESEARCH (TAG "a") UID REMOVEFROM (0 4)',
        '* ESEARCH (TAG "b") REMOVEFROM (0 4)',
        "* 4 EXPUNGE",
    ]


async def test_a_sorted_update_tells_positions(five: RawIMAP) -> None:
    await five.command("SORT RETURN (UPDATE) (REVERSE SUBJECT) UTF-8 UNSEEN", tag="s")
    lines = _esearch((await five.command("STORE 2,4 +FLAGS (\\Seen)")).lines)
    assert lines == ['* ESEARCH (TAG "s") REMOVEFROM (4 2)', '* ESEARCH (TAG "s") REMOVEFROM (2 4)']
    lines = _esearch((await five.command("STORE 4 -FLAGS (\\Seen)")).lines)
    assert lines == ['* ESEARCH (TAG "s") ADDTO (2 4)']


async def test_cancelupdate_and_leaving_the_mailbox_end_the_updates(five: RawIMAP) -> None:
    await five.command("SEARCH RETURN (UPDATE) SEEN", tag="c")
    await five.command("SEARCH RETURN (UPDATE) FLAGGED", tag="d")
    assert (await five.command('CANCELUPDATE "c"')).ok
    reply = await five.command("STORE 1 +FLAGS (\\Seen \\Flagged)")
    assert _esearch(reply.lines) == ['* ESEARCH (TAG "d") ADDTO (0 1)']
    assert (await five.command('CANCELUPDATE "c"')).status == "BAD"
    await selected(five)
    assert _esearch((await five.command("STORE 1 -FLAGS (\\Flagged)")).lines) == []


async def test_a_session_keeps_ten_updated_searches(five: RawIMAP) -> None:
    for n in range(10):
        assert (await five.command("SEARCH RETURN (UPDATE) SEEN", tag=f"k{n}")).ok
    reply = await five.command("SEARCH RETURN (UPDATE) SEEN", tag="k10")
    assert reply.ok and b'[NOUPDATE "k10"]' in reply.tagged


async def test_context_capabilities_are_offered(five: RawIMAP) -> None:
    caps = (await five.command("CAPABILITY")).lines[0].split()
    assert {b"CONTEXT=SEARCH", b"CONTEXT=SORT"} <= set(caps)
