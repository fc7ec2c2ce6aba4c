"""The grammars of SEARCH, SORT and THREAD on their own (RFC 3501 §6.4.4, RFC 4731 RETURN,
RFC 5256 SORT and THREAD, RFC 5267 ESORT): cases, then fuzzing near the grammar (a BAD
with a readable text or a command, never a crash, never a Python repr)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mss.imap.parsing.commands import CommandError, parse_command


def test_search_return_options_in_any_case_and_order() -> None:
    args = parse_command(b"a search return (count Min) charset utf-8 ALL").args
    assert args["return"] == ("MIN", "COUNT") and args["charset"] == "UTF-8"
    assert parse_command(b"a SEARCH RETURN () 1:*").args["return"] == ("ALL",)
    assert parse_command(b"a UID SEARCH ALL").args["return"] is None


def test_search_with_an_unknown_charset_keeps_it_for_the_no() -> None:
    assert parse_command(b"a SEARCH CHARSET KOI8-R FROM x").args == {
        "return": None,
        "partial": None,
        "badcharset": "KOI8-R",
    }


def test_context_options_and_cancelupdate() -> None:
    args = parse_command(b"a SORT RETURN (update partial 9:3) (SIZE) UTF-8 ALL").args
    assert args["return"] == ("UPDATE", "PARTIAL") and args["partial"] == (3, 9)
    assert parse_command(b'a CANCELUPDATE "t1" "t2"').args == {"tags": ["t1", "t2"]}


def test_sort_criteria_reverse_applies_to_the_next_key() -> None:
    args = parse_command(b"a UID SORT RETURN (ALL) (reverse DATE subject) utf-8 1:*").args
    assert args["criteria"] == (("DATE", True), ("SUBJECT", False))
    assert args["return"] == ("ALL",) and args["charset"] == "UTF-8"
    assert parse_command(b"a SORT (DISPLAYFROM) US-ASCII ALL").args["return"] is None


def test_thread_algorithm_and_charset() -> None:
    args = parse_command(b"a UID THREAD references US-ASCII SUBJECT x").args
    assert args["algorithm"] == "REFERENCES" and args["charset"] == "US-ASCII"
    assert parse_command(b"a THREAD ORDEREDSUBJECT KOI8-R ALL").args["badcharset"] == "KOI8-R"


@pytest.mark.parametrize(
    "line",
    [
        b"a SORT (ARRIVAL) ALL",  # the charset is required
        b"a SORT (REVERSE REVERSE DATE) UTF-8 ALL",
        b"a SORT (DATE REVERSE) UTF-8 ALL",
        b"a SORT () UTF-8 ALL",
        b"a SORT (WEIGHT) UTF-8 ALL",
        b"a SORT RETURN (PARTIAL 1:*) (DATE) UTF-8 ALL",
        b"a SEARCH RETURN (PARTIAL 2) ALL",
        b"a SEARCH RETURN (PARTIAL 0:2) ALL",
        b"a CANCELUPDATE",
        b'a CANCELUPDATE "t1" t2',
        b"a THREAD UTF-8 ALL",
        b"a THREAD REFERENCES",
        b"a SEARCH RETURN (SAVE) ALL",  # SEARCHRES is not offered
        b"a SEARCH RETURN (MIN",
        b"a SEARCH RETURN ALL",
        b"a SEARCH RETURN (MIN)",
        b"a SEARCH CHARSET",
    ],
)
def test_malformed_search_commands_are_bad(line: bytes) -> None:
    with pytest.raises(CommandError) as error:
        parse_command(line)
    assert "b'" not in str(error.value)


COMMANDS = [b"SEARCH", b"UID SEARCH", b"SORT", b"UID SORT", b"THREAD", b"UID THREAD",
            b"CANCELUPDATE"]  # fmt: skip
TOKENS = [b"RETURN", b"(", b")", b"MIN", b"MAX", b"ALL", b"COUNT", b"SAVE", b"PARTIAL", b"UPDATE",
          b"1:5", b"0:1", b"4294967296:1", b'"t1"',
          b"CHARSET", b"UTF-8", b"US-ASCII", b"KOI8-R", b"REVERSE", b"ARRIVAL", b"DATE", b"SIZE",
          b"SUBJECT", b"FROM", b"TO", b"CC", b"DISPLAYFROM", b"ORDEREDSUBJECT", b"REFERENCES",
          b"NOT", b"OR", b"MODSEQ", b'"/flags/\\\\seen"', b"1", b"1:*", b"$", b"{1}\r\nx",
          b'"x"', b" ", b" ", b" "]  # fmt: skip


@settings(max_examples=3000, deadline=1000)
@given(st.sampled_from(COMMANDS), st.lists(st.sampled_from(TOKENS), max_size=20))
def test_near_miss_search_sort_thread_never_crash_the_parser(
    command: bytes, tokens: list[bytes]
) -> None:
    try:
        parsed = parse_command(b"t1 " + command + b" " + b"".join(tokens))
    except CommandError as error:
        message = str(error)
        assert message and "b'" not in message, "a BAD must carry a readable text"
    else:
        assert parsed.tag == "t1"
