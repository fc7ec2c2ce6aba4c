"""THREAD and UID THREAD over a real IMAP session (RFC 5256 §3 ORDEREDSUBJECT and
REFERENCES), and the REFERENCES steps on their own: the id table (duplicates, loops, the
last reference as parent), the dummies pruned, threads merged by base subject, siblings by
sent date."""

from __future__ import annotations

from typing import Any

import pytest

from mss.imap.thread import ordered_subject, references, thread_list
from mss.testing.imapclient import RawIMAP

from .harness import PASSWORD, Running
from .test_imap_commands import USER, connect, selected


def _record(uid: int, msgid: str | None = None, refs: str = "", **other: Any) -> dict[str, Any]:
    return {
        "uid": uid,
        "message_id": msgid and f"<{msgid}>",
        "refs": " ".join(f"<{r}>" for r in refs.split()),
        "in_reply_to": other.get("irt") and f"<{other['irt']}>",
        "subject": other.get("subject"),
        "sent_date": other.get("sent"),
        "internal_date": other.get("arrived", 1000),
    }


def _threads(records: list[dict[str, Any]], algorithm: Any = references) -> str:
    return thread_list(algorithm(records), lambda r: int(r["uid"]))


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        # 1C: a message's parent is its last reference; a link that loops is not made
        (
            [
                _record(1, "a", arrived=3),
                _record(2, "b", "a c", arrived=1),
                _record(3, "c", "b", arrived=2),
            ],
            "(3 2)(1)",
        ),
        ([_record(1, "a"), _record(2, "a")], "(1)(2)"),  # a duplicate id is another message
        ([_record(1, refs="a"), _record(2, refs="a")], "((1)(2))"),  # a dummy with 2 children
        ([_record(1, "x", irt="gone")], "(1)"),  # a dummy with one child is pruned
        (
            [
                _record(1, "1"),
                _record(2, "2", irt="1"),
                _record(3, "3", irt="1"),
                _record(4, "4", irt="2"),
            ],
            "(1 (2 4)(3))",
        ),
        ([_record(1, "x", "x")], "(1)"),  # referring to itself
        ([_record(1, "a", "b"), _record(2, "b", "a")], "(2 1)"),  # the first link stays
    ],
)
def test_references_links_by_message_ids(records: list[dict[str, Any]], expected: str) -> None:
    assert _threads(records) == expected


def test_references_merges_root_threads_of_one_base_subject() -> None:
    records = [
        _record(1, "a", subject="foo", arrived=1),
        _record(2, "b", "gone", subject="Re: foo", arrived=2),  # a reply joins the original
        _record(3, "c", subject="bar", arrived=3),
        _record(4, "d", subject="bar", arrived=4),  # two originals: a dummy holds both
        _record(5, "e", subject="", arrived=5),  # no subject, no merge
        _record(6, "f", subject="", arrived=6),
    ]
    assert _threads(records) == "(1 2)((3)(4))(5)(6)"


def test_references_sorts_siblings_by_sent_date_then_number() -> None:
    records = [
        _record(1, "p", arrived=1),
        _record(2, "x", "p", sent=30),
        _record(3, "y", "p", sent=20),
        _record(4, "z", "p", arrived=20),  # no Date: the internal date stands in
    ]
    assert _threads(records) == "(1 (3)(4)(2))"


def test_references_follows_a_chain_deeper_than_python_recursion() -> None:
    depth = 5000
    records = [_record(1, "m1")] + [
        _record(n, f"m{n}", irt=f"m{n - 1}") for n in range(2, depth + 1)
    ]
    assert _threads(records) == "(" + " ".join(str(n) for n in range(1, depth + 1)) + ")"


def test_ordered_subject_groups_by_base_subject_and_date() -> None:
    records = [
        _record(1, subject="a", sent=10),
        _record(2, subject="Re: b", sent=9),
        _record(3, subject="A", sent=8),
        _record(4, subject="b", sent=7),
        _record(5, subject="c", sent=11),
        _record(6, subject="[x] Re: b", sent=12),
    ]
    assert _threads(records, ordered_subject) == "(4 (2)(6))(3 1)(5)"


# --- over IMAP ---------------------------------------------------------------------------------


@pytest.fixture
async def conversation(mss: Running) -> RawIMAP:
    await mss.add_pro(USER)
    client = await connect(mss)
    await client.login(USER, PASSWORD)
    headers = [
        "Message-ID: <1@x>\nSubject: Bilan",
        "Message-ID: <2@x>\nIn-Reply-To: <1@x>\nSubject: Re: Bilan",
        "Message-ID: <3@x>\nSubject: Autre",
        "Message-ID: <4@x>\nReferences: <1@x> <2@x>\nSubject: Re: Re: Bilan",
    ]
    for n, lines in enumerate(headers):
        raw = (lines.replace("\n", "\r\n") + "\r\n\r\nbody\r\n").encode()
        date = f"22-Feb-2008 10:0{n}:00 +0000"
        reply = await client.command(f'APPEND INBOX "{date}" {{{len(raw)}+}}\r\n'.encode() + raw)
        assert reply.ok, reply.text()
    return await selected(client)


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("THREAD REFERENCES UTF-8 ALL", "(1 2 4)(3)"),
        ("THREAD ORDEREDSUBJECT UTF-8 ALL", "(1 (2)(4))(3)"),
        ("thread references us-ascii NOT 2", "(1 4)(3)"),
        ("UID THREAD REFERENCES UTF-8 SUBJECT autre", "(3)"),
        ("THREAD REFERENCES UTF-8 SUBJECT nothing", ""),
    ],
)
async def test_thread_answers_the_thread_list(
    conversation: RawIMAP, command: str, expected: str
) -> None:
    reply = await conversation.command(command)
    assert reply.ok, reply.text()
    assert reply.untagged("THREAD") == [f"* THREAD {expected}".rstrip().encode() + b"\r\n"]


async def test_uid_thread_answers_uids(conversation: RawIMAP) -> None:
    assert (await conversation.command("STORE 1 +FLAGS (\\Deleted)")).ok
    assert (await conversation.command("EXPUNGE")).ok
    reply = await conversation.command("UID THREAD REFERENCES UTF-8 ALL")
    assert reply.untagged("THREAD") == [b"* THREAD (2 4)(3)\r\n"]


@pytest.mark.parametrize(
    ("command", "status"),
    [
        ("THREAD SUBJECTS UTF-8 ALL", "BAD"),
        ("THREAD REFERENCES ALL", "BAD"),
        ("THREAD REFERENCES KOI8-R ALL", "NO"),
    ],
)
async def test_malformed_threads_are_refused(
    conversation: RawIMAP, command: str, status: str
) -> None:
    reply = await conversation.command(command)
    assert reply.status == status, reply.text()


async def test_thread_capabilities_are_offered(conversation: RawIMAP) -> None:
    caps = (await conversation.command("CAPABILITY")).lines[0].split()
    assert {b"THREAD=ORDEREDSUBJECT", b"THREAD=REFERENCES"} <= set(caps)
