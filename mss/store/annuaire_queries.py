"""Reads of the annuaire: the live set, mailbox and professional searches, the import state.

Every function takes a read transaction (`Conn`, one snapshot): it reads which
set of tables is live (`store/annuaire.py`), then queries that set, so that a
read running during an import sees the old directory or the new one, whole.

What to look for arrives as `Criteria`, already normalised by
`mss.annuaire.lookup` (an address in lower case, names folded into search keys,
a department as its range of postcodes); rows come back in the column order of
`store/annuaire.py`, for the caller to shape. A name is matched as a prefix of
its key, criteria combine with AND, results come by pages ordered by name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

from mss.store import annuaire as tables
from mss.store.sql import Conn, RawStatement

_LIVE = RawStatement("SELECT kind, live FROM annuaire_state")
# PostgreSQL reads in READ COMMITTED: each statement its own snapshot. A shared
# lock held to the end of the read transaction keeps an import from making
# another set live meanwhile (`annuaire_load.make_live` takes it exclusively).
# Reads run in autocommit (`Database.read`): this one opens its transaction, which
# the end of the read commits (and so releases the lock).
FLIP_LOCK = 7303640006
_SHARE = RawStatement(f"SELECT pg_advisory_xact_lock_shared({FLIP_LOCK})")


def live_sets(conn: Conn) -> dict[str, str]:
    """Which set of tables is live for each kind of file, for this read transaction."""
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        if raw is not None and raw.info.transaction_status.name == "IDLE":
            raw.execute("BEGIN")
        _SHARE.all(conn)
    return dict(_LIVE.all(conn))


class Department(NamedTuple):
    """A department as the search sees it: its postcodes [low, high), and its code."""

    low: str
    high: str
    code: str


@dataclass(frozen=True, kw_only=True)
class Criteria:
    """What a search asks, normalised. None: not asked; a name key "" matches nothing."""

    address: str | None = None  # lower case
    national_id: str | None = None
    name: str | None = None  # folded key, matched on every name key
    family: str | None = None  # folded key
    given: str | None = None  # folded key
    profession: tuple[str, ...] = ()
    savoir_faire: tuple[str, ...] = ()
    postcode: str | None = None  # 5 characters: equal; fewer: a prefix
    department: Department | None = None
    kinds: tuple[str, ...] = ()  # mailbox types, upper case
    structure: str | None = None
    offset: int = 0
    limit: int = 50


class Rows(NamedTuple):
    """One page of rows and the number of rows matching in all."""

    total: int
    rows: list[Any]


class ProfessionalRows(NamedTuple):
    """One page of professionals, with the mailboxes and activities of their national ids."""

    total: int
    rows: list[Any]  # PROFESSIONAL_COLUMNS, then the source ('ps' or 'mssante')
    mailboxes: list[Any]  # MAILBOX_COLUMNS, then lines
    activities: list[Any]  # ACTIVITY_COLUMNS


# --- conditions ------------------------------------------------------------------------------


def _equals(column: str, value: str, params: list[Any]) -> str:
    params.append(value)
    return f"{column} = ?"


def _prefix(column: str, key: str, params: list[Any]) -> str:
    if not key:  # only punctuation: no name starts with it
        return "1 = 0"
    params += [key, key + "~"]  # keys hold [0-9A-Z ] only: "~" sorts after all of them
    return f"({column} >= ? AND {column} < ?)"


def _any_of(column: str, values: Sequence[str], params: list[Any]) -> str:
    params += list(values)
    return f"{column} IN ({', '.join('?' for _ in values)})"


def _postcode(column: str, value: str, params: list[Any]) -> str:
    if len(value) == 5:
        return _equals(column, value, params)
    params += [value, value + "~"]
    return f"({column} >= ? AND {column} < ?)"


def _department(postcode: str, column: str, department: Department, params: list[Any]) -> str:
    """A department: a range of the postcode index, or the department given by the file."""
    params += [department.low, department.high, department.code]
    return f"(({postcode} >= ? AND {postcode} < ?) OR {column} = ?)"


def _person(c: Criteria, params: list[Any], name_keys: Sequence[str]) -> list[str]:
    """The criteria on who: national id, names (`name` on any of `name_keys`), profession."""
    where = []
    if c.national_id is not None:
        where.append(_equals("national_id", c.national_id, params))
    if c.name is not None:
        where.append(f"({' OR '.join(_prefix(k, c.name, params) for k in name_keys)})")
    if c.family is not None:
        where.append(_prefix("family_key", c.family, params))
    if c.given is not None:
        where.append(_prefix("given_key", c.given, params))
    if c.profession:
        where.append(_any_of("profession_code", c.profession, params))
    if c.savoir_faire:
        where.append(_any_of("savoir_faire_code", c.savoir_faire, params))
    return where


def _places(c: Criteria) -> list[Callable[[list[Any]], str]]:
    """The criteria on where, each a condition on a table of lines (mailboxes, activities)."""
    places: list[Callable[[list[Any]], str]] = []
    if c.postcode is not None:
        places.append(partial(_postcode, "postcode", c.postcode))
    if c.department is not None:
        places.append(partial(_department, "postcode", "department", c.department))
    if c.structure is not None:
        places.append(partial(_equals, "structure_id", c.structure))
    return places


def _clause(where: list[str]) -> str:
    return f" WHERE {' AND '.join(where)}" if where else ""


def _select(conn: Conn, sql: str, params: Sequence[Any]) -> list[Any]:
    return RawStatement(sql).all(conn, *params)


# --- mailboxes -------------------------------------------------------------------------------

_MAILBOX_COLUMNS = ", ".join(tables.MAILBOX_COLUMNS)


def _mailbox_where(c: Criteria, params: list[Any]) -> list[str]:
    where = []
    if c.address is not None:
        where.append(_equals("address", c.address, params))
    where += _person(c, params, ("family_key", "given_key", "org_key"))
    if c.postcode is not None:
        where.append(_postcode("postcode", c.postcode, params))
    if c.department is not None:
        where.append(_department("postcode", "department", c.department, params))
    if c.kinds:
        where.append(_any_of("kind", c.kinds, params))
    if c.structure is not None:
        where.append(_equals("structure_id", c.structure, params))
    return where


def search_mailboxes(conn: Conn, c: Criteria) -> Rows:
    """A page of mailbox rows (MAILBOX_COLUMNS, then lines), ordered by name."""
    table = tables.mailbox_table(live_sets(conn)["mssante"])
    params: list[Any] = []
    clause = _clause(_mailbox_where(c, params))
    total = _select(conn, f"SELECT count(*) FROM {table}{clause}", params)[0][0]
    rows = _select(
        conn,
        f"SELECT {_MAILBOX_COLUMNS}, lines FROM {table}{clause} "
        "ORDER BY family_key, given_key, org_key, address LIMIT ? OFFSET ?",
        [*params, c.limit, c.offset],
    )
    return Rows(int(total), rows)


def mailbox_row(conn: Conn, address: str) -> Any:
    """The row of the mailbox with this (lower-case) address, or None."""
    table = tables.mailbox_table(live_sets(conn)["mssante"])
    rows = _select(conn, f"SELECT {_MAILBOX_COLUMNS}, lines FROM {table} WHERE address = ?",
                   [address])  # fmt: skip
    return rows[0] if rows else None


def has_mailbox(conn: Conn, address: str) -> bool:
    """Whether a mailbox has exactly this address."""
    table = tables.mailbox_table(live_sets(conn)["mssante"])
    return bool(_select(conn, f"SELECT 1 FROM {table} WHERE address = ?", [address]))


# --- professionals ---------------------------------------------------------------------------

_PRO_COLUMNS = ", ".join(tables.PROFESSIONAL_COLUMNS)


def _pro_where(c: Criteria, params: list[Any], sets: dict[str, str]) -> list[str]:
    mailboxes = tables.mailbox_table(sets["mssante"])
    activities = tables.activity_table(sets["ps"])
    where = _person(c, params, ("family_key", "given_key"))
    if c.address is not None:
        cond = _equals("address", c.address, params)
        where.append(f"national_id IN (SELECT national_id FROM {mailboxes} WHERE {cond})")
    if c.kinds:
        sub = _any_of("kind", c.kinds, params)
        where.append(f"national_id IN (SELECT national_id FROM {mailboxes} WHERE {sub})")
    for place in _places(c):
        subs = [
            f"SELECT national_id FROM {t} WHERE {place(params)}" for t in (activities, mailboxes)
        ]
        where.append(f"national_id IN ({' UNION '.join(subs)})")
    return where


def _professionals(c: Criteria, sets: dict[str, str]) -> tuple[str, list[Any]]:
    """The professionals of the `ps` file, then those only in the mailbox extraction."""
    ps = tables.professional_table("ps", sets["ps"])
    mss = tables.professional_table("mssante", sets["mssante"])
    params_ps: list[Any] = []
    where_ps = _pro_where(c, params_ps, sets)
    params_mss: list[Any] = []
    where_mss = [
        *_pro_where(c, params_mss, sets),
        f"NOT EXISTS (SELECT 1 FROM {ps} p WHERE p.national_id = m.national_id)",
    ]
    union = (
        f"SELECT {_PRO_COLUMNS}, 'ps' AS source FROM {ps}{_clause(where_ps)} UNION ALL "
        f"SELECT {_PRO_COLUMNS}, 'mssante' AS source FROM {mss} m WHERE {' AND '.join(where_mss)}"
    )
    return union, [*params_ps, *params_mss]


def search_professionals(conn: Conn, c: Criteria) -> ProfessionalRows:
    """A page of professionals, with every mailbox and activity of their national ids."""
    sets = live_sets(conn)
    union, params = _professionals(c, sets)
    total = _select(conn, f"SELECT count(*) FROM ({union}) u", params)[0][0]
    rows = _select(
        conn,
        f"SELECT * FROM ({union}) u ORDER BY family_key, given_key, national_id LIMIT ? OFFSET ?",
        [*params, c.limit, c.offset],
    )
    ids = [r[0] for r in rows]
    mailboxes = _lines_of(conn, tables.mailbox_table(sets["mssante"]), f"{_MAILBOX_COLUMNS}, lines",
                          ids)  # fmt: skip
    activities = _lines_of(
        conn, tables.activity_table(sets["ps"]), ", ".join(tables.ACTIVITY_COLUMNS), ids
    )
    return ProfessionalRows(int(total), rows, mailboxes, activities)


def _lines_of(conn: Conn, table: str, columns: str, ids: list[str]) -> list[Any]:
    if not ids:
        return []
    marks = ", ".join("?" for _ in ids)
    order = "address" if "address" in columns else "line"
    return _select(
        conn, f"SELECT {columns} FROM {table} WHERE national_id IN ({marks}) ORDER BY {order}", ids
    )


# --- the import state ------------------------------------------------------------------------

STATE_COLUMNS = ("kind", "source", "imported_at", "entries", "lines", "added", "changed",
                 "retired", "rejected")  # fmt: skip
_STATES = RawStatement(f"SELECT {', '.join(STATE_COLUMNS)} FROM annuaire_state ORDER BY kind")


def import_states(conn: Conn) -> list[Any]:
    """One row (STATE_COLUMNS) per kind of extraction: what its last import did."""
    return _STATES.all(conn)
