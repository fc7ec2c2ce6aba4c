"""The stress tool's model catches what a wrong server would answer (it can fail)."""

from __future__ import annotations

import random

from bench.imapmodel import Shared, View, expected_header_fields
from bench.imapstress import Client, Options
from bench.imapwire import fetch_items, parse_values
from bench.mailsource import MailSource, generate
from mss.testing.imapclient import Reply


def _view() -> View:
    view = View(Shared(MailSource(generate(10))), 1, "test")
    view.apply(
        Reply([b"* FLAGS (\\Seen \\Deleted)\r\n", b"* 3 EXISTS\r\n"], b"t1 OK\r\n"), "SELECT"
    )
    return view


def _reply(*lines: bytes, status: bytes = b"OK") -> Reply:
    return Reply([line + b"\r\n" for line in lines], b"t1 " + status + b" done\r\n")


def test_a_correct_session_has_no_error() -> None:
    view = _view()
    view.apply(_reply(b"* 1 FETCH (UID 4 FLAGS (\\Seen))", b"* 2 FETCH (UID 7 FLAGS ())"),
               "FETCH 1:2 (UID FLAGS)")  # fmt: skip
    view.apply(_reply(b"* 2 EXPUNGE", b"* 2 EXISTS"), "EXPUNGE")
    assert view.shared.errors == []
    assert view.uids == [4, 0]


def test_message_count_going_down_is_an_error() -> None:
    view = _view()
    view.apply(_reply(b"* 2 EXISTS"), "NOOP")
    assert "message count dropped" in view.shared.errors[0]


def test_expunge_during_fetch_is_an_error() -> None:
    view = _view()
    view.apply(_reply(b"* 1 EXPUNGE"), "FETCH 1 (FLAGS)")
    assert "sent during FETCH" in view.shared.errors[0]


def test_keyword_not_announced_is_an_error() -> None:
    view = _view()
    view.apply(_reply(b"* 1 FETCH (FLAGS ($Label1))"), "FETCH 1 (FLAGS)")
    assert "used without being in FLAGS" in view.shared.errors[0]


def test_uid_changing_under_a_sequence_number_is_an_error() -> None:
    view = _view()
    view.apply(_reply(b"* 1 FETCH (UID 4)"), "FETCH 1 (UID)")
    view.apply(_reply(b"* 1 FETCH (UID 5)"), "FETCH 1 (UID)")
    assert "UID changed" in view.shared.errors[0]


def test_recent_in_two_sessions_is_an_error() -> None:
    first, second = _view(), _view()
    second.shared = first.shared
    second.session = 2
    first.apply(_reply(b"* 1 FETCH (UID 4 FLAGS (\\Recent))"), "FETCH 1 (UID FLAGS)")
    second.apply(_reply(b"* 1 FETCH (UID 4 FLAGS (\\Recent))"), "FETCH 1 (UID FLAGS)")
    assert "Recent in two sessions" in first.shared.errors[0]


def test_bad_answer_is_an_error() -> None:
    view = _view()
    view.apply(_reply(status=b"BAD"), "FETCH 1 (FLAGS)")
    assert "BAD" in view.shared.errors[0]


def test_section_other_than_appended_is_an_error() -> None:
    view = _view()
    source = view.shared.source
    message_id, raw = source.next()
    header = raw[: raw.index(b"\r\n\r\n") + 4]
    good = b"* 1 FETCH (UID 9 BODY[HEADER] {%d}\r\n%s)" % (len(header), header)
    view.apply(_reply(good), "FETCH 1 (UID BODY.PEEK[HEADER])")
    assert view.shared.errors == []
    assert view.shared.facts[9]["message-id"] == message_id
    view.apply(_reply(b"* 1 FETCH (UID 9 RFC822.SIZE 12)"), "FETCH 1 (UID RFC822.SIZE)")
    assert "but appended" in view.shared.errors[0]


def test_content_changing_for_a_uid_is_an_error() -> None:
    view = _view()
    view.apply(_reply(b'* 1 FETCH (UID 4 INTERNALDATE "22-Nov-2026 10:00:00 +0000")'), "FETCH")
    view.apply(_reply(b'* 1 FETCH (UID 4 INTERNALDATE "22-Nov-2026 11:00:00 +0000")'), "FETCH")
    assert "INTERNALDATE changed" in view.shared.errors[0]


def test_store_answer_without_the_flag_asked_is_an_error() -> None:
    view = _view()
    client = Client(0, Options(), view.shared, 0.0)
    command = "STORE 1 +FLAGS (\\Deleted)"
    reply = _reply(b"* 1 FETCH (FLAGS (\\Seen))")
    view.apply(reply, command)
    client._check_store(view, command, reply)
    assert "after STORE" in view.shared.errors[0]


def test_header_fields_are_the_matching_lines_in_order() -> None:
    raw = b"From: a\r\nTo: b,\r\n c\r\nSubject: s\r\nto: d\r\n\r\nbody\r\n"
    assert expected_header_fields(raw, ["TO"]) == b"To: b,\r\n c\r\nto: d\r\n\r\n"
    assert expected_header_fields(raw, ["Cc"]) == b"\r\n"


def test_wire_parser_reads_sections_literals_and_lists() -> None:
    data = b'(UID 3 BODY[HEADER.FIELDS (From To)] {5}\r\nab\r\n\r FLAGS (\\Seen) X "q\\"t")'
    items = fetch_items(parse_values(data)[0])
    assert items["BODY[HEADER.FIELDS (FROM TO)]"] == b"ab\r\n\r"
    assert items["FLAGS"] == [b"\\Seen"] and items["X"] == b'q"t' and items["UID"] == b"3"


def test_generated_mail_is_varied_and_parses() -> None:
    from mss.core.mime import parse_message

    source = MailSource(generate(20, seed=random.randrange(1000)))
    kinds = set()
    for _ in range(20):
        _, raw = source.next()
        parsed = parse_message(raw)
        kinds.add(f"{parsed.body.maintype}/{parsed.body.subtype}")
    assert {"text/plain", "multipart/alternative", "multipart/mixed"} <= kinds
