"""The pure checks of a request's target (`security.http_target`), by property: any
bytes are judged without an exception; UTF-8 text without NUL, percent-encoded as a
client does, always passes; raw bytes over 0x7F in a request line become escapes that
decode back to the same bytes, and nothing else changes."""

from __future__ import annotations

from urllib.parse import quote, unquote_to_bytes

from hypothesis import given
from hypothesis import strategies as st

from mss.security.http_target import HAS_NUL, NOT_UTF8, encode_raw_target, target_problem


@given(st.binary(max_size=200), st.binary(max_size=200))
def test_any_target_is_judged_without_an_exception(path: bytes, query: bytes) -> None:
    problem = target_problem({"raw_path": b"/" + path, "query_string": query})
    assert problem in (None, NOT_UTF8, HAS_NUL)


@given(st.text(max_size=100).filter(lambda t: "\x00" not in t))
def test_utf8_text_without_nul_passes(text: str) -> None:
    encoded = quote(text, safe="").encode()
    assert (
        target_problem({"raw_path": b"/fhir/v2/" + encoded, "query_string": b"name=" + encoded})
        is None
    )


@given(st.binary(max_size=200))
def test_raw_bytes_become_escapes_of_themselves(line: bytes) -> None:
    encoded = encode_raw_target(line)
    assert encoded.isascii()
    if b"%" not in line:
        assert unquote_to_bytes(encoded) == line


def test_latin1_and_nul_are_refused_utf8_is_not() -> None:
    assert target_problem({"raw_path": b"/x", "query_string": b"name=H%E9l%E8ne"}) == NOT_UTF8
    assert target_problem({"raw_path": b"/x%00", "query_string": b""}) == HAS_NUL
    assert target_problem({"raw_path": b"/x", "query_string": b"name=H%C3%A9l%C3%A8ne"}) is None
