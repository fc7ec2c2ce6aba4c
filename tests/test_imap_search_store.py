"""The SQL of SEARCH on both databases (SQLite and PostgreSQL): the candidates that SQL
selects for the SENT* and address keys must hold every match that Python then confirms
(LIKE patterns, backslashes, the zone margin of the sent dates)."""

from __future__ import annotations

import datetime as dt

import pytest

from mss.imap.parsing.search import SearchKey
from mss.store.api import Store
from mss.store.imapstore import ImapStore
from mss.store.mailboxes import Target

from .test_store import new_inbox

MESSAGES = [
    "From: a\\b@x.test (Ann Back)\r\nDate: Sat, 24 Mar 2007 23:30:00 -1000\r\n",
    'From: "50% _off" <promo@x.test>\r\nDate: Sun, 25 Mar 2007 00:30:00 +1400\r\n',
    "From: <c (work) @ x.test>\r\n",
]


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (SearchKey("STRING", ("FROM", "ann back")), [1]),
        (SearchKey("STRING", ("FROM", "a\\b@x")), [1]),
        (SearchKey("STRING", ("FROM", "50% _off <promo@")), [2]),
        (SearchKey("STRING", ("FROM", "_off")), [2]),
        (SearchKey("STRING", ("FROM", "c@x.test")), [3]),
        (SearchKey("DATE", ("SENTON", dt.date(2007, 3, 24))), [1]),  # 09:30 UTC on the 25th
        (SearchKey("DATE", ("SENTON", dt.date(2007, 3, 25))), [2]),  # 10:30 UTC on the 24th
        (SearchKey("NOT", (SearchKey("DATE", ("SENTSINCE", dt.date(2007, 3, 25))),)), [1, 3]),
    ],
)
async def test_search_sql_keeps_every_match(
    store: Store, key: SearchKey, expected: list[int]
) -> None:
    box = await new_inbox(store, "jean@pro.mssante.test")
    for headers in MESSAGES:
        await store.deliver((headers + "\r\nbody\r\n").encode(), [Target(box)])
    found = await ImapStore(store).search(box, [key], [1, 2, 3])
    assert [uid for uid, _ in found.found] == expected


@pytest.mark.parametrize("charset", ["undefined", "idna", "punycode", "rot13", "x-inconnu"])
async def test_a_body_in_an_odd_charset_is_searched_never_a_crash(
    store: Store, charset: str
) -> None:
    """Any sender names the charset: one Python decodes no text with (`undefined`, `idna`,
    `punycode` raise even with errors="replace") made SEARCH BODY fail on the whole
    mailbox. The body is read as UTF-8 (else Latin-1) instead, as the patient space does."""
    box = await new_inbox(store, "jean@pro.mssante.test")
    odd = f"Content-Type: text/plain; charset={charset}\r\n\r\nRésultats normaux\r\n"
    await store.deliver(odd.encode(), [Target(box)])
    await store.deliver(b"\r\nautre chose\r\n", [Target(box)])
    found = await ImapStore(store).search(box, [SearchKey("STRING", ("BODY", "résultats"))], [1, 2])
    assert [uid for uid, _ in found.found] == [1]


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("base64", b"UsOpc3VsdGF0cyBub3JtYXV4IQ\r\n"),  # "Résultats normaux!", no padding
        ("base64", b"UsOpc3VsdGF0cyBub3JtYXV4IQ\r\nQ"),  # and a lone last character
        ("base64", b"UsOpc3VsdGF0cyBub3Jt\r\nYXV4IQ==\r\n--- signature ---\r\n"),  # junk after
        ("quoted-printable", b"R=C3=A9sultats =\r\nnormaux =ZZ\r\n"),  # a malformed escape
    ],
)
async def test_a_body_in_a_sloppy_transfer_encoding_is_searched_by_its_text(
    store: Store, encoding: str, body: bytes
) -> None:
    """Mailers leave base64 without its padding or with text after it, and quoted-printable
    with stray `=`. SEARCH finds the words the reader sees (the MIME decoder the patient
    space and FETCH BINARY use), not the encoded bytes."""
    box = await new_inbox(store, "jean@pro.mssante.test")
    head = f"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: {encoding}\r\n"
    await store.deliver(head.encode() + b"\r\n" + body, [Target(box)])
    await store.deliver(b"\r\nautre chose\r\n", [Target(box)])
    found = await ImapStore(store).search(box, [SearchKey("STRING", ("BODY", "résultats"))], [1, 2])
    assert [uid for uid, _ in found.found] == [1]
