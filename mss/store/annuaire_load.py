"""Writing an extraction into the spare set of the annuaire's tables, then making it live.

The steps of `mss annuaire import` (`mss.annuaire.importer` drives them, in this
order), for one kind of file (`mssante` or `ps`, see `store/annuaire.py`):
`exclusive` (one import at a time per database), `SpareSet` (the set readers do
not see) emptied, lines appended by batches of one transaction each, `finish`
(lines merged into one mailbox per address and one professional per national
id), `index` (the other indexes, built after the load) and, at the same time
on another connection, `compare` (added, changed, retired against the live
set, in SQL), then `make_live`: one short transaction that readers see
whole. The differences between SQLite and PostgreSQL (advisory locks, ANALYZE,
the merge of professionals) are decided here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from sqlalchemy import update

from mss.errors import InputError, StoreError
from mss.store import annuaire as tables
from mss.store.annuaire_queries import FLIP_LOCK
from mss.store.db import Database
from mss.store.models import metadata
from mss.store.sql import Conn, RawStatement, Tx, describe

MAILBOX_ROW = ("line", *tables.MAILBOX_COLUMNS, *tables.KEY_COLUMNS)
ACTIVITY_ROW = ("line", *tables.ACTIVITY_COLUMNS, *tables.KEY_COLUMNS)
MERGE_CHUNK = 500  # repeated addresses merged per transaction
INDEX_SORT_MEMORY = "256MB"  # PostgreSQL: sorts of the index builds
IMPORT_LOCK = 7303640005  # PostgreSQL advisory lock: one import at a time
_STATE = RawStatement("SELECT live FROM annuaire_state WHERE kind = ?")


class Records(Protocol):
    """A batch of records (`formats.Layout.record`): counted, then taken once, in order."""

    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[Sequence[str]]: ...


def _ddl(statement: str, tx: Tx) -> None:
    tx.conn.exec_driver_sql(statement)


def _ddl_all(statements: list[str], tx: Tx) -> None:
    for statement in statements:
        tx.conn.exec_driver_sql(statement)


def _create_index(statement: str, tx: Tx) -> None:
    if tx.dialect == "postgresql":  # the sort in memory, not in temporary files (the default
        # is 64 MB); the server's memory, for this transaction only, whatever the file's size
        tx.conn.exec_driver_sql(f"SET LOCAL maintenance_work_mem = '{INDEX_SORT_MEMORY}'")
    tx.conn.exec_driver_sql(statement)


def _live_set(db: Database, kind: str) -> str:
    live = db.read_sync(lambda c: _STATE.scalar(c, kind))
    if live is None:
        raise StoreError("the annuaire tables are missing: run the migrations (mss serve)")
    return str(live)


class SpareSet:
    """The set of tables of one kind of file that readers do not see: filled by an import.

    Lines are appended in batches (one transaction each), then indexed, merged
    (one mailbox per address, one professional per national id)."""

    def __init__(self, db: Database, kind: str) -> None:
        self._db = db
        self.kind = kind
        self.live = _live_set(db, kind)
        self.target = "b" if self.live == "a" else "a"
        self.pro = tables.professional_table(kind, self.target)
        row: tuple[str, ...] = MAILBOX_ROW
        self.main = tables.mailbox_table(self.target)
        if kind == "ps":
            self.main, row = tables.activity_table(self.target), ACTIVITY_ROW
        self._main = _Append(self.main, row)
        self._indexes = tables.secondary_indexes(kind, self.target)
        self._line = 0

    def empty(self) -> None:
        """Drop the secondary indexes and every row left by the import before the last."""

        def run(tx: Tx) -> None:
            for name, _table, _columns in self._indexes:
                tx.conn.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")
            if tx.dialect == "postgresql":  # no dead rows left behind; no reader is on them:
                # the flip that made them spare waited for the readers of the old set
                tx.conn.exec_driver_sql(f"TRUNCATE {self.main}, {self.pro}")
                return
            for table in (self.main, self.pro):
                tx.conn.exec_driver_sql(f"DELETE FROM {table}")

        self._db.write_sync(run)

    def append(self, batch: Records) -> None:
        """Add a batch of records in one transaction."""
        start = self._line
        self._line += len(batch)
        self._db.write_sync(partial(self._main, start, batch))

    def finish(self) -> None:
        """Merge the lines into mailboxes (one per address) and professionals (one per
        national id), with the indexes the merges read; what `compare` needs. Repeated
        addresses are merged when only the address index exists: the fewer indexes, the
        cheaper their rows' updates and deletions."""
        if self._db.dialect == "postgresql":  # the row count and keys of the new lines for
            # the merges' plans (a truncated table's statistics say nothing of them)
            self._db.write_sync(partial(_ddl, f"ANALYZE {self.main}"))
        if self.kind == "mssante":
            self._build([i for i in self._indexes if i[2] == ("address",)])
            self.merge_mailboxes()
        # the professionals' merge reads the lines by national id: no sort in memory
        self._build([i for i in self._indexes if i[1] == self.main and i[2] == ("national_id",)])
        self.merge_professionals()
        if self._db.dialect == "postgresql":
            for table in (self.main, self.pro):
                self._db.write_sync(partial(_ddl, f"ANALYZE {table}"))

    def index(self) -> None:
        """Build the indexes the readers search by; `compare` may run meanwhile (it
        reads the merged rows, the builds only add indexes)."""
        merged = {("address",), ("national_id",)}
        self._build([i for i in self._indexes if i[1] == self.main and i[2] not in merged])
        self._build([i for i in self._indexes if i[1] == self.pro])

    def _build(self, indexes: list[tuple[str, str, tuple[str, ...]]]) -> None:
        for name, table, columns in indexes:  # one transaction each: writers wait a moment
            create = f"CREATE INDEX {name} ON {table} ({', '.join(columns)})"
            self._db.write_sync(partial(_create_index, create))

    def merge_mailboxes(self) -> None:
        """An address on several lines becomes one mailbox: its first line, the empty
        fields filled from the next ones, `lines` their number (a few % of addresses)."""
        # one ordered pass over the address index (a few % of addresses repeat)
        repeated = RawStatement(
            f"SELECT address FROM {self.main} GROUP BY address HAVING count(*) > 1"
        )
        duplicates = [r[0] for r in self._db.read_sync(lambda c: repeated.all(c))]
        merge = _MailboxMerge(self.main)
        for start in range(0, len(duplicates), MERGE_CHUNK):
            self._db.write_sync(partial(merge, duplicates[start : start + MERGE_CHUNK]))

    def merge_professionals(self) -> None:
        """One row per national id: its first line's values, gaps filled by the next ones."""
        if self._db.dialect == "postgresql":
            statements = _professionals_by_aggregation(self.main, self.pro)
        else:
            statements = [_professionals_by_conflicts(self.main, self.pro)]
        self._db.write_sync(partial(_ddl_all, statements))

    def compare(self) -> Comparison:
        """What the new set adds, changes and retires against the live one."""
        return self._db.read_sync(lambda c: compare(c, self.kind, self.live, self.target))

    def make_live(self, *, source: str, counts: Mapping[str, int]) -> None:
        """The flip: readers see the new set from this commit on."""
        self._db.write_sync(lambda tx: make_live(tx, self.kind, self.target, source, counts))


class _Append:
    """Appends numbered records to a table of lines: COPY on PostgreSQL, one
    prepared INSERT run over the batch on SQLite (the driver's cursors, no copies)."""

    def __init__(self, table: str, columns: Sequence[str]) -> None:
        names = ", ".join(columns)
        self._insert = f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' for _ in columns)})"
        self._copy = f"COPY {table} ({names}) FROM STDIN"

    def __call__(self, start: int, batch: Records, tx: Tx) -> None:
        raw: Any = tx.conn.connection.driver_connection
        rows = ((start + n, *record) for n, record in enumerate(batch, 1))
        try:
            if tx.dialect == "postgresql":
                with raw.cursor() as cursor, cursor.copy(self._copy) as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                cursor = raw.cursor()
                try:
                    cursor.executemany(self._insert, rows)
                finally:
                    cursor.close()
        except Exception as exc:
            raise StoreError(f"database statement failed: {describe(exc)}") from exc


class _MailboxMerge:
    """Merges the lines of some repeated addresses, in one transaction."""

    def __init__(self, main: str) -> None:
        self.main = main
        # the address is the one column they share: not set, its index is left alone
        self.columns = [c for c in (*tables.MAILBOX_COLUMNS, *tables.KEY_COLUMNS) if c != "address"]
        self._keep = RawStatement(
            f"UPDATE {main} SET {', '.join(f'{c} = ?' for c in self.columns)}, lines = ? "
            "WHERE line = ?"
        )
        self._drop = RawStatement(f"DELETE FROM {main} WHERE line = ?")

    def __call__(self, addresses: list[str], tx: Tx) -> None:
        marks = ", ".join("?" for _ in addresses)
        rows = RawStatement(
            f"SELECT address, line, {', '.join(self.columns)} FROM {self.main} "
            f"WHERE address IN ({marks}) ORDER BY address, line"
        ).all(tx.conn, *addresses)
        kept: list[tuple[Any, ...]] = []
        dropped: list[tuple[Any, ...]] = []
        for _address, group in itertools.groupby(rows, key=lambda row: row[0]):
            first, *others = list(group)
            kept.append((*_first_filled(first[2:], others), 1 + len(others), first[1]))
            dropped += [(row[1],) for row in others]
        self._keep.many(tx.conn, kept)
        self._drop.many(tx.conn, dropped)


def _first_filled(first: Sequence[Any], others: Sequence[Sequence[Any]]) -> list[Any]:
    """The first line's values, each empty one taken from the next line that has it."""
    merged = list(first)
    for row in others:
        merged = [m or v for m, v in zip(merged, row[2:], strict=True)]
    return merged


def _professionals_by_aggregation(main: str, pro: str) -> list[str]:
    """PostgreSQL refuses to touch a row twice in one statement: each national id's first
    line (one sort), then, for the few ids on several lines, the first non-empty value of
    each column in line order, by aggregation."""
    columns = tables.PROFESSIONAL_COLUMNS
    names = ", ".join(columns)
    firsts = ", ".join(
        f"COALESCE((array_agg({c} ORDER BY line) FILTER (WHERE {c} <> ''))[1], '') AS {c}"
        for c in columns[1:]
    )
    repeated = (
        f"SELECT national_id FROM {main} WHERE national_id <> '' "
        "GROUP BY national_id HAVING count(*) > 1"
    )
    return [
        f"INSERT INTO {pro} ({names}) SELECT DISTINCT ON (national_id) {names} "
        f"FROM {main} WHERE national_id <> '' ORDER BY national_id, line",
        f"UPDATE {pro} p SET {', '.join(f'{c} = m.{c}' for c in columns[1:])} "
        f"FROM (SELECT national_id, {firsts} FROM {main} "
        f"WHERE national_id IN ({repeated}) GROUP BY national_id) m "
        "WHERE p.national_id = m.national_id",
    ]


def _professionals_by_conflicts(main: str, pro: str) -> str:
    """SQLite: a sorted INSERT … SELECT whose conflicts fill the gaps, row after row."""
    columns = tables.PROFESSIONAL_COLUMNS
    fills = ", ".join(
        f"{c} = CASE WHEN {pro}.{c} = '' THEN excluded.{c} ELSE {pro}.{c} END" for c in columns[1:]
    )
    return (
        f"INSERT INTO {pro} ({', '.join(columns)}) SELECT {', '.join(columns)} "
        f"FROM {main} WHERE national_id <> '' ORDER BY national_id, line "
        f"ON CONFLICT (national_id) DO UPDATE SET {fills}"
    )


# --- compare and flip ------------------------------------------------------------------------


@dataclass
class Comparison:
    """The new set against the live one: entries (and activities) in it, and the changes."""

    entries: int = 0  # mailboxes (mssante) or professionals (ps)
    activities: int = 0  # ps only
    added: int = 0
    changed: int = 0
    retired: int = 0


def _differs(new: str, old: str, columns: Sequence[str]) -> str:
    return " OR ".join(f"{new}.{c} <> {old}.{c}" for c in columns)


def _count(conn: Conn, sql: str) -> int:
    return int(conn.exec_driver_sql(sql).scalar() or 0)


def _activities_moved(live: str, target: str) -> str:
    """The national ids whose activities differ between the two sets."""
    act_new, act_old = tables.activity_table(target), tables.activity_table(live)
    cols = ", ".join(tables.ACTIVITY_COLUMNS)
    return (
        f"SELECT national_id FROM (SELECT {cols} FROM {act_new} "
        f"EXCEPT SELECT {cols} FROM {act_old}) d1 UNION "
        f"SELECT national_id FROM (SELECT {cols} FROM {act_old} "
        f"EXCEPT SELECT {cols} FROM {act_new}) d2"
    )


def compare(conn: Conn, kind: str, live: str, target: str) -> Comparison:
    """added / changed / retired of the new set against the live one."""
    if kind == "mssante":
        return _compare_mailboxes(conn, live, target)
    return _compare_professionals(conn, live, target)


def _compare_mailboxes(conn: Conn, live: str, target: str) -> Comparison:
    new, old = tables.mailbox_table(target), tables.mailbox_table(live)
    found = Comparison(entries=_count(conn, f"SELECT count(*) FROM {new}"))
    changed = _differs("n", "o", (*tables.MAILBOX_COLUMNS, "lines"))
    return _changes(conn, found, new, old, "address", changed)


def _compare_professionals(conn: Conn, live: str, target: str) -> Comparison:
    new = tables.professional_table("ps", target)
    old = tables.professional_table("ps", live)
    found = Comparison(
        entries=_count(conn, f"SELECT count(*) FROM {new}"),
        activities=_count(conn, f"SELECT count(*) FROM {tables.activity_table(target)}"),
    )
    moved = _activities_moved(live, target)
    changed = f"{_differs('n', 'o', tables.PROFESSIONAL_COLUMNS)} OR n.national_id IN ({moved})"
    return _changes(conn, found, new, old, "national_id", changed)


def _changes(
    conn: Conn, found: Comparison, new: str, old: str, key: str, changed: str
) -> Comparison:
    """One join of the two sets on their key: the keys in both, those whose row differs;
    the others were added (only in the new set) or retired (only in the old one)."""
    both, differ = conn.exec_driver_sql(
        f"SELECT count(*), coalesce(sum(CASE WHEN {changed} THEN 1 ELSE 0 END), 0) "
        f"FROM {new} n JOIN {old} o ON o.{key} = n.{key}"
    ).one()
    found.added = found.entries - int(both)
    found.retired = _count(conn, f"SELECT count(*) FROM {old}") - int(both)
    found.changed = int(differ)
    return found


def make_live(tx: Tx, kind: str, target: str, source: str, counts: Mapping[str, int]) -> None:
    """Make the new set live: the one statement readers can see."""
    state = metadata.tables["annuaire_state"]
    if tx.conn.dialect.name == "postgresql":  # wait for the reads of the old set to end
        tx.conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({FLIP_LOCK})")
    values = {"live": target, "source": source, "imported_at": dt.datetime.now(dt.UTC), **counts}
    tx.conn.execute(update(state).where(state.c.kind == kind).values(**values))


# --- one import at a time --------------------------------------------------------------------

_BUSY = "another annuaire import is running on this database"


def exclusive(db: Database) -> contextlib.AbstractContextManager[None]:
    """One import at a time per database (they would fill the same spare set)."""
    return _advisory_lock(db) if db.dialect == "postgresql" else _file_lock(db)


@contextlib.contextmanager
def _advisory_lock(db: Database) -> Iterator[None]:
    with db.write_engine.connect() as conn:
        got = conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({IMPORT_LOCK})").scalar()
        conn.commit()
        if not got:
            raise InputError(_BUSY)
        try:
            yield
        finally:
            conn.exec_driver_sql(f"SELECT pg_advisory_unlock({IMPORT_LOCK})")
            conn.commit()


@contextlib.contextmanager
def _file_lock(db: Database) -> Iterator[None]:
    import fcntl

    database = db.write_engine.url.database or "annuaire"
    with open(database + "-annuaire.lock", "a+b") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(_BUSY) from None
        yield
