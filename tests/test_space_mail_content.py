"""What the messagerie makes of a message's parts, without a server: HTML sanitised so that
nothing runs or fetches, types read from the bytes, file names safe in a header."""

from __future__ import annotations

import pytest

from mss.core.mime import parse_message
from mss.core.mime.headers import param
from mss.space.errors import SpaceError
from mss.space.mail import FileInfo
from mss.space.mail_content import (
    GIF,
    JPEG,
    PDF,
    PNG,
    RTF,
    TEXT,
    TIFF,
    content,
    disposition,
    safe_filename,
    sanitise,
    sniff,
)
from mss.space.mail_send import Upload, check_file, one_line

from .space_mail import PDF_BYTES, PNG_BYTES


@pytest.mark.parametrize(
    "crafted",
    [
        "<script>alert(1)</script>",
        '<img src="x" onerror="alert(1)">',
        '<a href="javascript:alert(1)">x</a>',
        '<a href=" JaVaScRiPt:alert(1)">x</a>',
        '<img src="https://tracker.example/p.gif">',
        '<img srcset="https://tracker.example/p.gif 1x">',
        '<svg><image href="https://tracker.example/p.gif" /></svg>',
        '<body background="https://tracker.example/bg.png">',
        '<form action="https://evil.example"><input formaction="https://evil.example"></form>',
        '<iframe src="https://evil.example"></iframe>',
        '<object data="https://evil.example/x.swf"></object>',
        '<meta http-equiv="refresh" content="0;url=https://evil.example">',
        '<link rel="stylesheet" href="https://evil.example/s.css">',
        "<style>@import url(https://evil.example/s.css)</style>",
        '<div style="background:url(https://evil.example/bg)">x</div>',
        '<a href="data:text/html,<script>alert(1)</script>">x</a>',
    ],
)
def test_sanitised_html_keeps_nothing_that_runs_or_fetches(crafted: str) -> None:
    cleaned = sanitise(crafted).lower()
    for gone in ("script", "javascript", "onerror", "tracker.example", "evil.example"):
        assert gone not in cleaned, cleaned


def test_sanitised_html_keeps_text_links_and_inline_images() -> None:
    cleaned = sanitise('<p>Bonjour <a href="https://ameli.fr">ameli</a>'
                       '<img src="data:image/png;base64,iVBORw0KGgo=" alt="logo"></p>')  # fmt: skip
    assert 'href="https://ameli.fr"' in cleaned and 'src="data:image/png;base64,' in cleaned
    assert "Bonjour" in cleaned


def test_types_are_read_from_the_bytes() -> None:
    assert sniff(PDF_BYTES) == PDF and sniff(PNG_BYTES) == PNG
    assert sniff(b"II*\x00rest") == TIFF and sniff("Bonjour, été".encode()) == TEXT
    assert sniff(b"MZ\x90\x00") is None and sniff(b"\x00\x01binary") is None


def test_file_names_are_safe_in_a_header() -> None:
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename('a"b\r\nContent-Type: x;.pdf') == "a_b_Content-Type_ x_.pdf"
    assert safe_filename("...") == "piece-jointe"
    header = disposition("attachment", "compte rendu é.pdf")
    assert header == (
        "attachment; filename=\"compte rendu _.pdf\"; filename*=UTF-8''compte%20rendu%20%C3%A9.pdf"
    )


@pytest.mark.parametrize(
    ("name", "data", "status"),
    [
        ("virus.pdf", b"MZ\x90\x00" + b"\x00" * 10, 415),  # an executable renamed .pdf
        ("image.png", PDF_BYTES, 415),  # a PDF renamed .png
        ("page.html", b"<p>x</p>", 415),
        ("sans-extension", b"texte", 415),
        ("gros.txt", b"a" * (1024 + 1), 413),
    ],
)
def test_a_patients_file_is_refused_by_type_content_or_size(
    name: str, data: bytes, status: int
) -> None:
    with pytest.raises(SpaceError) as refused:
        check_file(Upload(name, data), limit=1024)
    assert refused.value.status == status


@pytest.mark.parametrize(
    ("name", "data"),
    [("scan.PDF", PDF_BYTES), ("photo.png", PNG_BYTES), ("note.txt", b"Bonjour"),
     ("radio.tif", b"II*\x00" + b"\x00" * 8), ("lettre.rtf", b"{\\rtf1 x}"),
     ("photo.jpg", b"\xff\xd8\xff\xe0rest")],
)  # fmt: skip
def test_a_patients_file_of_an_accepted_type_passes(name: str, data: bytes) -> None:
    assert check_file(Upload(name, data), limit=1024)[0] == name


ODD_CHARSETS = ["undefined", "idna", "punycode", "rot13", "x-inconnu", "utf-8"]


@pytest.mark.parametrize("charset", ODD_CHARSETS)
def test_a_text_in_any_charset_is_read_never_a_crash(charset: str) -> None:
    """`undefined`, `idna`, `punycode` raise even with errors="replace": read as UTF-8."""
    raw = (
        f"Subject: x\r\nContent-Type: text/plain; charset={charset}\r\n\r\nBonjour \xe9"
    ).encode()
    parsed = parse_message(raw)
    assert (content(raw, parsed.body).text or "").startswith("Bonjour")


@pytest.mark.parametrize("charset", ODD_CHARSETS)
def test_a_file_name_in_any_charset_is_read_never_a_crash(charset: str) -> None:
    assert param([("filename*", f"{charset}''bilan%C3%A9.pdf")], "filename").startswith("bilan")
    continued = [("filename*0*", f"{charset}''bilan%E9"), ("filename*1", ".pdf")]
    assert param(continued, "filename").startswith("bilan")


@pytest.mark.parametrize("breaking", ["\r\n", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e",
                                      "\x85", "\u2028", "\u2029", "\x00", "\t"])  # fmt: skip
def test_a_header_value_from_elsewhere_is_put_on_one_line(breaking: str) -> None:
    assert one_line(f"Résultats{breaking}Bcc: x@y") == "Résultats Bcc: x@y"


@pytest.mark.parametrize(
    ("kind", "size", "fileable"),
    [
        (PDF, 1000, True), (TEXT, 1000, True), (JPEG, 1000, True), (TIFF, 1000, True),
        (RTF, 1000, True), (PNG, 1000, False), (GIF, 1000, False), (None, 1000, False),
        (PDF, 5 * 1024 * 1024, True), (PDF, 5 * 1024 * 1024 + 1, False),
    ],
)  # fmt: skip
def test_a_received_attachment_is_filed_only_as_pdf_txt_rtf_jpeg_tiff_of_5_mb_at_most(
    kind: str | None, size: int, fileable: bool
) -> None:
    """DOMAIN.md §2: filing into the patient's documents takes pdf, txt, rtf, jpg/jpeg,
    tif/tiff, at most 5 MB."""
    assert FileInfo("1.2", "piece", kind, size).fileable is fileable
