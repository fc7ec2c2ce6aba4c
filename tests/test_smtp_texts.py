"""Every SMTP refusal a person may read is French with its English meaning in
parentheses (issue 14: `535 5.7.8`, `530 … STARTTLS` were English only)."""

from __future__ import annotations

import re

from mss.core import codes

# "NNN X.Y.Z <French text> (<English meaning>…)" — the English in parentheses
_BILINGUAL = re.compile(r"^[45]\d\d [45]\.\d{1,3}\.\d{1,3} \S.* \([a-z][^()]*[a-z][^()]*\)")
_FRENCH = re.compile(
    r"\b(le|la|les|de|des|du|en|un|une|trop|pas|ou|requise?|mal|incorrect|syntaxe|adresse|"
    r"ligne|erreur|réessayez|attendue)\b|d'|[éèàêçù]"
)


def test_every_smtp_refusal_is_french_with_its_english_meaning() -> None:
    refusals = {name: value for name, value in vars(codes).items()
                if isinstance(value, str) and value[:1] in "45"}  # fmt: skip
    assert len(refusals) >= 20
    for name, text in refusals.items():
        assert _BILINGUAL.match(text), (name, text)
        french = text.split(" (", 1)[0]
        assert _FRENCH.search(french.lower()), (name, text)
