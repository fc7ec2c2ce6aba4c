"""The store's SQL vocabulary: transactions as the rest of mss holds them, plain
statements for the hot paths, and one line about a database error.

`Conn` (a read transaction) and `Tx` (a write transaction) are the only handles
code outside mss/store holds; it passes them to the query functions of this
package and never runs SQL itself (an import contract checks it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from sqlalchemy import BigInteger, Column, Connection, Dialect, Integer

from mss.errors import StoreError


def describe(exc: BaseException) -> str:
    """One line about a database error: the driver's message, without the SQL."""
    orig = getattr(exc, "orig", None)
    if orig is not None:
        return f"{type(orig).__name__}: {str(orig).splitlines()[0] if str(orig) else ''}"
    text_ = str(exc).splitlines()
    return f"{type(exc).__name__}: {text_[0] if text_ else ''}"


# BIGINT on PostgreSQL; INTEGER on SQLite so that the primary key is the rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")

# A read transaction as the rest of mss sees it: an opaque handle passed to the
# query functions of this package (SQL lives only in mss/store), never used directly.
Conn: TypeAlias = Connection


class Tx:
    """A write transaction handed to write functions."""

    __slots__ = ("conn", "dialect", "events")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name
        self.events: list[object] = []

    def sql(self, statement: str) -> str:
        """Adapt a statement written with `?` placeholders to the driver's paramstyle."""
        return statement if self.dialect == "sqlite" else statement.replace("?", "%s")

    def after_commit(self, event: object) -> None:
        """Publish `event` to subscribers once this transaction has committed."""
        self.events.append(event)


# Up to this many rows, `RawStatement.many` runs one statement per row on PostgreSQL
FEW_ROWS = 3


class RawStatement:
    """A hot-path SQL statement written with `?`, run on the driver's own cursor.

    SQLAlchemy Core costs about 250 µs to build, compile and run a small
    SELECT, the driver about 10 µs: the statements of the IMAP and SMTP hot
    paths are written in plain SQL (the same text for SQLite and PostgreSQL, but
    for the placeholders) and keep each column type's bind processing (dates on
    SQLite...) and, given `results` (the columns a SELECT returns, in order), each
    column type's result processing too (SQLite's dates and booleans). With
    `exact_binds`, values are bound by their type's processor for the dialect, as
    SQLAlchemy binds them (a date on SQLite: the text SQLAlchemy writes, not the
    sqlite3 module's). They run inside the caller's transaction: the writer's, or a
    read's (see `Database.read` and `read_fast`).
    """

    __slots__ = ("_columns", "_converters", "_exact", "_processors", "_results", "_sql", "_sql_pg")

    def __init__(
        self, sql: str, columns: Sequence[Column[Any]] = (), results: Sequence[Column[Any]] = (),
        *, exact_binds: bool = False,
    ) -> None:  # fmt: skip
        self._sql = sql
        self._sql_pg = sql.replace("?", "%s")
        self._columns = list(columns)
        self._results = list(results)
        self._exact = exact_binds
        self._processors: dict[str, list[Callable[[Any], Any] | None]] = {}
        self._converters: dict[str, list[tuple[int, Callable[[Any], Any]]]] = {}

    def sql(self, dialect: Dialect) -> str:
        return self._sql if dialect.name == "sqlite" else self._sql_pg

    def params(self, dialect: Dialect, values: Sequence[Any]) -> tuple[Any, ...]:
        if not self._columns:
            return tuple(values)
        processors = self._processors.get(dialect.name)
        if processors is None:
            processors = [
                (c.type.dialect_impl(dialect) if self._exact else c.type).bind_processor(dialect)
                for c in self._columns
            ]
            self._processors[dialect.name] = processors
        out = list(values)
        for i, process in enumerate(processors):
            if process is not None:
                out[i] = process(out[i])
        return tuple(out)

    def cursor(self, conn: Connection, values: Sequence[Any]) -> Any:
        dialect = conn.dialect
        raw = conn.connection.driver_connection
        assert raw is not None
        cursor = raw.cursor()
        try:
            cursor.execute(self.sql(dialect), self.params(dialect, values))
        except Exception as exc:
            cursor.close()
            raise StoreError(f"database statement failed: {describe(exc)}") from exc
        return cursor

    def _conversions(self, dialect: Dialect) -> list[tuple[int, Callable[[Any], Any]]]:
        """(position, processor) of the result columns that have one in `dialect`."""
        found = self._converters.get(dialect.name)
        if found is None:
            found = []
            for i, column in enumerate(self._results):
                process = column.type.dialect_impl(dialect).result_processor(dialect, None)
                if process is not None:
                    found.append((i, process))
            self._converters[dialect.name] = found
        return found

    def _convert(self, dialect: Dialect, rows: list[Any]) -> list[Any]:
        conversions = self._conversions(dialect) if self._results else None
        if not conversions:
            return rows
        out = []
        for row in rows:
            values = list(row)
            for i, process in conversions:
                values[i] = process(values[i])
            out.append(tuple(values))
        return out

    def all(self, conn: Connection, *values: Any) -> list[Any]:
        cursor = self.cursor(conn, values)
        try:
            return self._convert(conn.dialect, cursor.fetchall())
        finally:
            cursor.close()

    def first(self, conn: Connection, *values: Any) -> Any:
        cursor = self.cursor(conn, values)
        try:
            row = cursor.fetchone()
        finally:
            cursor.close()
        return row if row is None else self._convert(conn.dialect, [row])[0]

    def scalar(self, conn: Connection, *values: Any) -> Any:
        row = self.first(conn, *values)
        return None if row is None else row[0]

    def run(self, conn: Connection, *values: Any) -> int:
        """Execute (INSERT, UPDATE, DELETE); return the number of rows changed."""
        cursor = self.cursor(conn, values)
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def many(self, conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        dialect = conn.dialect
        raw = conn.connection.driver_connection
        assert raw is not None
        cursor = raw.cursor()
        sql = self.sql(dialect)
        try:
            if dialect.name == "sqlite" or len(rows) > FEW_ROWS:
                cursor.executemany(sql, [self.params(dialect, r) for r in rows])
            else:  # psycopg's executemany enters and leaves pipeline mode: dear for a row or two
                for row in rows:
                    cursor.execute(sql, self.params(dialect, row))
        except Exception as exc:
            raise StoreError(f"database statement failed: {describe(exc)}") from exc
        finally:
            cursor.close()

    def execute(self, conn: Connection, *values: Any) -> Any:
        """Through SQLAlchemy (a `CursorResult`), for callers that want one: its rows are
        the driver's, without this statement's `results` processing."""
        return conn.exec_driver_sql(self.sql(conn.dialect), self.params(conn.dialect, values))


@dataclass(frozen=True, slots=True)
class Refused:
    """A bulk write's result for an item it refused without writing anything (its error
    goes to that item's caller; the other items of the batch commit)."""

    error: BaseException
