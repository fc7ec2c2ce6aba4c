"""Numbers that clients, files and the command line write are digits 0-9 only:
`str.isdigit` also takes '²' (which `int` refuses: a crash) and Arabic-Indic digits
(which `int` reads as other numbers). Each site below used it."""

from __future__ import annotations

import pytest

from mss.admin.pro import national_id
from mss.admin.quotas import parse_limit
from mss.core.digits import ascii_digits
from mss.core.ins import InvalidINS, parse_ins
from mss.errors import InputError

SUPERSCRIPT_TWO = "\u00b2"
ARABIC_INDIC_12 = "\u0661\u0662"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0", True), ("0123456789", True), ("", False), ("12a", False), ("-1", False),
     (SUPERSCRIPT_TWO, False), (ARABIC_INDIC_12, False), ("\uff11", False)],  # fullwidth 1
)  # fmt: skip
def test_numbers_are_written_in_digits_0_to_9_only(text: str, expected: bool) -> None:
    assert ascii_digits(text) is expected


@pytest.mark.parametrize("text", [SUPERSCRIPT_TWO, ARABIC_INDIC_12, "5" + SUPERSCRIPT_TWO + "M"])
def test_a_quota_in_other_digits_is_refused_with_a_message(text: str) -> None:
    with pytest.raises(InputError, match="is not a size"):
        parse_limit(text, size=True)


def test_an_ins_in_arabic_indic_digits_is_not_an_ins() -> None:
    digits = "279035121518989".translate({ord(d): 0x0660 + int(d) for d in "0123456789"})
    with pytest.raises(InvalidINS):
        parse_ins(digits)


def test_an_rpps_number_given_to_pro_add_is_11_digits_0_to_9() -> None:
    """DOMAIN.md §7: national id = `8` + the RPPS of 11 digits."""
    assert national_id("10003456789", None) == "810003456789"
    with pytest.raises(InputError, match="11 digits"):
        national_id("\u0661" * 11, None)
