"""SORT, UID SORT and ESORT over a real IMAP session (RFC 5256 §3, RFC 5957 SORT=DISPLAY,
RFC 5267 ESORT ESORT), and the base subject they compare (RFC 5256 §2.1)."""

from __future__ import annotations

import pytest

from mss.imap.subjects import base_subject
from mss.testing.imapclient import RawIMAP

from .harness import PASSWORD, Running
from .test_imap_commands import USER, connect, selected

# (internal date, header lines): the numbers below are these messages' order
MESSAGES = [
    ("22-Feb-2008 10:00:00 +0000", "Subject: Re: [liste] beta\nFrom: Zoé <b@x.test>\nTo: c@x.test"),
    ("22-Feb-2008 09:00:00 +0000", "Subject: alpha\nFrom: a@x.test (Yann)\nCc: a@x.test"),
    ("22-Feb-2008 10:00:00 +0000", "Subject: Fwd: Alpha (fwd)\nFrom: c@x.test\nTo: a@x.test"),
    (
        "22-Feb-2008 08:00:00 +0000",
        "Subject: [fwd: gamma]\nFrom: Bob <b@y.test>\nDate: Sat, 23 Feb 2008 00:30:00 +0200",
    ),
]


BODY_SIZES = [200, 100, 400, 300]  # the size decides over the header's length


@pytest.fixture
async def sorting(mss: Running) -> RawIMAP:
    await mss.add_pro(USER)
    client = await connect(mss)
    await client.login(USER, PASSWORD)
    for n, (date, headers) in enumerate(MESSAGES):
        raw = (headers.replace("\n", "\r\n") + "\r\n\r\n" + "x" * BODY_SIZES[n]).encode()
        reply = await client.command(f'APPEND INBOX "{date}" {{{len(raw)}+}}\r\n'.encode() + raw)
        assert reply.ok, reply.text()
    return await selected(client)


async def _sort(client: RawIMAP, arguments: str) -> str:
    reply = await client.command(f"SORT {arguments}")
    assert reply.ok, reply.text()
    (line,) = reply.untagged("SORT")
    return line.decode().removeprefix("* SORT").strip()


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        ("ARRIVAL", "4 2 1 3"),
        ("REVERSE ARRIVAL", "1 3 2 4"),  # equal keys stay in message number order
        ("DATE", "2 1 3 4"),  # 4 was sent at 22:30 UTC, after it arrived
        ("SIZE", "2 1 4 3"),
        ("REVERSE SIZE ARRIVAL", "3 4 1 2"),
        ("SUBJECT", "2 3 1 4"),  # alpha, alpha, beta, gamma (base subjects)
        ("SUBJECT REVERSE ARRIVAL", "3 2 1 4"),
        ("FROM", "2 1 4 3"),  # the local part: a, b, b, c
        ("TO", "2 4 3 1"),  # no To: sorts first
        ("CC", "1 3 4 2"),
        ("DISPLAYFROM", "4 3 2 1"),  # bob, c@x.test, yann, zoé
        ("REVERSE DISPLAYFROM", "1 2 3 4"),
    ],
)
async def test_sort_orders_by_each_key_ties_by_number(
    sorting: RawIMAP, criteria: str, expected: str
) -> None:
    assert await _sort(sorting, f"({criteria}) UTF-8 ALL") == expected


async def test_sort_applies_the_search_keys_and_uid_sort_answers_uids(sorting: RawIMAP) -> None:
    assert await _sort(sorting, "(ARRIVAL) US-ASCII NOT FROM b@") == "2 3"
    assert (await sorting.command("STORE 1 +FLAGS (\\Deleted)")).ok
    assert (await sorting.command("EXPUNGE")).ok
    reply = await sorting.command("UID SORT (SUBJECT) us-ascii ALL")
    assert reply.untagged("SORT") == [b"* SORT 2 3 4\r\n"]


async def test_esort_answers_esearch_in_sort_order(sorting: RawIMAP) -> None:
    reply = await sorting.command(
        "SORT RETURN (MIN MAX COUNT ALL) (REVERSE SIZE) UTF-8 ALL", tag="s"
    )
    assert reply.lines == [b'* ESEARCH (TAG "s") MIN 3 MAX 2 ALL 3:4,1:2 COUNT 4\r\n']
    reply = await sorting.command("UID SORT RETURN () (ARRIVAL) UTF-8 UID 1:3", tag="u")
    assert reply.lines == [b'* ESEARCH (TAG "u") UID ALL 2,1,3\r\n']
    reply = await sorting.command("SORT RETURN (COUNT) (DATE) UTF-8 SUBJECT nothing", tag="c")
    assert reply.lines == [b'* ESEARCH (TAG "c") COUNT 0\r\n']


async def test_sort_with_modseq_tells_the_highest(sorting: RawIMAP) -> None:
    reply = await sorting.command("SORT (ARRIVAL) UTF-8 MODSEQ 1")
    assert reply.ok
    (line,) = reply.untagged("SORT")
    assert line.startswith(b"* SORT 4 2 1 3 (MODSEQ ")


@pytest.mark.parametrize(
    ("command", "status"),
    [
        ("SORT (ARRIVAL) KOI8-R ALL", "NO"),  # [BADCHARSET]
        ("SORT (COLOR) UTF-8 ALL", "BAD"),
        ("SORT (REVERSE) UTF-8 ALL", "BAD"),
        ("SORT () UTF-8 ALL", "BAD"),
        ("SORT ARRIVAL UTF-8 ALL", "BAD"),
        ("SORT (ARRIVAL) ALL", "BAD"),  # the charset is not optional
        ("SORT RETURN (SAVE) (ARRIVAL) UTF-8 ALL", "BAD"),
    ],
)
async def test_malformed_sorts_are_refused(sorting: RawIMAP, command: str, status: str) -> None:
    reply = await sorting.command(command)
    assert reply.status == status, reply.text()
    assert b"b'" not in reply.tagged


async def test_sort_capabilities_are_offered(sorting: RawIMAP) -> None:
    caps = (await sorting.command("CAPABILITY")).lines[0].split()
    assert {b"SORT", b"SORT=DISPLAY", b"ESORT"} <= set(caps)


@pytest.mark.parametrize(
    ("subject", "base", "reply"),
    [
        ("Re: hello", "hello", True),
        ("  hello   world  ", "hello world", False),  # step 1
        ("hello (fwd) (FWD)", "hello", True),  # step 2
        ("[list] Re: [x] Fwd: fw: hello", "hello", True),  # step 3
        ("Re [2]: hello", "hello", True),
        ("[list] hello", "hello", False),  # step 4
        ("[list]", "[list]", False),  # a blob that is everything stays
        ("[Fwd: Re: hello]", "hello", True),  # step 6, then again from step 2
        ("re: [fwd: [fwd: re: [fwd: babylon]]]", "babylon", True),
        ("Ad: Re: x", "Ad: Re: x", False),
        ("Réponse: x", "Réponse: x", False),
        ("", "", False),
    ],
)
def test_base_subject_of_rfc_5256(subject: str, base: str, reply: bool) -> None:
    assert base_subject(subject) == (base, reply)
