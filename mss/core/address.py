"""Mail addresses: validation, normalisation, and patient address ↔ INS.

A patient's address is always `<matricule INS>@patient.mssante.fr` (DOMAIN.md §1,
seed 001). Addresses are checked strictly before they go anywhere (database, SMTP
client, logs): a dot-atom local part (RFC 5321 §4.1.2, UTF-8 allowed per RFC 6531),
a domain of letters, digits and hyphens, no whitespace or control characters.
Quoted local parts are refused: no MSSanté address uses them and they are a
classic way to smuggle separators.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mss.core.errors import CoreValueError
from mss.core.ins import INS, parse_ins

PATIENT_DOMAIN = "patient.mssante.fr"

MAX_LOCAL_LENGTH = 64  # RFC 5321 §4.5.3.1.1
MAX_DOMAIN_LENGTH = 255  # RFC 5321 §4.5.3.1.2
MAX_ADDRESS_LENGTH = 254  # RFC 5321 §4.5.3.1.3 path limit minus the brackets

# atext of RFC 5322 §3.2.3, plus any non-ASCII character (RFC 6532 §3.2).
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff]+"
_LOCAL_RE = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")
# The common case in one match: an ASCII dot-atom local part and a host name of
# 2+ labels, nothing around them. Anything else takes the detailed checks below.
_PLAIN_RE = re.compile(
    r"([A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*)"
    r"@((?:(?!-)[A-Za-z0-9-]{1,63}(?<!-)\.)+(?!-)[A-Za-z0-9-]{1,63}(?<!-))"
)
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")  # CR, LF, NUL and the other controls
# what a line that was not UTF-8 decodes to (surrogateescape): no encoder takes it
_NOT_UTF8_RE = re.compile("[\ud800-\udfff]")
_LABEL_RE = re.compile(r"(?!-)[A-Za-z0-9\-\u0080-\U0010ffff]{1,63}(?<!-)")


class InvalidAddress(CoreValueError):
    """The text is not an acceptable mail address; the message says why."""

    def __init__(self, text: str, reason: str) -> None:
        super().__init__(f"invalid address {text!r}: {reason}")
        self.text = text
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Address:
    """A normalised address: local part as given (patient INS upper-cased), domain lower-cased."""

    local: str
    domain: str

    def __str__(self) -> str:
        return f"{self.local}@{self.domain}"


def parse_address(text: str) -> Address:
    """Validate and normalise an address; raise `InvalidAddress` with the reason."""
    plain = _plain(text)
    if plain is not None:
        return Address(*plain)
    if _CONTROL_RE.search(text):
        raise InvalidAddress(text, "control characters are not allowed")
    if _NOT_UTF8_RE.search(text):
        raise InvalidAddress(text, "not UTF-8")
    value = text.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1]
    if len(value) > MAX_ADDRESS_LENGTH:
        raise InvalidAddress(text, f"longer than {MAX_ADDRESS_LENGTH} characters")
    local, sep, domain = value.rpartition("@")
    if not sep or not local or not domain:
        raise InvalidAddress(text, "expected local-part@domain")
    if len(local.encode()) > MAX_LOCAL_LENGTH:
        raise InvalidAddress(text, f"local part longer than {MAX_LOCAL_LENGTH} octets")
    if not _LOCAL_RE.fullmatch(local):
        raise InvalidAddress(text, "local part must be a dot-atom (letters, digits, .-_+…)")
    domain = domain.lower().rstrip(".")
    _check_domain(text, domain)
    # Patient addresses carry the INS, whose Corsican departments are upper case.
    return Address(local.upper() if domain == PATIENT_DOMAIN else local.lower(), domain)


def _plain(text: str) -> tuple[str, str] | None:
    """The common case in one match: the normalised local part and domain, else None."""
    plain = _PLAIN_RE.fullmatch(text)
    if plain is None or len(text) > MAX_ADDRESS_LENGTH or len(plain[1]) > MAX_LOCAL_LENGTH:
        return None
    local, domain = plain[1], plain[2].lower()
    return (local.upper() if domain == PATIENT_DOMAIN else local.lower()), domain


def _check_domain(text: str, domain: str) -> None:
    if len(domain) > MAX_DOMAIN_LENGTH:
        raise InvalidAddress(text, "domain too long")
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL_RE.fullmatch(label) for label in labels):
        raise InvalidAddress(text, f"domain {domain!r} is not a valid host name")


def normalize_address(text: str) -> str:
    """`str(parse_address(text))`; the common case without building an Address (the
    annuaire import checks a million of them)."""
    plain = _plain(text)
    if plain is not None:
        return f"{plain[0]}@{plain[1]}"
    return str(parse_address(text))


def is_valid_domain(domain: str) -> bool:
    try:
        _check_domain(domain, domain.lower().rstrip("."))
    except InvalidAddress:
        return False
    return True


def patient_address(ins: INS, domain: str = PATIENT_DOMAIN) -> str:
    """The mailbox address of a patient: `<matricule INS>@patient.mssante.fr`."""
    return f"{ins.matricule}@{domain}"


def ins_of_patient_address(address: Address, patient_domain: str = PATIENT_DOMAIN) -> INS | None:
    """The INS of a patient address, None for any other domain.

    Raises `InvalidINS` when the address is in the patient domain but its local
    part is not a valid matricule (wrong key, wrong length…).
    """
    if address.domain != patient_domain:
        return None
    return parse_ins(address.local)
