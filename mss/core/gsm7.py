"""How many SMS a text costs, and how to cut it to a budget without losing its link.

A text is sent in the GSM 7-bit default alphabet when every character is in it
(3GPP TS 23.038 §6.2.1, the extension table §6.2.1.1 costing two septets: escape +
character), else in UCS-2 (16-bit units, §6.2.3). A single SMS holds 160 septets or
70 units; a concatenated one spends 6 octets of user data header on the parts
(3GPP TS 23.040 §9.2.3.24.1), leaving 153 septets or 67 units per part, and a
character never straddles two parts (an escape pair, a surrogate pair).

French texts: é è à ù are in the default alphabet, but ç is not (only Ç is) nor
ê â î ô û ë ï œ nor the typographic apostrophe ’: a text holding one of them goes as
UCS-2. The text is kept as given, never transliterated. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from mss.core.errors import CoreValueError

# 3GPP TS 23.038 §6.2.1, in code order 0x00-0x7F (0x1B, the escape, left out)
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")  # §6.2.1.1: two septets each
ELLIPSIS = "..."  # in the default alphabet (… is not)
_TRAILING = " \t\r\n.,;:"  # dropped before the ellipsis


@dataclass(frozen=True, slots=True)
class Encoding:
    name: str
    single: int  # units in one SMS
    part: int  # units in each part of a concatenated SMS


GSM7 = Encoding("gsm7", 160, 153)
UCS2 = Encoding("ucs2", 70, 67)


def is_gsm7(text: str) -> bool:
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def encoding_of(text: str) -> Encoding:
    return GSM7 if is_gsm7(text) else UCS2


def _units(text: str, encoding: Encoding) -> list[int]:
    """What each character costs: septets in GSM 7-bit, 16-bit units in UCS-2."""
    if encoding is GSM7:
        return [2 if c in GSM7_EXTENSION else 1 for c in text]
    return [2 if ord(c) > 0xFFFF else 1 for c in text]  # a surrogate pair


def segments(text: str) -> int:
    """How many SMS `text` is sent as (1 for the empty text)."""
    encoding = encoding_of(text)
    units = _units(text, encoding)
    if sum(units) <= encoding.single:
        return 1
    parts, used = 1, 0
    for unit in units:
        if used + unit > encoding.part:  # the character opens the next part
            parts, used = parts + 1, 0
        used += unit
    return parts


class LinkTooLong(CoreValueError):
    """The link alone does not fit in the budget."""


def fit(text: str, link: str, max_segments: int) -> str:
    """`text` as given when it fits in `max_segments` SMS; else its words cut before
    the link, marked with an ellipsis, and the link kept whole at the end."""
    if segments(text) <= max_segments:
        return text
    head, sep = _split_link(text, link)
    head = head[: max_segments * GSM7.part]  # a character costs one unit at least
    for cut in _cuts(head):
        candidate = head[:cut].rstrip(_TRAILING) + ELLIPSIS + sep + link
        if segments(candidate) <= max_segments:
            return candidate
    raise LinkTooLong(f"the link alone takes more than {max_segments} SMS")


def _split_link(text: str, link: str) -> tuple[str, str]:
    """The text before a trailing link, and the white space that led to it."""
    head = text[: len(text) - len(link)] if link and text.endswith(link) else text
    stripped = head.rstrip()
    sep = head[len(stripped) :] or (" " if link else "")
    return stripped, sep


def _cuts(head: str) -> list[int]:
    """Where `head` may be cut, longest first: at word ends, then anywhere."""
    words = [i for i in range(len(head), 0, -1) if _word_end(head, i)]
    return [*words, *range(len(head), -1, -1)]


def _word_end(head: str, i: int) -> bool:
    return not head[i - 1].isspace() and (i == len(head) or head[i].isspace())
