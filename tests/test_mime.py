"""The MIME structure parser behind ENVELOPE, BODYSTRUCTURE and BODY[section]."""

from __future__ import annotations

import email
import json
from email import policy
from email.message import EmailMessage, Message
from email.mime.application import MIMEApplication
from email.mime.base import MIMEBase
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.parser import BytesParser
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mss.core.mime import (
    Part,
    leaves,
    parse_address_list,
    parse_message,
    split_multipart,
    with_prefix,
)

SIMPLE = (
    b'From: "Dr. Jean Dupont" <jean.dupont@pro.mssante.test>\r\n'
    b"To: 279035121518989@patient.mssante.fr\r\n"
    b"Subject: =?utf-8?q?Compte_rendu?=\r\n"
    b"Date: Sun, 22 Nov 2026 10:00:00 +0100\r\n"
    b"Message-ID: <abc@pro.mssante.test>\r\n"
    b"In-Reply-To: <prev@pro.mssante.test>\r\n"
    b"References: <first@pro.mssante.test>\r\n <prev@pro.mssante.test>\r\n"
    b"\r\n"
    b"Bonjour,\r\nvoici le compte rendu.\r\n"
)


def test_envelope_keeps_raw_strings_and_defaults_sender_to_from() -> None:
    parsed = parse_message(SIMPLE)
    env = parsed.envelope
    assert env.subject == "=?utf-8?q?Compte_rendu?="  # encoded words stay encoded
    assert env.from_ == [("Dr. Jean Dupont", None, "jean.dupont", "pro.mssante.test")]
    assert env.sender == env.from_
    assert env.reply_to == env.from_
    assert env.to == [(None, None, "279035121518989", "patient.mssante.fr")]
    assert env.cc is None
    assert env.message_id == "<abc@pro.mssante.test>"
    assert parsed.references == ["<first@pro.mssante.test>", "<prev@pro.mssante.test>"]
    assert parsed.in_reply_to == ["<prev@pro.mssante.test>"]


def test_text_body_defaults_to_us_ascii_and_counts_lines() -> None:
    body = parse_message(SIMPLE).body
    assert (body.maintype, body.subtype) == ("text", "plain")
    assert body.params == [("charset", "us-ascii")]
    assert body.lines == 2
    assert SIMPLE[body.body_start : body.body_end] == b"Bonjour,\r\nvoici le compte rendu.\r\n"


def test_address_groups_and_comments() -> None:
    parsed = parse_address_list(
        'Équipe: "Dupont, Jean" <jean@a.test>, marie@b.test (secrétariat);,'
        " undisclosed-recipients:;"
    )
    assert parsed == [
        (None, None, "Équipe", None),
        ("Dupont, Jean", None, "jean", "a.test"),
        ("secrétariat", None, "marie", "b.test"),  # a bare address is named by its comment
        (None, None, None, None),
        (None, None, "undisclosed-recipients", None),
        (None, None, None, None),
    ]


def test_source_route_is_kept() -> None:
    assert parse_address_list("<@relay.test:jean@a.test>") == [
        (None, "@relay.test", "jean", "a.test")
    ]


def test_boundary_that_prefixes_another_is_not_a_delimiter() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=ab\r\n\r\n--ab\r\n"
        b"Content-Type: multipart/alternative; boundary=abc\r\n\r\n"
        b"--abc\r\n\r\none\r\n--abc\r\n\r\ntwo\r\n--abc--\r\n--ab--\r\n"
    )
    body = parse_message(raw).body
    assert len(body.children) == 1
    inner = body.children[0]
    assert [raw[c.body_start : c.body_end] for c in inner.children] == [b"one", b"two"]


def test_missing_close_delimiter_ends_at_parent_end() -> None:
    raw = b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\nlast part\r\n"
    body = parse_message(raw).body
    assert [raw[c.body_start : c.body_end] for c in body.children] == [b"last part\r\n"]


def test_nested_message_rfc822_has_envelope_and_parts() -> None:
    inner = b"From: a@b.test\r\nSubject: inner\r\n\r\ninner body\r\n"
    raw = (
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n"
        b"Content-Type: message/rfc822\r\n\r\n" + inner + b"\r\n--x--\r\n"
    )
    part = parse_message(raw).body.children[0]
    assert part.is_message
    assert part.envelope is not None and part.envelope.subject == "inner"
    assert raw[part.body_start : part.body_end] == inner
    assert raw[part.children[0].body_start : part.children[0].body_end] == b"inner body\r\n"


def test_part_json_round_trip() -> None:
    raw = _build(
        MIMEMultipart(
            "mixed",
            _subparts=[
                MIMEText("é", "plain", "utf-8"),
                MIMEApplication(b"PK\x03\x04", Name="IHE_XDM.ZIP"),
            ],
        )
    )
    body = parse_message(raw).body
    assert Part.from_json(json.loads(json.dumps(body.to_json()))) == body


def test_content_disposition_and_params() -> None:
    raw = _build(MIMEMultipart("mixed", _subparts=[_attachment()]))
    part = parse_message(raw).body.children[0]
    assert part.disposition == ("attachment", [("filename", "IHE_XDM.ZIP")])
    assert part.encoding == "base64"


def test_lf_only_messages_are_parsed() -> None:
    raw = SIMPLE.replace(b"\r\n", b"\n")
    parsed = parse_message(raw)
    assert parsed.envelope.subject == "=?utf-8?q?Compte_rendu?="
    assert raw[parsed.body.body_start :].startswith(b"Bonjour")


def test_split_multipart_handles_preamble_and_epilogue() -> None:
    raw = b"preamble\r\n--b\r\nA\r\n--b\r\nB\r\n--b--\r\nepilogue"
    assert [raw[s:e] for s, e in split_multipart(raw, 0, len(raw), b"b")] == [b"A", b"B"]


# --- property tests against the standard library's parser -------------------------------


def _attachment() -> MIMEBase:
    part = MIMEApplication(b"PK\x03\x04 zip bytes", Name="IHE_XDM.ZIP")
    part.add_header("Content-Disposition", "attachment", filename="IHE_XDM.ZIP")
    return part


def _build(message: Message) -> bytes:
    message["Subject"] = "test"
    return message.as_bytes(policy=policy.SMTP)


texts = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=200
)
leaf_parts = st.one_of(
    st.builds(lambda t: MIMEText(t, "plain", "utf-8"), texts),
    st.builds(lambda t: MIMEText(t, "html", "utf-8"), texts),
    st.builds(lambda b: MIMEApplication(b, Name="doc.pdf"), st.binary(max_size=300)),
)
trees = st.recursive(
    leaf_parts,
    lambda children: st.one_of(
        st.builds(
            lambda parts, sub: MIMEMultipart(sub, _subparts=parts),
            st.lists(children, min_size=1, max_size=4),
            st.sampled_from(["mixed", "alternative", "related"]),
        ),
        st.builds(lambda inner: MIMEMessage(_with_subject(inner)), children),
    ),
    max_leaves=8,
)


def _with_subject(message: Message) -> Message:
    message["Subject"] = "inner"
    return message


def _compare(ours: Part, theirs: Message, raw: bytes) -> None:
    assert (ours.maintype, ours.subtype) == (
        theirs.get_content_maintype(),
        theirs.get_content_subtype(),
    )
    if theirs.is_multipart():
        payload = theirs.get_payload()
        assert isinstance(payload, list)
        if ours.is_message:
            assert len(ours.children) == 1 and len(payload) == 1
            _compare(ours.children[0], payload[0], raw)
            return
        assert len(ours.children) == len(payload)
        for child, other in zip(ours.children, payload, strict=True):
            _compare(child, other, raw)
    else:
        body = raw[ours.body_start : ours.body_end].decode("ascii")
        assert body == theirs.get_payload()


@settings(max_examples=150, deadline=None)
@given(trees)
def test_structure_matches_the_standard_library_parser(tree: Message) -> None:
    raw = _build(tree)
    parsed = parse_message(raw)
    assert parsed.complete  # ordinary mail is never taken for an ambiguous one
    theirs = email.message_from_bytes(raw, policy=policy.compat32)
    _compare(parsed.body, theirs, raw)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_parser_never_raises_on_garbage(raw: bytes) -> None:
    parsed = parse_message(raw)
    assert 0 <= parsed.body.body_start <= parsed.body.body_end == len(raw)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_address_list_parser_never_raises(text: str) -> None:
    result = parse_address_list(text)
    assert result is None or all(len(a) == 4 for a in result)


# --- one parse: the prefix put before a message, and its leaves ----------------------------

prefixes = st.lists(
    st.sampled_from(
        [
            b"Received: from client ([127.0.0.1])\r\n\tby mss; Sun, 6 Dec 2026 10:00:00 +0000\r\n",
            b"Authentication-Results: mss; dkim=pass header.d=pro.mssante.test\r\n",
            b"Message-ID: <added@mss.test>\r\n",
            b"Date: Sun, 6 Dec 2026 10:00:00 +0000\r\n",
        ]
    ),
    max_size=4,
).map(b"".join)


@settings(max_examples=150, deadline=None)
@given(trees, prefixes)
def test_a_prefix_moves_the_parse_without_parsing_again(tree: Message, prefix: bytes) -> None:
    raw = _build(tree)
    moved = with_prefix(parse_message(raw), prefix, raw)
    whole = parse_message(prefix + raw)
    assert moved.headers == whole.headers
    assert moved.envelope == whole.envelope
    assert moved.body.to_json() == whole.body.to_json()
    assert (moved.message_id, moved.references, moved.subject) == (
        whole.message_id, whole.references, whole.subject,
    )  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600), prefixes)
def test_a_prefix_before_garbage_parses_as_the_whole(raw: bytes, prefix: bytes) -> None:
    moved = with_prefix(parse_message(raw), prefix, raw)
    whole = parse_message(prefix + raw)
    assert moved.headers == whole.headers
    assert moved.body.to_json() == whole.body.to_json()


names = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")),
    min_size=1,
    max_size=40,
).filter(lambda n: n.strip() == n and '"' not in n and "\\" not in n)
files = st.builds(
    lambda data, name, kind: (data, name, kind),
    st.binary(max_size=400),
    names,
    st.sampled_from(["application/zip", "application/pdf", "text/xml", "image/png"]),
)


def _mail_with(attachments: list[tuple[bytes, str, str]], text: str) -> bytes:
    mail = EmailMessage(policy=policy.default)
    mail["Subject"] = "pièces jointes"
    mail.set_content(text)
    for data, name, kind in attachments:
        if kind == "text/xml":
            mail.add_attachment(data.decode("latin-1"), subtype="xml", filename=name,
                                cte="quoted-printable")  # fmt: skip
        else:
            maintype, subtype = kind.split("/")
            mail.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return mail.as_bytes()


@settings(max_examples=150, deadline=None)
@given(st.lists(files, max_size=4), texts)
def test_leaves_match_the_standard_library(attachments: list[Any], text: str) -> None:
    """Names (RFC 2231, 2047), types and decoded bytes as `email` reads them."""
    raw = _mail_with(attachments, text)
    theirs = BytesParser(policy=policy.default).parsebytes(raw)
    expected = [
        (i, p.get_content_type(), p.get_filename() or "", p.get_payload(decode=True))
        for i, p in enumerate(theirs.walk())
        if not p.is_multipart()
    ]
    ours = [
        (a.index, a.content_type, a.filename, a.payload(raw))
        for a in leaves(parse_message(raw).body)
    ]
    assert ours == expected


def test_a_name_split_by_rfc_2231_continuations_is_joined() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        b"Content-Type: application/zip\r\n"
        b"Content-Disposition: attachment; filename*0*=UTF-8''R%C3%A9sultats;\r\n"
        b" filename*1=_IHE_XDM.ZIP\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"UEsDBA\r\n--b--\r\n"
    )
    [leaf] = leaves(parse_message(raw).body)
    assert (leaf.filename, leaf.payload(raw)) == ("Résultats_IHE_XDM.ZIP", b"PK\x03\x04")
