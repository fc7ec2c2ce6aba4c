"""Patient identities: the INS with its five traits, statuses and contacts."""

from __future__ import annotations

import pytest

from mss.core.identity import InvalidPatient, build_patient
from mss.core.ins import OID_NIR_TEST, IdentityStatus

BASE = {
    "ins": "279035121518989",
    "family": "PAT-TROIS",
    "given": "DOMINIQUE MARIE",
    "birth_date": "1979-03-28",
    "sex": "F",
}


def test_patient_identity_with_five_traits() -> None:
    identity = build_patient({**BASE, "birth_place": "51215", "oid": OID_NIR_TEST})
    assert identity.ins.matricule == "279035121518989"
    assert identity.first_given == "DOMINIQUE"
    assert identity.birth_place == "51215"
    assert identity.identity_status is IdentityStatus.QUAL
    assert identity.has_mailbox


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("ins", "288091234567823", "control key"),
        ("sex", "X", "sex 'X' is not one of M, F"),
        ("sex", "", "sex"),
        ("birth_date", "28/03/1979", "YYYY-MM-DD"),
        ("birth_date", "2999-01-01", "not plausible"),
        ("family", " ", "family name is required"),
        ("status", "deleted", "status 'deleted'"),
        ("identity_status", "OK", "identity status"),
        ("email", "not-an-address", "email"),
        ("phone", "call me", "phone"),
        ("birth_place", "123", "INSEE"),
        ("oid", "1.2.3", "oid"),
    ],
)
def test_invalid_patient_fields_are_refused_with_reason(
    field: str, value: str, message: str
) -> None:
    with pytest.raises(InvalidPatient, match=message):
        build_patient({**BASE, field: value})


@pytest.mark.parametrize(
    ("status", "identity_status"), [("closed", "QUAL"), ("opposed", "QUAL"), ("active", "PROV")]
)
def test_patient_has_no_mailbox_unless_active_and_qualified(
    status: str, identity_status: str
) -> None:
    identity = build_patient({**BASE, "status": status, "identity_status": identity_status})
    assert not identity.has_mailbox


def test_phone_is_normalised() -> None:
    assert build_patient({**BASE, "phone": "+33 6 12 34 56 78"}).phone == "+33612345678"


NIA = "779035121518933"  # sex digit 7: a provisional number, its key valid


@pytest.mark.parametrize("given", [{}, {"identity_status": "QUAL"}, {"identity_status": "qual"}])
def test_a_provisional_nia_cannot_carry_a_qualified_identity(given: dict[str, str]) -> None:
    """DOMAIN.md §6 (issue 14): a NIA (sex digit 7 or 8) is never QUAL, by default or asked."""
    with pytest.raises(InvalidPatient, match=r"NIA .*PROV, RECUP ou VALI"):
        build_patient({**BASE, "ins": NIA, **given})
    for status in ("PROV", "RECUP", "VALI"):
        identity = build_patient({**BASE, "ins": NIA, "identity_status": status})
        assert identity.ins.provisional and not identity.has_mailbox
