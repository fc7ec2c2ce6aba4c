"""Content-Transfer-Encodings (RFC 2045 §6): quoted-printable and base64 undone as the RFC
says, unknown encodings refused for IMAP BINARY, binary parts re-encoded in base64."""

from __future__ import annotations

import base64
import binascii

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mss.core.mime import (
    UnknownEncoding,
    binary_as_base64,
    decode_body,
    decode_strict,
    leaves,
    parse_message,
)
from mss.core.mime.transfer import decode_base64, decode_quoted_printable


def test_quoted_printable_drops_transport_padding_and_joins_soft_breaks() -> None:
    # RFC 2045 §6.7 rule 3: trailing white space is deleted; rule 5: `=` ends a soft break
    assert decode_quoted_printable(b"hello  \r\nbar=\r\n\r\nfoo\t= \r\n=62\r\n") == (
        b"hello\r\nbar\r\nfoo\tb\r\n"
    )
    assert decode_quoted_printable(b"a=3d=3Db=\n") == b"a==b"  # lower-case hex, LF lines
    assert decode_quoted_printable(b"100% =ZZ =\r") == b"100% =ZZ "  # malformed `=` kept


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=500))
def test_quoted_printable_round_trips_binary(data: bytes) -> None:
    assert decode_quoted_printable(binascii.b2a_qp(data, istext=False)) == data


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(codec="latin-1", exclude_characters="\r\n"))))
def test_quoted_printable_round_trips_text_lines(lines: list[str]) -> None:
    text = "\r\n".join(lines).encode("latin-1")
    assert decode_quoted_printable(binascii.b2a_qp(text, istext=True)) == text


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=500), st.lists(st.sampled_from([b" ", b"\r\n", b"\t", b"!"])))
def test_base64_ignores_what_is_not_in_its_alphabet(data: bytes, noise: list[bytes]) -> None:
    encoded = bytearray(base64.encodebytes(data))
    for i, extra in enumerate(noise):
        encoded[i * 7 % (len(encoded) + 1) : i * 7 % (len(encoded) + 1)] = extra
    assert decode_base64(bytes(encoded)) == data


def test_base64_without_padding_or_joined_decodes() -> None:
    assert decode_base64(b"aGVsbG8") == b"hello"
    assert decode_base64(b"aGk=aGk=") == b"hihi"
    assert decode_base64(b"a") == b""


def test_binary_refuses_an_unknown_encoding_only() -> None:
    assert decode_strict(b"x\x00", "binary") == b"x\x00"
    assert decode_strict(b"aGk=", "base64") == b"hi" == decode_body(b"aGk=", "base64")
    with pytest.raises(UnknownEncoding):
        decode_strict(b"begin 644 x\r\n", "x-uuencode")
    assert decode_body(b"begin", "x-uuencode") == b"begin"


BOUNDARY = b"=_limite_0b6f"
binary_bodies = st.binary(min_size=1, max_size=300).filter(lambda b: BOUNDARY not in b)


def _message(parts: list[tuple[bool, bytes]]) -> bytes:
    body = b""
    for binary, data in parts:
        if binary:
            header = b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary"
        else:
            header = b"Content-Type: text/plain"
        body += b"--" + BOUNDARY + b"\r\n" + header + b"\r\n\r\n" + data + b"\r\n"
    return (
        b'From: a@b.test\r\nContent-Type: multipart/mixed; boundary="' + BOUNDARY + b'"\r\n\r\n'
        + body + b"--" + BOUNDARY + b"--\r\n"
    )  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), binary_bodies), min_size=1, max_size=4))
def test_binary_parts_become_base64_with_the_same_content(parts: list[tuple[bool, bytes]]) -> None:
    raw = _message(parts)
    converted = binary_as_base64(raw)
    before, after = leaves(parse_message(raw).body), leaves(parse_message(converted).body)
    assert [a.content_type for a in after] == [b.content_type for b in before]
    for old, new, (binary, _) in zip(before, after, parts, strict=True):
        assert new.payload(converted) == old.payload(raw)
        needs = binary or b"\x00" in old.payload(raw)
        assert new.encoding == ("base64" if needs else "7bit")
    assert b"\x00" not in converted


def test_a_message_without_binary_parts_is_unchanged() -> None:
    raw = _message([(False, b"plain text"), (False, b"more")])
    assert binary_as_base64(raw) is raw
    single = b"Content-Transfer-Encoding: binary\r\n\r\n\x00\x01"
    assert binary_as_base64(single) == b"Content-Transfer-Encoding: base64\r\n\r\nAAE=\r\n"
