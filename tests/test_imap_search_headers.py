"""SEARCH on what the header says (RFC 3501 §6.4.4), over a real IMAP session: the SENT*
keys read the Date: field's day in its own zone, BEFORE/ON/SINCE the internal date's
day (in UTC, as FETCH INTERNALDATE shows it), FROM/TO/CC/BCC the addresses with their
display names whatever the header's form; and the pure readers behind them."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mss.store.search_fields import address_text, sent_day
from mss.testing.imapclient import RawIMAP

from .harness import PASSWORD, Running
from .test_imap_commands import USER, connect, selected


def _message(headers: str) -> bytes:
    return headers.replace("\n", "\r\n").encode() + b"\r\n\r\nbody\r\n"


async def _append(imap: RawIMAP, raw: bytes, date: str = "1-Jan-2026 12:00:00 +0000") -> None:
    reply = await imap.command(f'APPEND INBOX "{date}" {{{len(raw)}+}}\r\n'.encode() + raw)
    assert reply.ok, reply.text()


async def _search(imap: RawIMAP, criteria: str) -> str:
    reply = await imap.command(f"SEARCH CHARSET UTF-8 {criteria}".encode())
    assert reply.ok, reply.text()
    (line,) = reply.untagged("SEARCH")
    return line.decode().removeprefix("* SEARCH").strip()


@pytest.fixture
async def session(mss: Running) -> RawIMAP:
    await mss.add_pro(USER)
    client = await connect(mss)
    await client.login(USER, PASSWORD)
    return client


# --- SENTBEFORE, SENTON, SENTSINCE: the Date: field's own day --------------------------------

SENT = [
    "Sat, 24 Mar 2007 23:00:00 +0200",  # 21:00 UTC on the 24th
    "Sun, 25 Mar 2007 00:30:00 +0200",  # 22:30 UTC on the 24th: sent on the 25th
    "Sun, 25 Mar 2007 23:00:00 -0500",  # 04:00 UTC on the 26th: sent on the 25th
    "26 Mar 2007 01:00 +1400",  # no weekday, no seconds
]


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        ("SENTON 24-Mar-2007", "1"),
        ("SENTON 25-Mar-2007", "2 3"),
        ("SENTON 26-Mar-2007", "4"),
        ("SENTBEFORE 25-Mar-2007", "1"),
        ("SENTBEFORE 26-Mar-2007", "1 2 3"),
        ("SENTSINCE 25-Mar-2007", "2 3 4"),
        ("SENTSINCE 27-Mar-2007", ""),
        ("NOT SENTON 25-Mar-2007", "1 4 5"),  # 5 has no Date: it was sent no day
        ("SENTON 25-Mar-2007 NOT SENTSINCE 26-Mar-2007", "2 3"),
        ("OR SENTON 24-Mar-2007 SENTON 26-Mar-2007", "1 4"),
    ],
)
async def test_sent_dates_compare_the_date_field_day_in_its_own_zone(
    session: RawIMAP, criteria: str, expected: str
) -> None:
    for date in SENT:
        await _append(session, _message(f"Date: {date}\nSubject: x"))
    await _append(session, _message("Subject: no date"))
    await selected(session)
    assert await _search(session, criteria) == expected


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        ("ON 24-Mar-2007", "1 2"),
        ("ON 25-Mar-2007", "3"),
        ("BEFORE 25-Mar-2007", "1 2"),
        ("SINCE 25-Mar-2007", "3"),
        ("NOT ON 24-Mar-2007", "3"),
    ],
)
async def test_internal_dates_compare_the_utc_day_that_fetch_shows(
    session: RawIMAP, criteria: str, expected: str
) -> None:
    await _append(session, _message("Subject: a"), "24-Mar-2007 08:00:00 +0000")
    await _append(session, _message("Subject: b"), "25-Mar-2007 01:00:00 +0200")  # 23:00 UTC
    await _append(session, _message("Subject: c"), "24-Mar-2007 23:00:00 -0200")  # 01:00 UTC
    await selected(session)
    internal = (await session.command("FETCH 2 INTERNALDATE")).text()
    assert '"24-Mar-2007 23:00:00 +0000"' in internal
    assert await _search(session, criteria) == expected


# --- FROM, TO, CC, BCC: addresses and display names -------------------------------------------

ADDRESSES = [
    "From: Jean Dupont <jean.dupont@pro.mssante.test>",
    "From: jean.dupont@pro.mssante.test (Jean Dupont)",  # the comment form
    "From: <jean.dupont (work) @ (comment) pro.mssante.test>",  # CFWS inside the addr-spec
    'From: "Dupont, Jean" <jd@pro.mssante.test>',
    "From: =?utf-8?q?=C3=89lodie_Durand?= <elodie@hopital.mssante.test>",
    "To: service: a@h.test, b@h.test;, c@h.test\nFrom: x@h.test",
    "To: vide:;\nFrom: x@h.test",
]


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        ("FROM jean.dupont@pro.mssante.test", "1 2 3"),
        ('FROM "jean dupont"', "1 2"),
        ("FROM DUPONT", "1 2 3 4"),
        ('FROM "dupont <jean.dupont@"', "1 2"),
        ('FROM "dupont, jean <jd@"', "4"),
        ("FROM work", ""),  # a comment inside the address is no name
        ("FROM élodie", "5"),  # RFC 2047 encoded words decoded
        ('FROM "elodie durand"', ""),
        ("TO service", "6"),
        ("TO b@h.test", "6"),
        ("TO vide", "7"),
        ('TO ""', "6 7"),
        ("NOT FROM dupont", "5 6 7"),
        ("OR TO vide FROM élodie", "5 7"),
    ],
)
async def test_address_keys_match_the_display_name_and_the_address(
    session: RawIMAP, criteria: str, expected: str
) -> None:
    for headers in ADDRESSES:
        await _append(session, _message(headers))
    await selected(session)
    assert await _search(session, criteria) == expected


# --- the pure readers -------------------------------------------------------------------------


def test_address_text_writes_every_form_as_name_and_address() -> None:
    assert address_text("a@b (Real Name)") == "Real Name <a@b>"
    assert address_text("<a (x) @ (y) b>") == "a@b"
    assert address_text("<@route,@r2:a@b>") == "a@b"
    assert address_text('"q \\" d" <a@b>, c@d') == 'q " d <a@b>, c@d'
    assert address_text("g: a@b, c@d;, e@f") == "g: a@b, c@d;, e@f"
    assert address_text("x@y ((nested) comment)") == "(nested) comment <x@y>"


def test_sent_day_is_the_fields_own_day() -> None:
    assert sent_day("Sat, 24 Mar 2007 23:00:00 +0200") == dt.date(2007, 3, 24)
    assert sent_day("Mon, 26 Mar 2007 00:00:00 -1100") == dt.date(2007, 3, 26)
    assert sent_day("not a date") is None
    assert sent_day("31 Feb 2007 00:00 +0000") is None


@given(st.text(max_size=80))
def test_the_readers_never_raise(value: str) -> None:
    assert isinstance(address_text(value), str)
    assert sent_day(value) is None or isinstance(sent_day(value), dt.date)
