"""The matricule INS (Identité Nationale de Santé): parsing and validation.

The matricule is the patient's NIR, or NIA while their registration is pending
(DOMAIN.md §6, ANS "Référentiel Identifiant National de Santé"): 13 characters
and a 2-digit control key.

    S  YY  MM  DD  CCC  OOO  KK
    │   │   │   │   │    │    └ key = 97 − (int(first 13) mod 97), with 2A→19, 2B→18
    │   │   │   │   │    └ order number in the civil register
    │   │   │   │   └ commune (INSEE) or country code when born abroad (dept 99)
    │   │   │   └ department: 01–95, 2A/2B (Corsica), 96–99 (97x overseas, 99 abroad)
    │   │   └ month: 01–12, or 20–30 / 50+ when the civil record is incomplete
    │   └ year of birth, 2 digits
    └ sex: 1 or 2; 7 or 8 for a provisional number (NIA)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mss.core.digits import ascii_digits
from mss.core.errors import CoreValueError

INS_LENGTH = 15

# OIDs of the identifier systems (DOMAIN.md §6).
OID_NIR = "1.2.250.1.213.1.4.8"
OID_NIA = "1.2.250.1.213.1.4.9"
OID_NIR_TEST = "1.2.250.1.213.1.4.10"
OID_NIR_DEMO = "1.2.250.1.213.1.4.11"
INS_OIDS = frozenset({OID_NIR, OID_NIA, OID_NIR_TEST, OID_NIR_DEMO})

_SEX_DIGITS = {"1": "M", "2": "F", "7": "M", "8": "F"}
_PROVISIONAL_SEX_DIGITS = frozenset("78")
# Corsica: the key is computed with 2A → 19 and 2B → 18 (INSEE rule).
_CORSICA = {"2A": "19", "2B": "18"}


class InvalidINS(CoreValueError):
    """The text is not a valid matricule INS; the message says why, in English."""

    def __init__(self, text: str, reason: str) -> None:
        super().__init__(f"invalid INS {text!r}: {reason}")
        self.text = text
        self.reason = reason


class IdentityStatus(StrEnum):
    """Status of a patient identity (Référentiel national d'identitovigilance).

    Only QUAL (qualified) may be used to exchange health data (DOMAIN.md §6).
    """

    PROV = "PROV"
    RECUP = "RECUP"
    VALI = "VALI"
    QUAL = "QUAL"


@dataclass(frozen=True, slots=True)
class INS:
    """A valid matricule INS; build it with `parse_ins`."""

    matricule: str

    def __str__(self) -> str:
        return self.matricule

    @property
    def sex_digit(self) -> str:
        return self.matricule[0]

    @property
    def sex(self) -> str:
        """`M` or `F` as the number encodes it (not necessarily the civil sex)."""
        return _SEX_DIGITS[self.sex_digit]

    @property
    def provisional(self) -> bool:
        """True for a provisional number (NIA, sex digit 7 or 8)."""
        return self.sex_digit in _PROVISIONAL_SEX_DIGITS

    @property
    def birth_year_2(self) -> str:
        return self.matricule[1:3]

    @property
    def birth_month(self) -> int:
        return int(self.matricule[3:5])

    @property
    def department(self) -> str:
        return self.matricule[5:7]

    @property
    def key(self) -> int:
        return int(self.matricule[13:])

    @property
    def default_oid(self) -> str:
        """The OID of its identifier system: NIA for provisional numbers, else NIR."""
        return OID_NIA if self.provisional else OID_NIR


def control_key(first13: str) -> int:
    """The 2-digit key of the first 13 characters (DOMAIN.md §6)."""
    numeric = first13[:5] + _CORSICA.get(first13[5:7], first13[5:7]) + first13[7:]
    return 97 - int(numeric) % 97


def parse_ins(text: str) -> INS:
    """Parse and validate a matricule INS; raise `InvalidINS` with the reason."""
    value = text.strip().upper()
    if len(value) != INS_LENGTH:
        raise InvalidINS(text, f"expected {INS_LENGTH} characters, got {len(value)}")
    department = value[5:7]
    digits = value[:5] + value[7:]
    if not ascii_digits(digits):
        raise InvalidINS(text, "only digits are allowed, and 2A/2B in the department")
    if department not in _CORSICA and not ascii_digits(department):
        raise InvalidINS(text, f"department {department!r} is neither digits nor 2A/2B")
    _check_fields(text, value)
    expected = control_key(value[:13])
    if int(value[13:]) != expected:
        raise InvalidINS(text, f"control key {value[13:]} does not match, expected {expected:02d}")
    return INS(value)


def _check_fields(text: str, value: str) -> None:
    if value[0] not in _SEX_DIGITS:
        raise InvalidINS(text, f"sex digit {value[0]!r} is not 1, 2, 7 or 8")
    month = int(value[3:5])
    if not (1 <= month <= 12 or 20 <= month <= 30 or month >= 50):
        raise InvalidINS(text, f"month {value[3:5]} is not 01-12, 20-30 or 50-99")
    if value[5:7] == "00":
        raise InvalidINS(text, "department 00 does not exist")


def is_valid_ins(text: str) -> bool:
    try:
        parse_ins(text)
    except InvalidINS:
        return False
    return True
