"""A real client over the search extensions: Python's imaplib asks SORT, UID SORT, THREAD
(its `sort` and `thread` methods), ESEARCH and an ESORT, and reads the answers."""

from __future__ import annotations

import asyncio
import imaplib

from .harness import PASSWORD, Running
from .test_imap_commands import USER, deliver

MESSAGES = [
    b"Message-ID: <1@x>\r\nSubject: Bilan\r\nFrom: b@x.test\r\n\r\nun\r\n",
    b"Message-ID: <2@x>\r\nIn-Reply-To: <1@x>\r\nSubject: Re: Bilan\r\nFrom: a@x.test\r\n\r\nd\r\n",
    b"Message-ID: <3@x>\r\nSubject: Autre\r\nFrom: c@x.test\r\n\r\ntrois\r\n",
]


async def test_imaplib_sorts_threads_and_reads_esearch(mss: Running) -> None:
    await mss.add_pro(USER)
    for raw in MESSAGES:
        await deliver(mss, raw)

    def session() -> dict[str, object]:
        client = imaplib.IMAP4_SSL("localhost", mss.ports["imaps"], ssl_context=mss.client_tls())
        client.login(USER, PASSWORD)
        client.select("INBOX")
        out: dict[str, object] = {
            "sort": client.sort("(SUBJECT REVERSE FROM)", "UTF-8", "ALL"),
            "uid sort": client.uid("SORT", "(FROM)", "UTF-8", "ALL"),
            "thread": client.thread("REFERENCES", "UTF-8", "ALL"),
            "ordered": client.thread("ORDEREDSUBJECT", "UTF-8", "ALL"),
        }
        typ, data = client._simple_command("SEARCH", "RETURN", "(MIN MAX COUNT)", "ALL")
        out["esearch"] = client._untagged_response(typ, data, "ESEARCH")
        typ, data = client._simple_command("SORT", "RETURN", "(ALL)", "(FROM)", "UTF-8", "ALL")
        out["esort"] = client._untagged_response(typ, data, "ESEARCH")
        client.logout()
        return out

    out = await asyncio.to_thread(session)
    assert out["sort"] == ("OK", [b"3 1 2"])  # Autre, then Bilan: b@ before a@ (REVERSE FROM)
    assert out["uid sort"] == ("OK", [b"2 1 3"])
    assert out["thread"] == ("OK", [b"(1 2)(3)"])
    assert out["ordered"] == ("OK", [b"(1 2)(3)"])
    assert out["esearch"][1][0].endswith(b"MIN 1 MAX 3 COUNT 3")  # type: ignore[index]
    assert out["esort"][1][0].endswith(b"ALL 2,1,3")  # type: ignore[index]
