"""The IMAP parser on its own: grammar cases, property tests, fuzzing (no crash, no hang)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mss.imap.parsing.commands import CommandError, parse_command
from mss.imap.parsing.fetch import FetchAtt, Section
from mss.imap.parsing.tokens import Reader, SeqRange, literal_announcement
from mss.imap.parsing.utf7 import MailboxNameError, decode, encode


def test_literals_quoted_strings_and_atoms() -> None:
    cmd = parse_command(b'a1 LOGIN {4}\r\njean "p\\"ss\\\\word"')
    assert cmd.args == {"user": "jean", "password": 'p"ss\\word'}


def test_fetch_items_sections_and_partials() -> None:
    cmd = parse_command(b"a FETCH 1:3,7,* (UID BODY.PEEK[2.1.HEADER.FIELDS.NOT (Received)]<10.20>)")
    assert cmd.args["sequence"] == (SeqRange(1, 3), SeqRange(7, 7), SeqRange(None, None))
    att = cmd.args["atts"][1]
    assert att == FetchAtt(
        "BODY", Section((2, 1), "HEADER.FIELDS.NOT", ("RECEIVED",)), (10, 20), True
    )
    assert att.label() == "BODY[2.1.HEADER.FIELDS.NOT (RECEIVED)]<10>"


def test_uid_commands() -> None:
    assert parse_command(b"x UID MOVE 1:* Archive").name == "UID MOVE"
    assert parse_command(b"x uid expunge 4").args == {"sequence": (SeqRange(4, 4),)}


def test_dates() -> None:
    cmd = parse_command(b'x APPEND INBOX " 5-Jan-2026 08:00:00 -0500" {1}\r\nx')
    assert cmd.args["messages"][0].date == dt.datetime(2026, 1, 5, 13, 0, tzinfo=dt.UTC)
    assert parse_command(b'x SEARCH SINCE "1-Feb-2026"').args["keys"][0].args[1] == dt.date(
        2026, 2, 1
    )


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"tag",
        b"a FETCH",
        b"a FETCH 0 FLAGS",
        b"a FETCH 1 BODY[5.FOO]",
        b"a STORE 1 FOO x",
        b'a LOGIN "unterminated',
        b"a LOGIN {5}\r\nab",
        b"a SELECT INBOX (UNKNOWN)",
        b"a SEARCH OR A",
        b"a SEARCH SINCE 32-Jan-2026",
        b"a UID FOO 1",
        b"a LIST",
        b"a STATUS INBOX (BOGUS)",
        b"a FETCH 99999999999 FLAGS",
        b"a APPEND INBOX",
        b'a ID ("k")',
        b"a SEARCH " + b"(" * 60 + b"ALL",
        b'a LIST (IMAPTEST) "" ""',
        b'a LIST (RECURSIVEMATCH) "" %',
        b'a LIST "" % RETURN (BOGUS)',
    ],
)
def test_malformed_commands_are_command_errors(line: bytes) -> None:
    with pytest.raises(CommandError):
        parse_command(line)


@settings(max_examples=2000, deadline=1000)
@given(st.binary(max_size=300))
def test_garbage_never_crashes_the_parser(data: bytes) -> None:
    try:
        command = parse_command(data)
    except CommandError as error:
        message = str(error)
        assert message, "a BAD must carry a readable text"
    else:
        assert command.name


COMMAND_WORDS = [b"FETCH", b"SEARCH", b"STORE", b"UID", b"LIST", b"SELECT", b"APPEND", b"LOGIN",
                 b"STATUS", b"COPY", b"AUTHENTICATE", b"ID", b"ENABLE", b"LSUB",
                 b"NOTIFY", b"THREAD"]  # fmt: skip
TOKENS = [b"1", b"*", b":", b",", b"(", b")", b"[", b"]", b"<", b">", b".", b'"x"', b"{3}\r\nabc",
          b"BODY", b"HEADER.FIELDS", b"FLAGS", b"\\Seen", b"NOT", b"OR", b"ALL", b"INBOX",
          b" ", b"%", b'""', b"RETURN", b"return", b"SUBSCRIBED", b"RECURSIVEMATCH", b"REMOTE",
          b"CHILDREN", b"SPECIAL-USE", b"\xff", b"QRESYNC", b"VANISHED", b"CHANGEDSINCE",
          b"CONDSTORE", b"1:*", b"SET", b"NONE", b"STATUS", b"PERSONAL", b"SUBTREE",
          b"MessageNew", b"FlagChange", b"SELECTED", b"CATENATE", b"TEXT", b"URL",
          b'"/INBOX/;UID=1"', b"~{2}\r\nab", b"{0}\r\n", b"REFERENCES", b"UTF-8",
          b"US-ASCII"]  # fmt: skip


@settings(max_examples=3000, deadline=1000)
@given(st.sampled_from(COMMAND_WORDS), st.lists(st.sampled_from(TOKENS), max_size=25))
def test_near_miss_commands_never_crash_the_parser(word: bytes, tokens: list[bytes]) -> None:
    """Fuzzing close to the grammar: a BAD (CommandError) or a command, nothing else."""
    try:
        command = parse_command(b"t1 " + word + b" " + b"".join(tokens))
    except CommandError as error:
        message = str(error)
        assert message, "a BAD must carry a readable text"
        assert not re.search(r"(?<![A-Za-z0-9])b['\"]", message), "no Python repr in a BAD"
        assert message.isprintable()
    else:
        assert command.tag == "t1"


ranges = st.lists(st.tuples(st.integers(1, 10**6), st.integers(1, 10**6)), min_size=1, max_size=10)


@given(ranges)
def test_sequence_sets_round_trip(pairs: list[tuple[int, int]]) -> None:
    text = ",".join(f"{a}:{b}" if a != b else str(a) for a, b in pairs)
    parsed = Reader(text.encode()).sequence_set()
    assert parsed == tuple(SeqRange(a, b) for a, b in pairs)


@given(st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=40))
def test_modified_utf7_round_trip(name: str) -> None:
    encoded = encode(name)
    assert encoded.isascii()
    assert decode(encoded) == name


def test_modified_utf7_rejects_garbage() -> None:
    with pytest.raises(MailboxNameError):
        decode("&AB")
    with pytest.raises(MailboxNameError):
        decode("caf\u00e9")


def test_literal_announcements() -> None:
    assert literal_announcement(b"a APPEND x {12}") == (12, False, False)
    assert literal_announcement(b"a APPEND x ~{12+}") == (12, True, True)
    assert literal_announcement(b"a LOGIN {x}") is None
