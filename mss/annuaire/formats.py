"""The national directory extraction files (DOMAIN.md §7), line by line. Pure.

Two kinds of file are published by the Annuaire Santé, `|`-separated UTF-8
with one header line:

- `Extraction_Correspondance_MSSante_*.txt` (31 columns): one line per
  MSSanté mailbox (PER, ORG, APP, CAB), with its owner and structure;
- `PS_LibreAcces_Personne_activite_*.txt` (56 columns, 48 in older files,
  lines ending with a trailing `|`): one line per activity of a professional.

Columns are found by header name (compared without accents, case or extra
spaces), never by position; a header that lacks the columns we need is
refused with their names. `Layout.record(fields)` turns one split line into
a row of the tables of `store/annuaire.py`, or raises `BadLine` with the reason.
"""

from __future__ import annotations

import functools
import operator
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from mss.core.address import InvalidAddress, normalize_address
from mss.core.digits import ascii_digits
from mss.errors import InputError


class Kind(StrEnum):
    MSSANTE = "mssante"  # Extraction_Correspondance_MSSante
    PS = "ps"  # PS_LibreAcces_Personne_activite


class BadHeader(InputError):
    """The first line is not the header of a known extraction layout."""


class BadLine(InputError):
    """One line cannot be imported; the import goes on without it."""


MAILBOX_TYPES = ("PER", "ORG", "APP", "CAB")

# (column of our table, header of the national file). The order is the table's.
MSSANTE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("kind", "Type de BAL"),
    ("address", "Adresse BAL"),
    ("id_type", "Type Identifiant PP"),
    ("identifier", "Identifiant PP"),
    ("national_id", "Identification nationale PP"),
    ("structure_id_type", "Type identifiant structure"),
    ("structure_id", "Identification Structure"),
    ("service", "Service de rattachement"),
    ("civilite", "Civilité d'exercice"),
    ("family", "Nom d'exercice"),
    ("given", "Prénom d'exercice"),
    ("category_code", "Catégorie profession"),
    ("category_label", "Libellé de catégorie profession"),
    ("profession_code", "Code Profession"),
    ("profession_label", "Libellé Profession"),
    ("savoir_faire_code", "Code savoir-faire"),
    ("savoir_faire_label", "Libellé savoir-faire"),
    ("dematerialisation", "Dématérialisation"),
    ("raison_sociale", "Raison Sociale structure BAL"),
    ("enseigne", "Enseigne commerciale structure BAL"),
    ("line2", "L2COMPLEMENTLOCALISATION"),
    ("line3", "L3COMPLEMENTDISTRIBUTION"),
    ("street_number", "L4NUMEROVOIE"),
    ("street_repetition", "L4COMPLEMENTNUMEROVOIE"),
    ("street_type", "NL4TYPEVOIE"),
    ("street", "L4LIBELLEVOIE"),
    ("line5", "L5LIEUDITMENTION"),
    ("line6", "L6LIGNEACHEMINEMENT"),
    ("postcode", "Code postal"),
    ("department", "Département"),
    ("country", "Pays"),
)
MSSANTE_REQUIRED = ("Type de BAL", "Adresse BAL")

PS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id_type", "Type d'identifiant PP"),
    ("identifier", "Identifiant PP"),
    ("national_id", "Identification nationale PP"),
    ("civilite_code", "Code civilité d'exercice"),
    ("civilite", "Libellé civilité d'exercice"),
    ("gender_code", "Code civilité"),
    ("gender", "Libellé civilité"),
    ("family", "Nom d'exercice"),
    ("given", "Prénom d'exercice"),
    ("profession_code", "Code profession"),
    ("profession_label", "Libellé profession"),
    ("category_code", "Code catégorie professionnelle"),
    ("category_label", "Libellé catégorie professionnelle"),
    ("savoir_faire_type_code", "Code type savoir-faire"),
    ("savoir_faire_type", "Libellé type savoir-faire"),
    ("savoir_faire_code", "Code savoir-faire"),
    ("savoir_faire_label", "Libellé savoir-faire"),
    ("mode_code", "Code mode exercice"),
    ("mode_label", "Libellé mode exercice"),
    ("siret", "Numéro SIRET site"),
    ("siren", "Numéro SIREN site"),
    ("finess", "Numéro FINESS site"),
    ("finess_ej", "Numéro FINESS établissement juridique"),
    ("structure_id", "Identifiant technique de la structure"),
    ("raison_sociale", "Raison sociale site"),
    ("enseigne", "Enseigne commerciale site"),
    ("line2", "Complément destinataire (coord. structure)"),
    ("line3", "Complément point géographique (coord. structure)"),
    ("street_number", "Numéro Voie (coord. structure)"),
    ("street_repetition", "Indice répétition voie (coord. structure)"),
    ("street_type_code", "Code type de voie (coord. structure)"),
    ("street_type", "Libellé type de voie (coord. structure)"),
    ("street", "Libellé Voie (coord. structure)"),
    ("line5", "Mention distribution (coord. structure)"),
    ("line6", "Bureau cedex (coord. structure)"),
    ("postcode", "Code postal (coord. structure)"),
    ("commune_code", "Code commune (coord. structure)"),
    ("commune", "Libellé commune (coord. structure)"),
    ("country_code", "Code pays (coord. structure)"),
    ("country", "Libellé pays (coord. structure)"),
    ("phone", "Téléphone (coord. structure)"),
    ("phone2", "Téléphone 2 (coord. structure)"),
    ("fax", "Télécopie (coord. structure)"),
    ("email", "Adresse e-mail (coord. structure)"),
    ("department", "Code Département (structure)"),
    ("department_label", "Libellé Département (structure)"),
    ("old_structure_id", "Ancien identifiant de la structure"),
    ("authority", "Autorité d'enregistrement"),
    # the 8 columns below are absent from the older 48-column layout
    ("sector_code", "Code secteur d'activité"),
    ("sector", "Libellé secteur d'activité"),
    ("pharmacist_section_code", "Code section tableau pharmaciens"),
    ("pharmacist_section", "Libellé section tableau pharmaciens"),
    ("role_code", "Code rôle"),
    ("role", "Libellé rôle"),
    ("activity_kind_code", "Code genre activité"),
    ("activity_kind", "Libellé genre activité"),
)
PS_REQUIRED = ("Identifiant PP", "Nom d'exercice", "Prénom d'exercice", "Code profession")


@functools.lru_cache(maxsize=1 << 16)  # names repeat: bounded memory, most lines hit
def fold(text: str) -> str:
    """The search key of a name: no accents, upper case, words of letters and digits.

    `fold("Dupont-Moretti")` and `fold("DUPONT MORETTI")` are both
    "DUPONT MORETTI"; a prefix of the key is a prefix of the name.
    """
    if not text.isascii():
        decomposed = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(_NON_WORD.split(text.upper())).strip()


def _address(text: str) -> str:
    try:
        return normalize_address(text).lower()
    except InvalidAddress as exc:
        raise BadLine(f"invalid mailbox address {text!r}: {exc.reason}") from None


_NON_WORD = re.compile(r"[^0-9A-Z]+")
_DEPARTMENT = re.compile(r"^(?:\d{2,3}|2A|2B)$")


def department_of(value: str, postcode: str) -> str:
    """The department code: the file's when it is one, else from the postcode."""
    value = value.strip().upper()
    if _DEPARTMENT.match(value):
        return value
    code = postcode.strip()
    if len(code) != 5 or not ascii_digits(code):
        return ""
    if code.startswith("97") or code.startswith("98"):
        return code[:3]
    if code.startswith("20"):
        return "2A" if code < "20200" else "2B"
    return code[:2]


def _normalise_header(name: str) -> str:
    return fold(name.replace("\ufeff", ""))


@dataclass(frozen=True)
class Layout:
    """Where each of our columns is in the lines of one file (None: absent)."""

    kind: Kind
    width: int  # fields per line, the trailing empty one included
    positions: tuple[int | None, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c for c, _ in _COLUMNS[self.kind])

    def record(self, fields: list[str]) -> tuple[str, ...]:
        """One line's values in table order, plus the search keys; raises BadLine.
        `fields` (a split line) gets an empty field appended."""
        # a line without the trailing separator of its header is still whole
        short_ok = len(fields) == self.width - 1 and self._trailing_empty
        if len(fields) != self.width and not short_ok:
            raise BadLine(f"{len(fields)} fields instead of {self.width}")
        fields.append("")  # what an absent column reads (`_pick`)
        values = list(map(str.strip, self._pick(fields)))
        if self.kind is Kind.MSSANTE:
            return self._mailbox(values)
        return self._activity(values)

    @functools.cached_property
    def _pick(self) -> Callable[[list[str]], tuple[str, ...]]:
        """The line's fields in table order in one call; an absent column reads the
        empty field appended after the last."""
        return operator.itemgetter(*(-1 if p is None else p for p in self.positions))

    @property
    def _trailing_empty(self) -> bool:
        return self.width - 1 not in self.positions

    def _mailbox(self, v: list[str]) -> tuple[str, ...]:
        kind = v[0].upper()
        if kind not in MAILBOX_TYPES:
            raise BadLine(f"unknown mailbox type {v[0]!r} (expected PER, ORG, APP or CAB)")
        v[0], v[1] = kind, _address(v[1])
        _national_id(v, 2, 3, 4, required=kind == "PER")
        v[29] = department_of(v[29], v[28])  # Département from Code postal when needed
        return (*v, fold(v[9]), fold(v[10]), fold(v[18] or v[19]))

    def _activity(self, v: list[str]) -> tuple[str, ...]:
        _national_id(v, 0, 1, 2, required=True)
        v[44] = department_of(v[44], v[35])
        return (*v, fold(v[7]), fold(v[8]), fold(v[24] or v[25]))


def _national_id(v: list[str], type_at: int, id_at: int, national_at: int, required: bool) -> None:
    """Check and complete the identifier triple: type (0 ADELI, 8 RPPS), id, national id."""
    id_type, identifier, national = v[type_at], v[id_at], v[national_at]
    if not national and id_type and identifier:
        national = v[national_at] = id_type + identifier
    if not national:
        if required:
            raise BadLine("no national id (Identification nationale PP)")
        return
    if not national.isalnum() or len(national) > 20:
        raise BadLine(f"invalid national id {national!r}")
    if not id_type:
        v[type_at] = national[0]
        v[id_at] = identifier or national[1:]
    if v[type_at] == "8" and not (len(v[id_at]) == 11 and ascii_digits(v[id_at])):
        raise BadLine(f"invalid RPPS number {v[id_at]!r} (11 digits expected)")


_COLUMNS = {Kind.MSSANTE: MSSANTE_COLUMNS, Kind.PS: PS_COLUMNS}
_REQUIRED = {Kind.MSSANTE: MSSANTE_REQUIRED, Kind.PS: PS_REQUIRED}


def detect_layout(header_line: str) -> Layout:
    """The layout of a file from its header line; BadHeader names what is expected."""
    names = [_normalise_header(n) for n in header_line.rstrip("\r\n").split("|")]
    index = {name: i for i, name in reversed(list(enumerate(names))) if name}
    for kind in (Kind.MSSANTE, Kind.PS):
        required = [_normalise_header(n) for n in _REQUIRED[kind]]
        if all(r in index for r in required):
            positions = tuple(index.get(_normalise_header(h)) for _, h in _COLUMNS[kind])
            return Layout(kind, len(names), positions)
    raise BadHeader(
        "the header is not one of an Annuaire Santé extraction: expected the columns "
        f"{' | '.join(h for _, h in MSSANTE_COLUMNS)} (Extraction_Correspondance_MSSante) "
        f"or {' | '.join(h for _, h in PS_COLUMNS)} (PS_LibreAcces_Personne_activite, "
        "56 columns, or the first 48 in older files)"
    )
