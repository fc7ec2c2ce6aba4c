"""DOMAIN.md §6: the matricule INS, its control key, Corsica, provisional numbers."""

from __future__ import annotations

import csv

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mss.core.address import PATIENT_DOMAIN, ins_of_patient_address, parse_address, patient_address
from mss.core.ins import (
    OID_NIA,
    OID_NIR,
    InvalidINS,
    control_key,
    is_valid_ins,
    parse_ins,
)

from .conftest import SHARED_DATA

DOMAIN_VALID_EXAMPLES = ["279035121518989", "188102B17295165", "162018885045327", "277076322082910"]
DOMAIN_INVALID_KEY = "288091234567823"


@pytest.mark.parametrize("matricule", DOMAIN_VALID_EXAMPLES)
def test_valid_ins_examples_of_domain_md_are_accepted(matricule: str) -> None:
    assert parse_ins(matricule).matricule == matricule


def test_invalid_key_example_of_domain_md_is_refused() -> None:
    with pytest.raises(InvalidINS, match="control key 23 does not match, expected 94"):
        parse_ins(DOMAIN_INVALID_KEY)


def test_all_62_ans_test_patients_have_valid_ins() -> None:
    with (SHARED_DATA / "ans-test-patients.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 62
    for row in rows:
        assert is_valid_ins(row["ins"]), row["ins"]


def test_ins_key_replaces_2a_by_19_and_2b_by_18() -> None:
    # 188102B17295165 is valid only if 2B counts as 18 in the key computation.
    assert control_key("188102B172951") == 97 - int("1881018172951") % 97 == 65
    assert control_key("188102A172951") == 97 - int("1881019172951") % 97


def test_ins_corsica_accepts_lowercase_and_normalises() -> None:
    assert parse_ins("188102b17295165").matricule == "188102B17295165"


def _with_key(first13: str) -> str:
    return f"{first13}{control_key(first13):02d}"


def test_ins_provisional_sex_digits_7_and_8_are_nia() -> None:
    for digit, sex in (("7", "M"), ("8", "F")):
        ins = parse_ins(_with_key(f"{digit}790351215189"))
        assert ins.provisional
        assert ins.sex == sex
        assert ins.default_oid == OID_NIA
    assert parse_ins("279035121518989").default_oid == OID_NIR


@pytest.mark.parametrize("digit", ["0", "3", "4", "5", "6", "9"])
def test_ins_other_sex_digits_are_refused(digit: str) -> None:
    with pytest.raises(InvalidINS, match="sex digit"):
        parse_ins(_with_key(f"{digit}790351215189"))


@pytest.mark.parametrize("month", ["01", "12", "20", "30", "50", "99"])
def test_ins_months_of_incomplete_civil_records_are_accepted(month: str) -> None:
    assert is_valid_ins(_with_key(f"279{month}51215189"))


@pytest.mark.parametrize("month", ["00", "13", "19", "31", "49"])
def test_ins_impossible_months_are_refused(month: str) -> None:
    with pytest.raises(InvalidINS, match="month"):
        parse_ins(_with_key(f"279{month}51215189"))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("27903512151898", "expected 15 characters"),
        ("2790351215189899", "expected 15 characters"),
        ("27903512151898X", "only digits"),
        ("2790352C1518989", "department"),
        ("279030012151810", "department 00"),
    ],
)
def test_ins_malformed_values_are_refused_with_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidINS, match=reason):
        parse_ins(text)


first13 = st.builds(
    lambda sex, year, month, dept, rest: f"{sex}{year:02d}{month:02d}{dept}{rest:06d}",
    st.sampled_from("1278"),
    st.integers(0, 99),
    st.one_of(st.integers(1, 12), st.integers(20, 30), st.integers(50, 99)),
    st.one_of(st.integers(1, 99).map(lambda d: f"{d:02d}"), st.sampled_from(["2A", "2B"])),
    st.integers(0, 999_999),
)


@given(first13)
def test_ins_any_well_formed_number_with_its_key_is_valid(base: str) -> None:
    ins = parse_ins(_with_key(base))
    assert 1 <= ins.key <= 97


@given(first13, st.integers(0, 12), st.integers(1, 9))
def test_ins_key_detects_any_single_digit_change(base: str, position: int, delta: int) -> None:
    valid = _with_key(base)
    if not valid[position].isdigit():
        return
    changed = valid[:position] + str((int(valid[position]) + delta) % 10) + valid[position + 1 :]
    assert not is_valid_ins(changed)


@given(first13)
def test_patient_address_and_ins_round_trip(base: str) -> None:
    ins = parse_ins(_with_key(base))
    address = patient_address(ins)
    assert address == f"{ins.matricule}@{PATIENT_DOMAIN}"
    assert ins_of_patient_address(parse_address(address.lower())) == ins


def test_patient_address_with_wrong_key_raises_invalid_ins() -> None:
    with pytest.raises(InvalidINS):
        ins_of_patient_address(parse_address(f"{DOMAIN_INVALID_KEY}@{PATIENT_DOMAIN}"))


def test_address_outside_patient_domain_has_no_ins() -> None:
    assert ins_of_patient_address(parse_address("279035121518989@pro.mssante.test")) is None
