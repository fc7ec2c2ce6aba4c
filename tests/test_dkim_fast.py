"""dkimpy's steps done faster (security/dkim_fast.py) answer exactly as dkimpy's own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dkim
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mss.security import dkim_fast
from mss.security.dkim import ensure_keys, public_record, verify_all

dkim_fast.install()
ORIGINAL_PARSE = dkim_fast._ORIGINAL["rfc822_parse"]
ORIGINAL_LOAD = dkim_fast._ORIGINAL["load_pk_from_dns"]
ORIGINAL_RELAXED = dkim_fast._ORIGINAL["relaxed_headers"]


def _outcome(parse: Any, message: bytes) -> Any:
    try:
        return ("ok", parse(message))
    except Exception as exc:  # the same exception, with the same text
        return (type(exc), str(exc))


SHAPES = {
    "plain": b"From: a@b.fr\r\nTo: c@d.fr\r\nSubject: x\r\n\r\nbody\r\nline 2\r\n",
    "folded": b"Subject: un\r\n deux\r\n\ttrois\r\nTo: c@d.fr\r\n\r\nbody\r\n",
    "mbox From line": b"From a@b.fr Mon Dec  7\r\nTo: c@d.fr\r\n\r\nbody\r\n",
    "bare LF in the body": b"To: c@d.fr\r\n\r\nbody\nline\r\n",
    "bare LF in the header": b"To: c@d.fr\nFrom: a@b.fr\r\n\r\nbody\r\n",
    "LF only": b"To: c@d.fr\nFrom: a@b.fr\n\nbody\n",
    "bare CR": b"To: c@\rd.fr\r\n\r\nbo\rdy\r\n",
    "no blank line": b"To: c@d.fr\r\nFrom: a@b.fr\r\n",
    "no blank line, no end": b"To: c@d.fr",
    "empty header": b"\r\nbody\r\n",
    "empty": b"",
    "header only": b"To: c@d.fr\r\n\r\n",
    "blank lines in the body": b"To: c@d.fr\r\n\r\n\r\n\r\nbody\r\n\r\n\r\n",
    "continuation first": b" folded\r\nTo: c@d.fr\r\n\r\nbody\r\n",
    "no colon": b"To: c@d.fr\r\nnot a field\r\n\r\nbody\r\n",
    "space before colon": b"To : c@d.fr\r\n\r\nbody\r\n",
    "8 bit": "Subject: éàü\r\n\r\ncorps é\r\n".encode(),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_the_header_parse_answers_as_dkimpy(shape: str) -> None:
    message = SHAPES[shape]
    assert _outcome(dkim_fast.rfc822_parse, message) == _outcome(ORIGINAL_PARSE, message)


PIECES = [b"To", b": ", b"x", b"\r\n", b"\n", b"\r", b" ", b"\t", b"From ", b"\xc3\xa9", b"="]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=30).map(b"".join))
def test_the_header_parse_answers_as_dkimpy_on_any_bytes(message: bytes) -> None:
    assert _outcome(dkim_fast.rfc822_parse, message) == _outcome(ORIGINAL_PARSE, message)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(
    st.sampled_from([b"Subject", b"TO", b"x-Y ", b"From\t"]),
    st.lists(st.sampled_from([b"a", b" ", b"\t", b"\r\n", b"\n", b"\r", b"\x0b", b"\xc3\xa9"]),
             max_size=12).map(b"".join),
), max_size=5))  # fmt: skip
def test_the_relaxed_header_canonicalisation_answers_as_dkimpy(
    fields: list[tuple[bytes, bytes]],
) -> None:
    headers = [[name, value] for name, value in fields]
    assert dkim_fast.relaxed_headers(headers) == ORIGINAL_RELAXED(headers)


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    folder: Path = tmp_path_factory.mktemp("dkim")
    key = ensure_keys(folder, "peer.test", "sel", "sel-ed")[0]
    return key.private_key(), public_record(key).encode()


def test_the_key_record_is_asked_every_time_and_parsed_again_when_it_changes(
    signer: tuple[bytes, bytes],
) -> None:
    _secret, record = signer
    asked: list[bytes] = []
    records = {b"sel._domainkey.peer.test.": record}

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        asked.append(name)
        return records.get(name)

    name = b"sel._domainkey.peer.test."
    first = dkim_fast.load_pk_from_dns(name, lookup)
    assert first == ORIGINAL_LOAD(name, lookup)
    assert dkim_fast.load_pk_from_dns(name, lookup) == first
    assert len(asked) == 3  # asked each time, not kept
    records[name] = b"v=DKIM1; k=rsa; p=" + b"A" * 20
    with pytest.raises(dkim.KeyFormatError):
        dkim_fast.load_pk_from_dns(name, lookup)  # the new record, parsed (and refused)
    with pytest.raises(dkim.KeyFormatError):
        dkim_fast.load_pk_from_dns(b"unknown._domainkey.peer.test.", lookup)


@pytest.mark.parametrize("canonicalize", [(b"relaxed", b"simple"), (b"relaxed", b"relaxed"),
                                          (b"simple", b"simple")])  # fmt: skip
def test_signed_messages_verify_and_tampered_ones_do_not(
    signer: tuple[bytes, bytes], canonicalize: tuple[bytes, bytes]
) -> None:
    secret, record = signer
    message = (b"From: Dr A <a@peer.test>\r\nTo: p@patient.mssante.fr\r\nSubject: Compte\r\n"
               b" rendu\r\n\r\nLigne 1  \r\n\r\n")  # fmt: skip
    signed = dkim.sign(message, b"sel", b"peer.test", secret, canonicalize=canonicalize,
                       include_headers=[b"from", b"to", b"subject"]) + message  # fmt: skip

    def lookup(name: bytes, timeout: int = 5) -> bytes:
        return record

    assert [r.result for r in verify_all(signed, lookup)] == ["pass"]
    tampered = signed.replace(b"Subject: Compte", b"Subject: Comptes")
    assert [r.result for r in verify_all(tampered, lookup)] == ["fail"]
    body_changed = signed.replace(b"Ligne 1", b"Ligne 2")
    assert [r.result for r in verify_all(body_changed, lookup)] == ["fail"]
