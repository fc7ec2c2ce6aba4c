"""Lookups in the annuaire: mailboxes and professionals, as plain JSON-ready dicts.

Every function takes a read transaction (`Conn`, one snapshot) and passes it
to `store/annuaire_queries.py`, which reads which set of tables is live, then
queries that set, so that a lookup running during an import sees the old
directory or the new one, whole. This module owns the query (`Query`, checked
when made), its normalised form for the store (`criteria`) and the shaping of
rows into dicts.

Two kinds of entries:
- a mailbox (`Extraction_Correspondance_MSSante`): address, type (PER, ORG,
  APP, CAB), owner, profession, structure, postal address;
- a professional, by national id: from `PS_LibreAcces_Personne_activite`
  when it was imported (with the activities), else from the PER lines of the
  mailbox extraction; with every mailbox bearing that national id.

Names are matched as prefixes of their `fold()`ed form (case and accents
ignored); a query combines its criteria with AND; results come by pages,
ordered by name.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mss.annuaire.formats import MAILBOX_TYPES, fold
from mss.core.digits import ascii_digits
from mss.errors import InputError
from mss.store import annuaire as tables
from mss.store import annuaire_queries as queries
from mss.store.sql import Conn

MAX_PAGE = 500


@dataclass(frozen=True)
class Query:
    mailbox: str | None = None  # exact address, any case
    national_id: str | None = None  # national id, RPPS (11 digits) or ADELI (9)
    name: str | None = None  # prefix of the family name, given name or structure name
    family: str | None = None  # prefix
    given: str | None = None  # prefix
    profession: tuple[str, ...] = ()  # profession codes (TRE_G15), any of
    savoir_faire: tuple[str, ...] = ()  # savoir-faire codes, any of
    postcode: str | None = None  # a postcode or its prefix
    department: str | None = None
    mailbox_type: tuple[str, ...] = ()  # PER, ORG, APP, CAB, any of
    structure: str | None = None  # structure id (FINESS, SIRET, technical id)
    offset: int = 0
    limit: int = 50

    def __post_init__(self) -> None:
        if self.offset < 0:
            raise InputError("the offset cannot be negative")
        if not 0 <= self.limit <= MAX_PAGE:
            raise InputError(f"a page holds 0 to {MAX_PAGE} entries")
        for kind in self.mailbox_type:
            if kind.upper() not in MAILBOX_TYPES:
                raise InputError(f"unknown mailbox type {kind!r} (PER, ORG, APP or CAB)")

    @property
    def empty(self) -> bool:
        return not any(
            (self.mailbox, self.national_id, self.name, self.family, self.given, self.profession,
             self.savoir_faire, self.postcode, self.department, self.mailbox_type,
             self.structure)
        )  # fmt: skip


@dataclass
class Page:
    total: int
    offset: int
    items: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"total": self.total, "offset": self.offset, "items": self.items}


def national_id_of(value: str) -> str:
    """A national id from what a user types: 810003456789, 10003456789 (RPPS), or ADELI."""
    value = value.strip()
    if len(value) == 11 and ascii_digits(value):
        return "8" + value
    if len(value) == 9:
        return "0" + value
    return value


def department_postcodes(department: str) -> tuple[str, str]:
    """The postcodes of a department, as a range [low, high)."""
    d = department.strip().upper()
    if d == "2A":
        return "20000", "20200"
    if d == "2B":
        return "20200", "20700"
    if not ascii_digits(d) or len(d) not in (2, 3):
        raise InputError(f"unknown department {department!r} (e.g. 75, 2A, 974)")
    return d, d + "~"


def _department(value: str) -> queries.Department:
    """A department: its range of postcodes, or the department given by the file."""
    return queries.Department(*department_postcodes(value), value.strip().upper())


def _key(text: str | None) -> str | None:
    return fold(text) if text else None


def _stripped(text: str | None) -> str | None:
    return text.strip() if text else None


def criteria(q: Query) -> queries.Criteria:
    """The store's form of a query: address in lower case, names folded, ids completed."""
    return queries.Criteria(
        address=q.mailbox.strip().lower() if q.mailbox else None,
        national_id=national_id_of(q.national_id) if q.national_id else None,
        name=_key(q.name), family=_key(q.family), given=_key(q.given),
        profession=q.profession, savoir_faire=q.savoir_faire,
        postcode=_stripped(q.postcode),
        department=_department(q.department) if q.department else None,
        kinds=tuple(k.upper() for k in q.mailbox_type),
        structure=_stripped(q.structure), offset=q.offset, limit=q.limit,
    )  # fmt: skip


# --- mailboxes -------------------------------------------------------------------------------


def search_mailboxes(conn: Conn, q: Query) -> Page:
    found = queries.search_mailboxes(conn, criteria(q))
    return Page(found.total, q.offset, [mailbox_dict(r) for r in found.rows])


def mailbox(conn: Conn, address: str) -> dict[str, Any] | None:
    """One mailbox by address (any case), or None."""
    row = queries.mailbox_row(conn, address.strip().lower())
    return mailbox_dict(row) if row is not None else None


def is_listed(conn: Conn, address: str) -> bool:
    """Whether a mailbox of the annuaire has this address (the sender check of DOMAIN.md §2)."""
    return queries.has_mailbox(conn, address.lower())


def _code(code: str, label: str) -> dict[str, str] | None:
    return {"code": code, "label": label} if code or label else None


def _postal(values: dict[str, str]) -> dict[str, Any]:
    street = " ".join(
        v for v in (values["street_number"], values["street_repetition"],
                    values.get("street_type", ""), values["street"]) if v
    )  # fmt: skip
    lines = [v for v in (values["line2"], values["line3"], street, values["line5"],
                         values["line6"]) if v]  # fmt: skip
    return {
        "lines": lines,
        "postcode": values["postcode"],
        "department": values["department"],
        "country": values.get("country", ""),
    }


def _ids(national_id: str, id_type: str, identifier: str) -> dict[str, str | None]:
    return {
        "national_id": national_id or None,
        "rpps": identifier if id_type == "8" else None,
        "adeli": identifier if id_type == "0" else None,
    }


def _person_fields(v: dict[str, str]) -> dict[str, Any]:
    """Who a mailbox line or a professional names: ids, civilité, names, profession."""
    return {
        **_ids(v["national_id"], v["id_type"], v["identifier"]),
        "civilite": v["civilite"] or None,
        "family": v["family"] or None,
        "given": v["given"] or None,
        "category": _code(v["category_code"], v["category_label"]),
        "profession": _code(v["profession_code"], v["profession_label"]),
        "savoir_faire": _code(v["savoir_faire_code"], v["savoir_faire_label"]),
    }


def mailbox_dict(row: Sequence[Any]) -> dict[str, Any]:
    v = dict(zip(tables.MAILBOX_COLUMNS, row, strict=False))
    return {
        "address": v["address"],
        "type": v["kind"],
        **_person_fields(v),
        "service": v["service"] or None,
        "dematerialisation": v["dematerialisation"].upper() in ("O", "OUI", "Y", "TRUE", "1"),
        "structure": {
            "id_type": v["structure_id_type"] or None,
            "id": v["structure_id"] or None,
            "raison_sociale": v["raison_sociale"] or None,
            "enseigne": v["enseigne"] or None,
        },
        "postal_address": _postal(v),
        "lines": int(row[len(tables.MAILBOX_COLUMNS)]),
    }


# --- professionals ---------------------------------------------------------------------------


def search_professionals(conn: Conn, q: Query) -> Page:
    """Professionals matching `q`, each with its mailboxes and activities."""
    found = queries.search_professionals(conn, criteria(q))
    return Page(found.total, q.offset, _professionals(found))


def professional(conn: Conn, national_id: str) -> dict[str, Any] | None:
    page = search_professionals(conn, Query(national_id=national_id, limit=1))
    return page.items[0] if page.items else None


_MAILBOX_NATIONAL_ID = tables.MAILBOX_COLUMNS.index("national_id")
_ACTIVITY_NATIONAL_ID = tables.ACTIVITY_COLUMNS.index("national_id")


def _professionals(found: queries.ProfessionalRows) -> list[dict[str, Any]]:
    mailboxes = _by_national_id(found.mailboxes, mailbox_dict, _MAILBOX_NATIONAL_ID)
    activities = _by_national_id(found.activities, activity_dict, _ACTIVITY_NATIONAL_ID)
    return [_professional(row, mailboxes, activities) for row in found.rows]


def _professional(
    row: Sequence[Any],
    mailboxes: dict[str, list[dict[str, Any]]],
    activities: dict[str, list[dict[str, Any]]],
) -> dict[str, Any]:
    v = dict(zip(tables.PROFESSIONAL_COLUMNS, row, strict=False))
    return {
        **_person_fields(v),
        "source": row[len(tables.PROFESSIONAL_COLUMNS)],
        "mailboxes": mailboxes.get(v["national_id"], []),
        "activities": activities.get(v["national_id"], []),
    }


def _by_national_id(
    rows: Iterable[Sequence[Any]], build: Any, at: int
) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row[at], []).append(build(row))
    return grouped


def activity_dict(row: Sequence[Any]) -> dict[str, Any]:
    v = dict(zip(tables.ACTIVITY_COLUMNS, row, strict=True))
    return {
        "profession": _code(v["profession_code"], v["profession_label"]),
        "savoir_faire": _code(v["savoir_faire_code"], v["savoir_faire_label"]),
        "mode": _code(v["mode_code"], v["mode_label"]),
        "role": _code(v["role_code"], v["role"]),
        "sector": _code(v["sector_code"], v["sector"]),
        "structure": {
            "id": v["structure_id"] or None,
            "siret": v["siret"] or None,
            "siren": v["siren"] or None,
            "finess": v["finess"] or None,
            "finess_ej": v["finess_ej"] or None,
            "raison_sociale": v["raison_sociale"] or None,
            "enseigne": v["enseigne"] or None,
        },
        "postal_address": {**_postal(v), "commune": v["commune"] or None},
        "phone": v["phone"] or None,
        "email": v["email"] or None,
    }


def status(conn: Conn) -> list[dict[str, Any]]:
    """What each kind of extraction holds: source file, date, counts of the last import."""
    return [_state(row) for row in queries.import_states(conn)]


def _state(row: Sequence[Any]) -> dict[str, Any]:
    at = queries.STATE_COLUMNS.index("imported_at")
    values = (str(v) if i == at and v else v for i, v in enumerate(row))
    return dict(zip(queries.STATE_COLUMNS, values, strict=True))
