"""Lookups in the annuaire: mailboxes and professionals, as plain JSON-ready dicts.

Every function takes a Connection in a read transaction (one snapshot): it
reads which set of tables is live, then queries that set, so that a lookup
running during an import sees the old directory or the new one, whole.

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

from sqlalchemy import Connection

from mss.annuaire.formats import MAILBOX_TYPES, fold
from mss.errors import InputError
from mss.store import annuaire as tables
from mss.store.db import RawStatement

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
    if len(value) == 11 and value.isdigit():
        return "8" + value
    if len(value) == 9:
        return "0" + value
    return value


def _prefix(column: str, text: str, params: list[Any]) -> str:
    key = fold(text)
    if not key:  # only punctuation: no name starts with it
        return "1 = 0"
    params += [key, key + "~"]  # keys hold [0-9A-Z ] only: "~" sorts after all of them
    return f"({column} >= ? AND {column} < ?)"


def _any_of(column: str, values: Sequence[str], params: list[Any]) -> str:
    params += list(values)
    return f"{column} IN ({', '.join('?' for _ in values)})"


_LIVE = RawStatement("SELECT kind, live FROM annuaire_state")
# PostgreSQL reads in READ COMMITTED: each statement its own snapshot. A shared
# lock held to the end of the read transaction keeps an import from making
# another set live meanwhile (`importer._flip` takes it exclusively).
FLIP_LOCK = 7303640006
_SHARE = RawStatement(f"SELECT pg_advisory_xact_lock_shared({FLIP_LOCK})")


def live_sets(conn: Connection) -> dict[str, str]:
    """Which set of tables is live for each kind of file, for this read transaction."""
    if conn.dialect.name == "postgresql":
        _SHARE.all(conn)
    return dict(_LIVE.all(conn))


# --- mailboxes -------------------------------------------------------------------------------

_MAILBOX_COLUMNS = ", ".join(tables.MAILBOX_COLUMNS)


def _person(q: Query, params: list[Any], name_keys: Sequence[str]) -> list[str]:
    """The criteria on who: national id, names (`name` on any of `name_keys`), profession."""
    where = []
    if q.national_id:
        params.append(national_id_of(q.national_id))
        where.append("national_id = ?")
    if q.name:
        where.append(f"({' OR '.join(_prefix(k, q.name, params) for k in name_keys)})")
    if q.family:
        where.append(_prefix("family_key", q.family, params))
    if q.given:
        where.append(_prefix("given_key", q.given, params))
    if q.profession:
        where.append(_any_of("profession_code", q.profession, params))
    if q.savoir_faire:
        where.append(_any_of("savoir_faire_code", q.savoir_faire, params))
    return where


def _mailbox_where(q: Query, params: list[Any]) -> list[str]:
    where = []
    if q.mailbox:
        params.append(q.mailbox.strip().lower())
        where.append("address = ?")
    where += _person(q, params, ("family_key", "given_key", "org_key"))
    if q.postcode:
        where.append(_postcode("postcode", q.postcode, params))
    if q.department:
        where.append(_department("postcode", "department", q.department, params))
    if q.mailbox_type:
        where.append(_any_of("kind", [k.upper() for k in q.mailbox_type], params))
    if q.structure:
        params.append(q.structure.strip())
        where.append("structure_id = ?")
    return where


def department_postcodes(department: str) -> tuple[str, str]:
    """The postcodes of a department, as a range [low, high)."""
    d = department.strip().upper()
    if d == "2A":
        return "20000", "20200"
    if d == "2B":
        return "20200", "20700"
    if not d.isdigit() or len(d) not in (2, 3):
        raise InputError(f"unknown department {department!r} (e.g. 75, 2A, 974)")
    return d, d + "~"


def _department(postcode: str, column: str, value: str, params: list[Any]) -> str:
    """A department: a range of the postcode index, or the department given by the file."""
    low, high = department_postcodes(value)
    params += [low, high, value.strip().upper()]
    return f"(({postcode} >= ? AND {postcode} < ?) OR {column} = ?)"


def _postcode(column: str, value: str, params: list[Any]) -> str:
    value = value.strip()
    if len(value) == 5:
        params.append(value)
        return f"{column} = ?"
    params += [value, value + "~"]
    return f"({column} >= ? AND {column} < ?)"


def _select(conn: Connection, sql: str, params: Sequence[Any]) -> list[Any]:
    return RawStatement(sql).all(conn, *params)


def search_mailboxes(conn: Connection, q: Query) -> Page:
    table = tables.mailbox_table(live_sets(conn)["mssante"])
    params: list[Any] = []
    where = _mailbox_where(q, params)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    total = _select(conn, f"SELECT count(*) FROM {table}{clause}", params)[0][0]
    rows = _select(
        conn,
        f"SELECT {_MAILBOX_COLUMNS}, lines FROM {table}{clause} "
        "ORDER BY family_key, given_key, org_key, address LIMIT ? OFFSET ?",
        [*params, q.limit, q.offset],
    )
    return Page(int(total), q.offset, [mailbox_dict(r) for r in rows])


def mailbox(conn: Connection, address: str) -> dict[str, Any] | None:
    """One mailbox by address (any case), or None."""
    table = tables.mailbox_table(live_sets(conn)["mssante"])
    rows = _select(
        conn,
        f"SELECT {_MAILBOX_COLUMNS}, lines FROM {table} WHERE address = ?",
        [address.strip().lower()],
    )
    return mailbox_dict(rows[0]) if rows else None


def is_listed(conn: Connection, address: str) -> bool:
    """Whether a mailbox of the annuaire has this address (the sender check of DOMAIN.md §2)."""
    table = tables.mailbox_table(live_sets(conn)["mssante"])
    return bool(_select(conn, f"SELECT 1 FROM {table} WHERE address = ?", [address.lower()]))


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

_PRO_COLUMNS = ", ".join(tables.PROFESSIONAL_COLUMNS)


def _pro_where(q: Query, params: list[Any], sets: dict[str, str]) -> list[str]:
    mailboxes = tables.mailbox_table(sets["mssante"])
    activities = tables.activity_table(sets["ps"])
    where = _person(q, params, ("family_key", "given_key"))
    if q.mailbox:
        params.append(q.mailbox.strip().lower())
        where.append(f"national_id IN (SELECT national_id FROM {mailboxes} WHERE address = ?)")
    if q.mailbox_type:
        sub = _any_of("kind", [k.upper() for k in q.mailbox_type], params)
        where.append(f"national_id IN (SELECT national_id FROM {mailboxes} WHERE {sub})")
    for column, value in (("postcode", q.postcode), ("department", q.department),
                          ("structure_id", q.structure)):  # fmt: skip
        if not value:
            continue
        subs = []
        for table in (activities, mailboxes):
            if column == "postcode":
                cond = _postcode("postcode", value, params)
            elif column == "department":
                cond = _department("postcode", "department", value, params)
            else:
                params.append(value.strip())
                cond = f"{column} = ?"
            subs.append(f"SELECT national_id FROM {table} WHERE {cond}")
        where.append(f"national_id IN ({' UNION '.join(subs)})")
    return where


def search_professionals(conn: Connection, q: Query) -> Page:
    """Professionals matching `q`, each with its mailboxes and activities."""
    sets = live_sets(conn)
    ps = tables.professional_table("ps", sets["ps"])
    mss = tables.professional_table("mssante", sets["mssante"])
    params_ps: list[Any] = []
    where_ps = _pro_where(q, params_ps, sets)
    params_mss: list[Any] = []
    where_mss = [
        *_pro_where(q, params_mss, sets),
        f"NOT EXISTS (SELECT 1 FROM {ps} p WHERE p.national_id = m.national_id)",
    ]
    clause_ps = f" WHERE {' AND '.join(where_ps)}" if where_ps else ""
    union = (
        f"SELECT {_PRO_COLUMNS}, 'ps' AS source FROM {ps}{clause_ps} UNION ALL "
        f"SELECT {_PRO_COLUMNS}, 'mssante' AS source FROM {mss} m WHERE {' AND '.join(where_mss)}"
    )
    params = [*params_ps, *params_mss]
    total = _select(conn, f"SELECT count(*) FROM ({union}) u", params)[0][0]
    rows = _select(
        conn,
        f"SELECT * FROM ({union}) u ORDER BY family_key, given_key, national_id LIMIT ? OFFSET ?",
        [*params, q.limit, q.offset],
    )
    return Page(int(total), q.offset, _professionals(conn, sets, rows))


def professional(conn: Connection, national_id: str) -> dict[str, Any] | None:
    page = search_professionals(conn, Query(national_id=national_id, limit=1))
    return page.items[0] if page.items else None


def _professionals(
    conn: Connection, sets: dict[str, str], rows: Sequence[Sequence[Any]]
) -> list[dict[str, Any]]:
    ids = [r[0] for r in rows]
    mailboxes = _by_national_id(
        _in(conn, tables.mailbox_table(sets["mssante"]), f"{_MAILBOX_COLUMNS}, lines", ids),
        mailbox_dict,
        4,
    )
    activities = _by_national_id(
        _in(conn, tables.activity_table(sets["ps"]), ", ".join(tables.ACTIVITY_COLUMNS), ids),
        activity_dict,
        2,
    )
    out = []
    for row in rows:
        v = dict(zip(tables.PROFESSIONAL_COLUMNS, row, strict=False))
        out.append(
            {
                **_person_fields(v),
                "source": row[len(tables.PROFESSIONAL_COLUMNS)],
                "mailboxes": mailboxes.get(v["national_id"], []),
                "activities": activities.get(v["national_id"], []),
            }
        )
    return out


def _in(conn: Connection, table: str, columns: str, ids: list[str]) -> list[Any]:
    if not ids:
        return []
    marks = ", ".join("?" for _ in ids)
    order = "address" if "address" in columns else "line"
    return _select(
        conn, f"SELECT {columns} FROM {table} WHERE national_id IN ({marks}) ORDER BY {order}", ids
    )


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


def status(conn: Connection) -> list[dict[str, Any]]:
    """What each kind of extraction holds: source file, date, counts of the last import."""
    rows = RawStatement(
        "SELECT kind, source, imported_at, entries, lines, added, changed, retired, rejected "
        "FROM annuaire_state ORDER BY kind"
    ).all(conn)
    keys = ("kind", "source", "imported_at", "entries", "lines", "added", "changed", "retired",
            "rejected")  # fmt: skip
    return [dict(zip(keys, (str(v) if i == 2 and v else v for i, v in enumerate(r)), strict=True))
            for r in rows]  # fmt: skip
