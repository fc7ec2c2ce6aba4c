"""The leaf parts of a message: type, file name and decoded bytes (RFC 2045 §6, 2183, 2231).

Computed from the part tree of `structure.py`, so that the delivery pipeline (is a
document of this mail invisible to the patient?) and the DMP deposit (which
documents does it carry?) read the same parts the same way. Leaves are numbered
in the order of a depth-first walk of every part, containers included (the order
of the standard library's `Message.walk()`).
"""

from __future__ import annotations

from dataclasses import dataclass

from mss.core.mime.headers import Params, decode_words, param
from mss.core.mime.structure import Part
from mss.core.mime.transfer import decode_body


@dataclass(frozen=True, slots=True)
class Attachment:
    index: int  # position in a depth-first walk of every part
    content_type: str  # "type/subtype", lower case
    filename: str  # "" when the part names no file
    encoding: str  # Content-Transfer-Encoding, lower case
    start: int  # the body's offsets in the message
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start

    def payload(self, raw: bytes) -> bytes:
        """The decoded body (base64, quoted-printable; other encodings as they are)."""
        return decode_body(raw[self.start : self.end], self.encoding)


def leaves(body: Part) -> list[Attachment]:
    """Every part that is neither a multipart nor an encapsulated message."""
    found: list[Attachment] = []
    _walk(body, [0], found)
    return found


def _walk(part: Part, counter: list[int], found: list[Attachment]) -> None:
    index = counter[0]
    counter[0] += 1
    if part.children:
        for child in part.children:
            _walk(child, counter, found)
        return
    if part.is_multipart:
        return
    found.append(
        Attachment(
            index=index,
            content_type=f"{part.maintype}/{part.subtype}",
            filename=filename(part),
            encoding=part.encoding,
            start=part.body_start,
            end=part.body_end,
        )
    )


def filename(part: Part) -> str:
    """Content-Disposition's `filename`, else Content-Type's `name`: RFC 2231 parameters
    (charset, continuations) and RFC 2047 encoded words decoded."""
    disposition = part.disposition[1] if part.disposition else []
    return _param(disposition, "filename") or _param(part.params, "name")


def _param(params: Params, name: str) -> str:
    return decode_words(param(params, name))
