"""`mss annuaire import`: load national extraction files into the annuaire.

Files are read as bytes, one line at a time (plain `.txt`, or the `.txt`
inside a published `.zip`), so memory stays constant whatever their size.
Every file of one kind given to one import is one extraction: it replaces
the previous one. The rows go to the set of tables that is not live (see
`store/annuaire.py`) in batches of one transaction each; the indexes are
built after the load; the summary (added, changed, retired) is computed in
SQL against the live set; then one short transaction makes the new set live.
Readers see the old directory until that commit and the new one after it.

A line that cannot be imported is rejected with its number and reason and
the import goes on; a file whose header is not a known layout is refused
before anything is written.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import itertools
import logging
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any, cast

from sqlalchemy import Connection, update

from mss.annuaire.formats import BadHeader, BadLine, Kind, Layout, detect_layout
from mss.annuaire.lookup import FLIP_LOCK
from mss.errors import InputError, StoreError
from mss.store import annuaire as tables
from mss.store.db import Database, RawStatement, Tx
from mss.store.models import metadata

log = logging.getLogger("mss.annuaire")

BATCH = 10_000
KEEP_REJECTS = 1000  # rejected lines kept for the report (all are counted)


@dataclass(frozen=True)
class Rejected:
    source: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.reason}"


@dataclass
class Summary:
    """What an import did to one kind of extraction."""

    kind: str
    sources: list[str]
    lines: int = 0  # data lines read (header excluded)
    entries: int = 0  # mailboxes (mssante) or professionals (ps) after the import
    activities: int = 0  # activity lines kept (ps)
    added: int = 0
    changed: int = 0
    retired: int = 0
    rejected: int = 0
    rejects: list[Rejected] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "sources": self.sources,
            "lines": self.lines,
            "entries": self.entries,
            "activities": self.activities,
            "added": self.added,
            "changed": self.changed,
            "retired": self.retired,
            "rejected": self.rejected,
            "rejects": [str(r) for r in self.rejects],
            "seconds": round(self.seconds, 2),
        }


# progress(bytes read, bytes in all files, lines read)
Progress = Callable[[int, int, int], None]


@dataclass(frozen=True)
class _Source:
    name: str
    size: int
    open: Callable[[], IO[bytes]]


def _sources(path: Path) -> list[_Source]:
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
        texts = [m for m in members if m.filename.lower().endswith((".txt", ".csv"))] or members
        if not texts:
            raise InputError(f"{path}: the archive holds no extraction file")

        return [
            _Source(f"{path.name}:{m.filename}", m.file_size, partial(_MemberReader, path, m))
            for m in texts
        ]
    return [_Source(path.name, path.stat().st_size, lambda: path.open("rb", buffering=1 << 20))]


class _MemberReader(io.BufferedReader):
    """One file of a zip archive, streamed; closing it closes the archive."""

    def __init__(self, path: Path, member: zipfile.ZipInfo) -> None:
        self._archive = zipfile.ZipFile(path)
        super().__init__(cast(Any, self._archive.open(member)), buffer_size=1 << 20)

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._archive.close()


def _header(source: _Source) -> Layout:
    with source.open() as stream:
        first = stream.readline()
    try:
        return detect_layout(first.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise InputError(f"{source.name}: the header is not UTF-8") from None
    except BadHeader as exc:
        raise InputError(f"{source.name}: {exc}") from None


def plan(paths: Sequence[Path]) -> dict[Kind, list[tuple[_Source, Layout]]]:
    """Open every file, read its header: refuse the whole import if one is unknown."""
    planned: dict[Kind, list[tuple[_Source, Layout]]] = {}
    for path in paths:
        for source in _sources(path):
            layout = _header(source)
            planned.setdefault(layout.kind, []).append((source, layout))
    return planned


def _records(
    files: list[tuple[_Source, Layout]], summary: Summary, progress: Progress | None
) -> Iterator[tuple[str, ...]]:
    total = sum(s.size for s, _ in files)
    done = 0
    for source, layout in files:
        with source.open() as stream:
            done += len(stream.readline())
            number = 1
            for raw in stream:
                number += 1
                done += len(raw)
                if progress is not None and number % 50_000 == 0:
                    progress(done, total, summary.lines)
                line = raw.rstrip(b"\r\n")
                if not line.strip():
                    continue
                summary.lines += 1
                try:
                    text = line.decode("utf-8")
                except UnicodeDecodeError as exc:
                    _reject(summary, source.name, number, f"not UTF-8 (byte {exc.start + 1})")
                    continue
                try:
                    yield layout.record(text.split("|"))
                except BadLine as exc:
                    _reject(summary, source.name, number, str(exc))
    if progress is not None:
        progress(total, total, summary.lines)


def _reject(summary: Summary, source: str, line: int, reason: str) -> None:
    summary.rejected += 1
    if len(summary.rejects) < KEEP_REJECTS:
        summary.rejects.append(Rejected(source, line, reason))


# --- SQL -----------------------------------------------------------------------------------


def _upsert(table: str, columns: Sequence[str], key: str, count: str | None = None) -> str:
    """INSERT …, merging a repeated key: the first line's values, gaps filled by later ones."""
    fills = [f"{c} = CASE WHEN {table}.{c} = '' THEN excluded.{c} ELSE {table}.{c} END"
             for c in columns if c != key]  # fmt: skip
    if count is not None:
        fills.append(f"{count} = {table}.{count} + 1")
    marks = ", ".join("?" for _ in columns)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) "
        f"ON CONFLICT ({key}) DO UPDATE SET {', '.join(fills)}"
    )


MAILBOX_ROW = ("line", *tables.MAILBOX_COLUMNS, *tables.KEY_COLUMNS)
ACTIVITY_ROW = ("line", *tables.ACTIVITY_COLUMNS, *tables.KEY_COLUMNS)


class _Loader:
    """Fills the tables of one set: lines appended in batches (one transaction each),
    then indexed, merged (one mailbox per address, one professional per national id)."""

    def __init__(self, db: Database, kind: Kind, target: str) -> None:
        self._db = db
        self.kind = kind
        self.pro = tables.professional_table(kind.value, target)
        row: tuple[str, ...] = MAILBOX_ROW
        self.main = tables.mailbox_table(target)
        if kind is Kind.PS:
            self.main, row = tables.activity_table(target), ACTIVITY_ROW
        marks = ", ".join("?" for _ in row)
        self._main = RawStatement(f"INSERT INTO {self.main} ({', '.join(row)}) VALUES ({marks})")
        self._indexes = tables.secondary_indexes(kind.value, target)
        self._line = 0

    def empty(self) -> None:
        def run(tx: Tx) -> None:
            for name, _table, _columns in self._indexes:
                tx.conn.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")
            for table in (self.main, self.pro):
                tx.conn.exec_driver_sql(f"DELETE FROM {table}")

        self._db.write_sync(run)

    def load(self, records: Iterable[tuple[str, ...]]) -> None:
        # One thread: parsing and binding both need the GIL, and a writer thread
        # beside the parser made the load slower, not faster (measured).
        batch: list[tuple[str, ...]] = []
        for record in records:
            batch.append(record)
            if len(batch) >= BATCH:
                self._write(batch)
                batch = []
        if batch:
            self._write(batch)

    def _write(self, batch: list[tuple[str, ...]]) -> None:
        start = self._line
        main: list[tuple[Any, ...]] = [(start + n, *r) for n, r in enumerate(batch, 1)]
        self._line += len(batch)
        self._db.write_sync(lambda tx: self._main.many(tx.conn, main))

    def merge_mailboxes(self) -> None:
        """An address on several lines becomes one mailbox: its first line, the empty
        fields filled from the next ones, `lines` their number (a few % of addresses)."""
        columns = [*tables.MAILBOX_COLUMNS, *tables.KEY_COLUMNS]
        # one ordered pass over the address index (a few % of addresses repeat)
        repeated = RawStatement(
            f"SELECT address FROM {self.main} GROUP BY address HAVING count(*) > 1"
        )
        keep = RawStatement(
            f"UPDATE {self.main} SET {', '.join(f'{c} = ?' for c in columns)}, lines = ? "
            "WHERE line = ?"
        )
        drop = RawStatement(f"DELETE FROM {self.main} WHERE line = ?")

        def merge(addresses: list[str], tx: Tx) -> None:
            marks = ", ".join("?" for _ in addresses)
            rows = RawStatement(
                f"SELECT address, line, {', '.join(columns)} FROM {self.main} "
                f"WHERE address IN ({marks}) ORDER BY address, line"
            ).all(tx.conn, *addresses)
            kept: list[tuple[Any, ...]] = []
            dropped: list[tuple[Any, ...]] = []
            for _address, group in itertools.groupby(rows, key=lambda row: row[0]):
                first, *others = list(group)
                merged = list(first[2:])
                for row in others:
                    merged = [m or v for m, v in zip(merged, row[2:], strict=True)]
                kept.append((*merged, 1 + len(others), first[1]))
                dropped += [(row[1],) for row in others]
            keep.many(tx.conn, kept)
            drop.many(tx.conn, dropped)

        duplicates = [r[0] for r in self._db.read_sync(lambda c: repeated.all(c))]
        for start in range(0, len(duplicates), 500):
            self._db.write_sync(partial(merge, duplicates[start : start + 500]))

    def merge_professionals(self) -> None:
        """One row per national id: its first line's values, gaps filled by the next ones.

        SQLite: a sorted INSERT … SELECT whose conflicts fill the gaps, row after row.
        PostgreSQL refuses to touch a row twice in one statement: the same result
        by aggregation (the first non-empty value of each column, in line order)."""
        columns = tables.PROFESSIONAL_COLUMNS
        if self._db.dialect == "postgresql":
            firsts = ", ".join(
                f"COALESCE((array_agg({c} ORDER BY line) FILTER (WHERE {c} <> ''))[1], '')"
                for c in columns[1:]
            )
            sql = (
                f"INSERT INTO {self.pro} ({', '.join(columns)}) SELECT national_id, {firsts} "
                f"FROM {self.main} WHERE national_id <> '' GROUP BY national_id"
            )
        else:
            fills = ", ".join(
                f"{c} = CASE WHEN {self.pro}.{c} = '' THEN excluded.{c} ELSE {self.pro}.{c} END"
                for c in columns[1:]
            )
            sql = (
                f"INSERT INTO {self.pro} ({', '.join(columns)}) SELECT {', '.join(columns)} "
                f"FROM {self.main} WHERE national_id <> '' ORDER BY national_id, line "
                f"ON CONFLICT (national_id) DO UPDATE SET {fills}"
            )
        self._db.write_sync(partial(_ddl, sql))

    def finish(self) -> None:
        """Index the lines, merge them into professionals (reading the national id
        index: no sort in memory), index the professionals."""
        self._build([i for i in self._indexes if i[1] == self.main])
        if self.kind is Kind.MSSANTE:
            self.merge_mailboxes()
        self.merge_professionals()
        self._build([i for i in self._indexes if i[1] == self.pro])
        if self._db.dialect == "postgresql":
            for table in (self.main, self.pro):
                self._db.write_sync(partial(_ddl, f"ANALYZE {table}"))

    def _build(self, indexes: list[tuple[str, str, tuple[str, ...]]]) -> None:
        for name, table, columns in indexes:  # one transaction each: writers wait a moment
            self._db.write_sync(
                partial(_ddl, f"CREATE INDEX {name} ON {table} ({', '.join(columns)})")
            )


def _ddl(statement: str, tx: Tx) -> None:
    tx.conn.exec_driver_sql(statement)


def _differs(new: str, old: str, columns: Sequence[str]) -> str:
    return " OR ".join(f"{new}.{c} <> {old}.{c}" for c in columns)


def _count(conn: Connection, sql: str) -> int:
    return int(conn.exec_driver_sql(sql).scalar() or 0)


def _compare(conn: Connection, kind: Kind, live: str, target: str, summary: Summary) -> None:
    """added / changed / retired of the new set against the live one."""
    if kind is Kind.MSSANTE:
        new, old, key = tables.mailbox_table(target), tables.mailbox_table(live), "address"
        changed = _differs("n", "o", (*tables.MAILBOX_COLUMNS, "lines"))
        summary.entries = _count(conn, f"SELECT count(*) FROM {new}")
    else:
        new = tables.professional_table("ps", target)
        old = tables.professional_table("ps", live)
        key = "national_id"
        act_new, act_old = tables.activity_table(target), tables.activity_table(live)
        cols = ", ".join(tables.ACTIVITY_COLUMNS)
        moved = (
            f"SELECT national_id FROM (SELECT {cols} FROM {act_new} "
            f"EXCEPT SELECT {cols} FROM {act_old}) d1 UNION "
            f"SELECT national_id FROM (SELECT {cols} FROM {act_old} "
            f"EXCEPT SELECT {cols} FROM {act_new}) d2"
        )
        changed = f"{_differs('n', 'o', tables.PROFESSIONAL_COLUMNS)} OR n.national_id IN ({moved})"
        summary.entries = _count(conn, f"SELECT count(*) FROM {new}")
        summary.activities = _count(conn, f"SELECT count(*) FROM {act_new}")
    summary.added = _count(
        conn,
        f"SELECT count(*) FROM {new} n WHERE NOT EXISTS "
        f"(SELECT 1 FROM {old} o WHERE o.{key} = n.{key})",
    )
    summary.retired = _count(
        conn,
        f"SELECT count(*) FROM {old} o WHERE NOT EXISTS "
        f"(SELECT 1 FROM {new} n WHERE n.{key} = o.{key})",
    )
    summary.changed = _count(
        conn, f"SELECT count(*) FROM {new} n JOIN {old} o ON o.{key} = n.{key} WHERE {changed}"
    )


_STATE = RawStatement("SELECT live FROM annuaire_state WHERE kind = ?")


def _flip(tx: Tx, kind: Kind, target: str, summary: Summary) -> None:
    """Make the new set live: the one statement readers can see."""
    state = metadata.tables["annuaire_state"]
    if tx.conn.dialect.name == "postgresql":  # wait for the reads of the old set to end
        tx.conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({FLIP_LOCK})")
    values = {
        "live": target,
        "source": ", ".join(summary.sources),
        "imported_at": dt.datetime.now(dt.UTC),
        **{k: getattr(summary, k) for k in ("entries", "lines", "added", "changed", "retired")},
        "rejected": summary.rejected,
    }
    tx.conn.execute(update(state).where(state.c.kind == kind.value).values(**values))


@contextlib.contextmanager
def _exclusive(db: Database) -> Iterator[None]:
    """One import at a time per database (they would fill the same spare set)."""
    if db.dialect == "postgresql":
        with db.write_engine.connect() as conn:
            got = conn.exec_driver_sql("SELECT pg_try_advisory_lock(7303640005)").scalar()
            conn.commit()
            if not got:
                raise InputError("another annuaire import is running on this database")
            try:
                yield
            finally:
                conn.exec_driver_sql("SELECT pg_advisory_unlock(7303640005)")
                conn.commit()
        return
    import fcntl

    database = db.write_engine.url.database or "annuaire"
    with open(database + "-annuaire.lock", "a+b") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError("another annuaire import is running on this database") from None
        yield


def import_files(
    db: Database, paths: Sequence[Path], progress: Progress | None = None
) -> list[Summary]:
    """Import extraction files; one Summary per kind of file found among them."""
    planned = plan(paths)
    summaries = []
    with _exclusive(db):
        for kind, files in planned.items():
            summaries.append(_import_kind(db, kind, files, progress))
    return summaries


def _import_kind(
    db: Database, kind: Kind, files: list[tuple[_Source, Layout]], progress: Progress | None
) -> Summary:
    started = time.perf_counter()
    summary = Summary(kind.value, [s.name for s, _ in files])
    live = db.read_sync(lambda c: _STATE.scalar(c, kind.value))
    if live is None:
        raise StoreError("the annuaire tables are missing: run the migrations (mss serve)")
    target = "b" if live == "a" else "a"
    loader = _Loader(db, kind, target)
    loader.empty()
    loader.load(_records(files, summary, progress))
    # the sorts to come (indexes, merges, comparison) must not grow with the file;
    # after the load, whose statement journals stay in memory
    db.spill_sorts_to_disk()
    if not summary.lines:
        raise InputError(f"{', '.join(summary.sources)}: no data lines; the annuaire is unchanged")
    if summary.rejected == summary.lines:
        raise InputError(
            f"every line of {', '.join(summary.sources)} was rejected "
            f"(first: {summary.rejects[0]}); the annuaire is unchanged"
        )
    loader.finish()
    db.read_sync(lambda c: _compare(c, kind, live, target, summary))
    db.write_sync(lambda tx: _flip(tx, kind, target, summary))
    summary.seconds = time.perf_counter() - started
    log.info(
        "annuaire %s: %d lines, %d entries (%d added, %d changed, %d retired), %d rejected",
        kind.value, summary.lines, summary.entries, summary.added, summary.changed,
        summary.retired, summary.rejected,
    )  # fmt: skip
    return summary
