"""Phone numbers for SMS: the French national form and E.164, normalised to E.164
(ITU-T E.164: `+`, country code, national significant number, 15 digits at most),
and the masked form that logs and reasons show.

Accepted: the French national form, ten digits with the trunk prefix 0, written with
or without spaces, dots or dashes (`06 12 34 56 78`, `06.12.34.56.78`, `0612345678`),
and the international form (`+33612345678`, `+33 6 12 34 56 78`, `+33 (0)6 12 34 56
78`). Anything else is refused (`InvalidPhone`): a wrong number stays wrong at every
attempt. Pure: no I/O.
"""

from __future__ import annotations

import re

from mss.core.errors import CoreValueError

FRANCE = "33"
_SEPARATORS_RE = re.compile(r"[ .\-\u00a0]")
_NATIONAL_RE = re.compile(r"0([1-9]\d{8})")  # ARCEP plan: 0 + 9-digit significant number
_INTERNATIONAL_RE = re.compile(r"\+[1-9]\d{6,14}")  # ITU-T E.164 §6.1: 15 digits at most
_FRENCH_E164_RE = re.compile(r"\+33[1-9]\d{8}")
# The overseas departments dial the same ten-digit national form, but their numbers
# belong to their own E.164 country codes (ARCEP numbering plan; ITU-T assignments
# +262, +590, +594, +596): 0690 12 34 56 is +590 690 12 34 56, not +33 690…
_OVERSEAS: dict[str, str] = {
    "590": "590", "690": "590", "691": "590",  # Guadeloupe, Saint-Martin, Saint-Barthélemy
    "594": "594", "694": "594",  # Guyane
    "596": "596", "696": "596", "697": "596",  # Martinique
    "262": "262", "263": "262", "692": "262", "693": "262",  # La Réunion
    "269": "262", "639": "262",  # Mayotte
}  # fmt: skip


class InvalidPhone(CoreValueError):
    """Not a phone number an SMS can be sent to; the message masks the number."""


def to_e164(raw: str) -> str:
    """`raw` (a French national number or an E.164 one) as E.164, or `InvalidPhone`."""
    compact = _SEPARATORS_RE.sub("", raw.strip()).replace("(0)", "", 1)
    if national := _NATIONAL_RE.fullmatch(compact):
        return _from_national(national.group(1))
    if _INTERNATIONAL_RE.fullmatch(compact) and _plausible(compact):
        return compact
    raise InvalidPhone(f"not a French or E.164 phone number: {mask_phone(raw)}")


def _from_national(significant: str) -> str:
    """The nine digits after the trunk 0, under France's code or an overseas one."""
    return f"+{_OVERSEAS.get(significant[:3], FRANCE)}{significant}"


def _plausible(number: str) -> bool:
    """A French E.164 number has exactly nine digits after +33 (no trunk 0)."""
    return not number.startswith("+33") or bool(_FRENCH_E164_RE.fullmatch(number))


def mask_phone(raw: str) -> str:
    """All digits but the last two hidden: `+33612345678` → `+*********78`."""
    digits = re.sub(r"\D", "", raw)
    plus = "+" if raw.strip().startswith("+") else ""
    return plus + "*" * max(len(digits) - 2, 0) + digits[-2:]
