"""FETCH ENVELOPE addresses (RFC 3501 §7.4.2, RFC 5322 §3.4 and §4.4): the comment form
`user@domain (Real Name)` carries its name, groups open and close, source routes and the
obsolete forms (spaced dots, empty list elements) are read as Dovecot reads them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mss.core.mime import parse_address_list
from mss.testing.imapclient import RawIMAP

from .harness import Running
from .test_imap_fetch_sections import selected_with

DATE = b"Date: Thu, 15 Feb 2007 01:02:03 +0200\r\n"
COMMENT = (
    DATE + b"From: user@domain (Real Name)\r\n"
    b"To: group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;\r\n"
    b"Cc: group:;, group2: (foo) ;\r\n"
    b"\r\nbody\r\n"
)
EMPTY_SENDER = DATE + b"From: user@domain (Real Name)\r\nSender: \r\nReply-To: \r\n\r\nbody\r\n"
OBSOLETE = (
    DATE + b"From: <@route1,@route2:user@domain>\r\n"
    b'To: john . doe @ example . org (John (the) Doe), , "Q. \\"P\\"" (x) <q@p.org>\r\n'
    b"Cc: (leading) a@b.org, c@d.org ()\r\n"
    b"\r\nbody\r\n"
)

DOMAINLESS = (
    DATE + b"From: root\r\n"
    b'To: <user-to (comment)@ (comment) domain.org>, "john doe"@x.org, <>\r\n'
    b"\r\nbody\r\n"
)


@pytest.fixture
async def imap(mss: Running) -> AsyncIterator[RawIMAP]:
    client = await selected_with(mss, COMMENT, EMPTY_SENDER, OBSOLETE, DOMAINLESS)
    yield client
    await client.close()


async def envelope(imap: RawIMAP, number: int) -> str:
    reply = await imap.command(f"FETCH {number} ENVELOPE")
    assert reply.ok, reply.text()
    return reply.text()


async def test_a_bare_address_is_named_by_its_comment(imap: RawIMAP) -> None:
    named = '(("Real Name" NIL "user" "domain"))'
    # From, and Sender and Reply-To that default to it (even when present but empty)
    for number in (1, 2):
        assert f"NIL {named} {named} {named} " in await envelope(imap, number)


async def test_groups_open_and_close(imap: RawIMAP) -> None:
    text = await envelope(imap, 1)
    assert (
        '((NIL NIL "group" NIL) (NIL NIL "g1" "d1.org") (NIL NIL "g2" "d2.org") '
        '(NIL NIL NIL NIL) (NIL NIL "group2" NIL) (NIL NIL "g3" "d3.org") (NIL NIL NIL NIL)) '
        '((NIL NIL "group" NIL) (NIL NIL NIL NIL) (NIL NIL "group2" NIL) (NIL NIL NIL NIL)) '
        "NIL NIL NIL))"
    ) in text


async def test_routes_and_obsolete_forms(imap: RawIMAP) -> None:
    text = await envelope(imap, 3)
    assert '((NIL "@route1,@route2" "user" "domain"))' in text
    assert '(("John (the) Doe" NIL "john.doe" "example.org") ("Q. \\"P\\"" NIL "q" "p.org"))' in (
        text
    )
    # a comment before the address does not name it, nor an empty one after it
    assert '((NIL NIL "a" "b.org") (NIL NIL "c" "d.org"))' in text


async def test_an_address_without_domain_is_no_group_marker(imap: RawIMAP) -> None:
    # RFC 3501 §7.4.2: a NIL host marks a group; Dovecot fills in MISSING_DOMAIN
    text = await envelope(imap, 4)
    assert '((NIL NIL "root" "MISSING_DOMAIN")) ' in text
    assert (
        '((NIL NIL "user-to" "domain.org") (NIL NIL "john doe" "x.org") '
        '(NIL NIL "MISSING_MAILBOX" "MISSING_DOMAIN"))'
    ) in text


def test_only_the_last_comment_of_an_addr_spec_names_it() -> None:
    assert parse_address_list("user(first)@domain (second)") == [("second", None, "user", "domain")]
    assert parse_address_list("Name (comment) <a@b>") == [("Name", None, "a", "b")]
    assert parse_address_list("a@b (x \\) y)") == [("x ) y", None, "a", "b")]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["a@b", " (c) ", "(", ")", '"q"', "<", ">", ",", ";", ":",
                                 "\\", "@", " ", "x.y", "g:"]), max_size=20))  # fmt: skip
def test_address_lists_near_the_grammar_never_raise(pieces: list[str]) -> None:
    result = parse_address_list("".join(pieces))
    assert result is None or all(len(a) == 4 for a in result)
    # filled, as in an ENVELOPE: only group markers have a NIL host, and they pair up
    markers = [a for a in parse_address_list("".join(pieces), fill=True) or [] if a[3] is None]
    opening = [a[2] is not None for a in markers]
    assert opening == [True, False] * (len(opening) // 2)
