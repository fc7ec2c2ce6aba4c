"""The extensions of issue 13 through a real client library, IMAPClient (imaplib
underneath), as a script writer would use them: THREAD, MULTIAPPEND, CONDSTORE and
QRESYNC (ENABLE, CHANGEDSINCE, VANISHED), IDLE after NOTIFY's capability check."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from imapclient import IMAPClient

from .harness import PASSWORD, Running
from .test_imap_commands import SIMPLE, USER, mailbox

__all__ = ["mailbox"]  # a fixture shared with test_imap_commands.py

T = TypeVar("T")


async def _with_client(mss: Running, work: Callable[[IMAPClient], T]) -> T:
    def session() -> T:
        client = IMAPClient("localhost", port=mss.ports["imaps"], ssl_context=mss.client_tls())
        try:
            client.login(USER, PASSWORD)
            return work(client)
        finally:
            client.logout()

    return await asyncio.to_thread(session)


REPLY = (b"From: a@pro.mssante.test\r\nMessage-ID: <r@x>\r\nIn-Reply-To: <simple@pro.mssante.test>"
         b"\r\nReferences: <simple@pro.mssante.test>\r\nSubject: Re: Compte rendu\r\n"
         b"Date: Tue, 24 Nov 2026 10:00:00 +0100\r\n\r\nMerci.\r\n")  # fmt: skip


async def test_imapclient_multiappend_then_thread(mailbox: Running) -> None:
    def work(client: IMAPClient) -> tuple[Any, ...]:
        capabilities = client.capabilities()
        appended = client.multiappend("INBOX", [REPLY, {"msg": SIMPLE.replace(b"<simple@", b"<x@"),
                                                         "flags": [b"\\Seen"]}])  # fmt: skip
        client.select_folder("INBOX")
        threads = client.thread("REFERENCES")
        subjects = client.thread("ORDEREDSUBJECT", ["SUBJECT", "compte"])
        return capabilities, appended, threads, subjects

    capabilities, appended, threads, subjects = await _with_client(mailbox, work)
    assert {b"MULTIAPPEND", b"THREAD=REFERENCES", b"QRESYNC", b"NOTIFY"} <= set(capabilities)
    assert appended[0] == "OK" and appended[1][0].startswith(b"[APPENDUID ")
    assert appended[1][0].endswith(b" 3:4] APPEND completed")
    # 4 has 1's subject without being a reply: both gathered under a dummy (RFC 5256 §4.5)
    assert threads == (((1, 3), (4,)), (2,))
    assert subjects == ((1, (4,), (3,)),)  # one subject: the first message, the others below


async def test_imapclient_condstore_and_qresync(mailbox: Running) -> None:
    def work(client: IMAPClient) -> tuple[Any, ...]:
        enabled = client.enable("QRESYNC")
        selected = client.select_folder("INBOX")
        modseq = selected[b"HIGHESTMODSEQ"]
        client.add_flags([1], [b"\\Flagged"])
        changed = client.fetch([1, 2], ["FLAGS"], modifiers=[f"CHANGEDSINCE {modseq}"])
        client.delete_messages([2])
        client.expunge()
        client._imap.untagged_responses.clear()
        vanished = client.fetch([1, 2], ["FLAGS"],
                                modifiers=[f"CHANGEDSINCE {modseq}", "VANISHED"])  # fmt: skip
        return enabled, changed, vanished, dict(client._imap.untagged_responses)

    enabled, changed, vanished, untagged = await _with_client(mailbox, work)
    assert enabled == [b"QRESYNC"]
    assert list(changed) == [1] and b"\\Flagged" in changed[1][b"FLAGS"]
    assert b"MODSEQ" in changed[1]
    assert 2 not in vanished and untagged.get("VANISHED") == [b"(EARLIER) 2"]
