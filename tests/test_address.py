"""Address validation: what may reach the database, logs and the SMTP client."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mss.core.address import InvalidAddress, is_valid_domain, parse_address


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("Jean.Dupont@Pro.MSSante.test", "jean.dupont@pro.mssante.test"),
        ("<jean.dupont@pro.mssante.test>", "jean.dupont@pro.mssante.test"),
        ("188102b17295165@patient.mssante.fr", "188102B17295165@patient.mssante.fr"),
        ("secretariat+cardio@hopital.mssante.test", "secretariat+cardio@hopital.mssante.test"),
        ("élodie.durand@pro.mssante.test", "élodie.durand@pro.mssante.test"),
    ],
)
def test_addresses_are_normalised(text: str, normalised: str) -> None:
    assert str(parse_address(text)) == normalised


@pytest.mark.parametrize(
    "text",
    [
        "jean.dupont@pro.mssante.test\r\nRCPT TO:<x@evil.test>",
        "jean.dupont@pro.mssante.test\n",
        "jean dupont@pro.mssante.test",
        '"jean dupont"@pro.mssante.test',
        "jean..dupont@pro.mssante.test",
        ".jean@pro.mssante.test",
        "jean@localhost",
        "jean@-pro.mssante.test",
        "@pro.mssante.test",
        "jean.dupont@",
        "jean.dupont",
        "a" * 65 + "@pro.mssante.test",
        "jean@" + "a" * 250 + ".test",
        "jean\x00@pro.mssante.test",
    ],
)
def test_bad_addresses_are_refused(text: str) -> None:
    with pytest.raises(InvalidAddress):
        parse_address(text)


@given(st.text())
def test_parse_address_never_returns_control_characters(text: str) -> None:
    try:
        address = parse_address(text)
    except InvalidAddress:
        return
    rendered = str(address)
    assert not any(ord(ch) < 32 or ch in ' <>"\\' for ch in rendered)
    assert rendered.count("@") == 1


def test_domain_validation() -> None:
    assert is_valid_domain("pro.mssante.test")
    assert not is_valid_domain("pro_mssante.test")
    assert not is_valid_domain("test")
