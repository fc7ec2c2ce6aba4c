"""THREAD and UID THREAD over a real IMAP session (RFC 5256 §3 ORDEREDSUBJECT and
REFERENCES): search keys applied, numbers or UIDs, refusals; and a reply chain deeper than
Python's recursion. The algorithms on their own are tested in test_imap_thread.py."""

from __future__ import annotations

import pytest

from mss.imap.threads import Mail, references, render
from mss.testing.imapclient import RawIMAP

from .harness import PASSWORD, Running
from .test_imap_commands import USER, connect, selected


def test_references_follows_a_chain_deeper_than_python_recursion() -> None:
    """A reply chain 5000 deep is threaded and written (no RecursionError, no SERVERBUG)."""
    depth = 5000
    mails = [Mail(1, 1, 0, "s", False, "<m1>")] + [
        Mail(n, n, 0, "s", True, f"<m{n}>", (f"<m{n - 1}>",)) for n in range(2, depth + 1)
    ]
    assert render(references(mails)) == "(" + " ".join(map(str, range(1, depth + 1))) + ")"


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
