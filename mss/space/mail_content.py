"""What a message holds, made safe to show: its text, its HTML sanitised (nh3), its
attachments with a type found by reading their first bytes (never trusting the name or
the declared type), and file names safe in a Content-Disposition header.

The HTML is cleaned here and shown only in a sandboxed frame under `MAIL_FRAME_CSP`
(`headers.py`): no script, no event handler, no `javascript:` link, no remote image
(an `img` keeps its `src` only when it is a `data:` image).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote

import nh3

from mss.core.mime import Attachment, decode_text, leaves
from mss.core.mime.structure import Part

# What the space recognises by content: (type, extensions) by magic number.
PDF, PNG, JPEG, GIF, TIFF, RTF, TEXT = (
    "application/pdf", "image/png", "image/jpeg", "image/gif", "image/tiff", "application/rtf",
    "text/plain",
)  # fmt: skip
_MAGIC = (
    (b"%PDF-", PDF),
    (b"\x89PNG\r\n\x1a\n", PNG),
    (b"\xff\xd8\xff", JPEG),
    (b"GIF87a", GIF),
    (b"GIF89a", GIF),
    (b"II*\x00", TIFF),
    (b"MM\x00*", TIFF),
    (b"{\\rtf", RTF),
)
# What a browser shows inline without running anything of ours.
PREVIEWABLE = frozenset({PDF, PNG, JPEG, GIF})
# What a patient may send or add to their documents (DOMAIN.md §3: jpeg, png, pdf, rtf,
# tif/tiff, txt), and what a received attachment may be to be filed into them (§2: pdf,
# txt, rtf, jpeg, tiff).
UPLOADABLE = frozenset({PDF, PNG, JPEG, TIFF, RTF, TEXT})
FILEABLE = frozenset({PDF, TEXT, RTF, JPEG, TIFF})
_LINKS = ("http:", "https:", "mailto:", "#")


def sniff(data: bytes) -> str | None:
    """The type of `data` by its first bytes; plain text when it is printable UTF-8."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    return TEXT if _is_text(data) else None


def _is_text(data: bytes) -> bool:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch in "\t\r\n\f" or unicodedata.category(ch) != "Cc" for ch in text)


def _keep(tag: str, attribute: str, value: str) -> str | None:
    """Drop remote and script URLs: images only from `data:`, links only to the web or mail."""
    lowered = value.strip().lower()
    if attribute == "src":
        return value if tag == "img" and lowered.startswith("data:image/") else None
    if attribute in ("href", "action", "formaction", "background", "poster", "srcset"):
        return value if attribute == "href" and lowered.startswith(_LINKS) else None
    return value


def sanitise(html: str) -> str:
    """A professional's HTML, cleaned: nothing left that runs or fetches."""
    return nh3.clean(
        html,
        clean_content_tags={"script", "style", "noscript", "template", "iframe", "object"},
        attribute_filter=_keep,
        url_schemes={"http", "https", "mailto", "data"},
        link_rel="noopener noreferrer nofollow",
    )


def frame_document(html: str) -> str:
    """The sanitised HTML as the whole document of the sandboxed frame."""
    return (
        '<!doctype html><html lang="fr"><head><meta charset="utf-8">'
        '<base target="_blank"></head><body>' + sanitise(html) + "</body></html>"
    )


_UNSAFE = re.compile(r'[\x00-\x1f\x7f"\\/:*?<>|;]+')


def safe_filename(name: str, fallback: str = "piece-jointe") -> str:
    """A file name without paths, quotes or control characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _UNSAFE.sub("_", unicodedata.normalize("NFC", base)).strip(" ._")
    return cleaned[:150] or fallback


def disposition(kind: str, name: str) -> str:
    """`attachment` or `inline`, with an ASCII name and the UTF-8 one (RFC 6266)."""
    safe = safe_filename(name)
    ascii_name = safe.encode("ascii", "replace").decode().replace("?", "_")
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(safe)}"


@dataclass(frozen=True, slots=True)
class Content:
    """A message's readable parts and its attachments."""

    text: str | None
    html: str | None
    attachments: list[Attachment]


def _charset(part: Part) -> str:
    for key, value in part.params:
        if key.lower() == "charset":
            return value
    return "utf-8"


def _decode(raw: bytes, leaf: Attachment, charset: str) -> str:
    """The part's text in its charset (`decode_text`: UTF-8 for an odd one)."""
    return decode_text(leaf.payload(raw), charset)


def _parts_by_index(body: Part) -> dict[int, Part]:
    found: dict[int, Part] = {}

    def walk(part: Part) -> None:
        found[len(found)] = part
        for child in part.children:
            walk(child)

    walk(body)
    return found


def content(raw: bytes, body: Part) -> Content:
    """The first text/plain and text/html parts that are not files, and the files."""
    parts = _parts_by_index(body)
    text: str | None = None
    html: str | None = None
    files: list[Attachment] = []
    for leaf in leaves(body):
        part = parts[leaf.index]
        is_file = bool(leaf.filename) or (part.disposition or ("",))[0].lower() == "attachment"
        if not is_file and leaf.content_type == "text/plain" and text is None:
            text = _decode(raw, leaf, _charset(part))
        elif not is_file and leaf.content_type == "text/html" and html is None:
            html = _decode(raw, leaf, _charset(part))
        elif is_file:
            files.append(leaf)
    return Content(text, html, files)
