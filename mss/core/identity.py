"""A patient's identity as mss records it: the INS and its five traits.

The five traits (seed 001; RNIV): birth name, birth first names, birth date,
sex, birth place code. Plus the identity status (only `QUAL` may be used to
exchange data, DOMAIN.md §6), the Mon espace santé profile status, and contact
details used for notifications. `build_patient` validates raw text (from the
CLI, a CSV file or an API) into a `PatientIdentity`, raising `InvalidPatient`
with a readable reason.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass

from mss.core.address import InvalidAddress, parse_address
from mss.core.errors import CoreValueError
from mss.core.ins import INS, INS_OIDS, IdentityStatus, InvalidINS, parse_ins

SEXES = ("M", "F")
PROFILE_STATUSES = ("active", "closed", "opposed")
# INSEE commune code (2A/2B for Corsica), or 99 + country code when born abroad.
_BIRTH_PLACE_RE = re.compile(r"(?:\d{2}|2A|2B)\d{3}")
_PHONE_RE = re.compile(r"\+?[0-9][0-9 .\-]{5,19}")
MAX_NAME = 100


class InvalidPatient(CoreValueError):
    """A patient record that cannot be accepted; the message says why."""


@dataclass(frozen=True, kw_only=True, slots=True)
class PatientIdentity:
    ins: INS
    oid: str
    birth_family: str
    birth_given: str
    birth_date: dt.date
    sex: str
    birth_place: str | None = None
    used_family: str | None = None
    used_given: str | None = None
    identity_status: IdentityStatus = IdentityStatus.QUAL
    profile_status: str = "active"
    email: str | None = None
    phone: str | None = None

    @property
    def first_given(self) -> str:
        """The first of the birth first names (used in subjects and greetings)."""
        return self.birth_given.split()[0] if self.birth_given.split() else self.birth_given

    @property
    def has_mailbox(self) -> bool:
        """A mailbox exists only for an active profile with a qualified INS (DOMAIN.md §1-2)."""
        return self.profile_status == "active" and self.identity_status == IdentityStatus.QUAL


def _name(field: str, value: str | None, *, required: bool) -> str | None:
    text = (value or "").strip()
    if not text:
        if required:
            raise InvalidPatient(f"{field} is required")
        return None
    if len(text) > MAX_NAME or any(ord(c) < 32 for c in text):
        raise InvalidPatient(f"{field} {text!r} is too long or has control characters")
    return text


def _date(value: str | None) -> dt.date:
    text = (value or "").strip()
    try:
        birth = dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidPatient(f"birth date {text!r} is not YYYY-MM-DD") from None
    if birth > dt.date.today() or birth.year < 1850:
        raise InvalidPatient(f"birth date {text} is not plausible")
    return birth


def _choice(field: str, value: str | None, allowed: tuple[str, ...], default: str) -> str:
    text = (value or "").strip() or default
    for choice in allowed:
        if text.lower() == choice.lower():
            return choice
    raise InvalidPatient(f"{field} {text!r} is not one of {', '.join(allowed)}")


def _contact(email: str | None, phone: str | None) -> tuple[str | None, str | None]:
    mail = (email or "").strip() or None
    if mail is not None:
        try:
            mail = str(parse_address(mail))
        except InvalidAddress as exc:
            raise InvalidPatient(f"email: {exc.reason}") from None
    tel = (phone or "").strip() or None
    if tel is not None:
        if not _PHONE_RE.fullmatch(tel):
            raise InvalidPatient(f"phone {tel!r} is not a phone number")
        tel = re.sub(r"[ .\-]", "", tel)
    return mail, tel


# DOMAIN.md §6: a provisional number (NIA, sex digit 7 or 8) is not a qualified INS
NIA_NOT_QUALIFIED = (
    "un NIA (numéro provisoire, 1er chiffre 7 ou 8) ne peut pas porter une identité qualifiée :"
    " donnez --identity-status PROV, RECUP ou VALI (a provisional NIA cannot carry a qualified"
    " identity)"
)


def build_patient(values: Mapping[str, str | None]) -> PatientIdentity:
    """Validate raw fields (ins, family, given, birth_date, sex, …) into an identity."""
    try:
        ins = parse_ins(values.get("ins") or "")
    except InvalidINS as exc:
        raise InvalidPatient(str(exc)) from None
    oid = (values.get("oid") or "").strip() or ins.default_oid
    if oid not in INS_OIDS:
        raise InvalidPatient(f"oid {oid!r} is not an INS identifier system")
    place = (values.get("birth_place") or "").strip().upper() or None
    if place is not None and not _BIRTH_PLACE_RE.fullmatch(place):
        raise InvalidPatient(f"birth place {place!r} is not a 5-character INSEE code")
    email, phone = _contact(values.get("email"), values.get("phone"))
    status = _choice(
        "identity status", values.get("identity_status"), tuple(IdentityStatus), "QUAL"
    )
    if ins.provisional and status == IdentityStatus.QUAL:
        raise InvalidPatient(NIA_NOT_QUALIFIED)
    return PatientIdentity(
        ins=ins,
        oid=oid,
        birth_family=_name("family name", values.get("family"), required=True) or "",
        birth_given=_name("given names", values.get("given"), required=True) or "",
        birth_date=_date(values.get("birth_date")),
        sex=_choice("sex", values.get("sex"), SEXES, ""),
        birth_place=place,
        used_family=_name("used family name", values.get("used_family"), required=False),
        used_given=_name("used given name", values.get("used_given"), required=False),
        identity_status=IdentityStatus(status),
        profile_status=_choice("status", values.get("status"), PROFILE_STATUSES, "active"),
        email=email,
        phone=phone,
    )
