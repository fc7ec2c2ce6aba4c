"""How mss makes its SQLAlchemy engines: the URL it accepts (psycopg 3 for
PostgreSQL, several hosts kept), and SQLite's connection settings (WAL, fsync on
commit, foreign keys, who emits BEGIN, the lock its writers share).
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.pool import NullPool

from mss.store.failover import multi_host_url


def normalize_url(url: str) -> str:
    """The SQLAlchemy URL mss uses: psycopg 3 for PostgreSQL, pysqlite for SQLite.

    `postgresql://`, `postgres://` (libpq's forms, as `pg_autoctl show uri` prints
    them) and `postgresql+asyncpg://` (DESIGN.md) map to the psycopg driver, which
    serves the writer and reader threads; several hosts (`h1:p1,h2:p2`) are kept.
    """
    for prefix in (
        "postgresql+asyncpg://",
        "postgresql+psycopg2://",
        "postgresql://",
        "postgres://",
    ):
        if url.startswith(prefix):
            return multi_host_url("postgresql+psycopg://" + url[len(prefix) :])
    if url.startswith("postgresql+psycopg://"):
        return multi_host_url(url)
    if url.startswith("sqlite+pysqlite://"):
        return "sqlite://" + url[len("sqlite+pysqlite://") :]
    return url


def _keep_sqlite_date_texts() -> None:
    """Dates bound as the sqlite3 module's default adapters wrote them (`isoformat(" ")`,
    `isoformat()`): the same texts as every row written before, and each bind without
    their DeprecationWarning (Python 3.12 on; an error under the tests' filters). The
    statements that must store SQLAlchemy's own text bind through it (`RawStatement`'s
    `exact_binds`); the others, and the driver's own cursors, come here."""
    sqlite3.register_adapter(dt.datetime, lambda value: value.isoformat(" "))
    sqlite3.register_adapter(dt.date, lambda value: value.isoformat())


_keep_sqlite_date_texts()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, emit BEGIN (SQLAlchemy docs,
    # "Serializable isolation / Savepoints / Transactional DDL").
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in (
        "journal_mode=WAL",
        "synchronous=FULL",  # WAL + FULL: each commit is fsynced (durable on power loss)
        "foreign_keys=ON",
        "busy_timeout=30000",
        "temp_store=MEMORY",
        "cache_size=-16384",  # 16 MB per connection
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def temp_store_file(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """A `checkout` listener: the connection's sorts go to files from now on. At checkout
    a pooled SQLite connection is outside any transaction, where the pragma may change."""
    if not record.info.get("temp_store_file"):
        dbapi_connection.execute("PRAGMA temp_store = FILE")
        record.info["temp_store_file"] = True


def sqlite_engine(url: str, begin: str | None, pool_size: int) -> Engine:
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30},
        pool_size=pool_size,
        max_overflow=pool_size,
    )
    event.listen(engine, "connect", _sqlite_pragmas)
    if begin is not None:  # None: autocommit, each statement on its own

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql(begin)

    return engine


def make_null_pool_engine(url: str) -> Engine:
    """A throw-away engine (tests, tools) that keeps no connection open."""
    return create_engine(normalize_url(url), poolclass=NullPool)


class FileLock:
    """An exclusive lock shared by the processes that write one SQLite file.

    SQLite's own busy handler polls (sleeps of 1, 2, 5, 10... ms): a writer
    waiting for another process's commit wakes late and commits small
    batches. `flock` wakes the waiter as soon as the lock is free, and what
    reaches the queue meanwhile joins its batch.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None

    def __enter__(self) -> None:
        import fcntl

        if self._fd is None:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        import fcntl

        assert self._fd is not None
        fcntl.flock(self._fd, fcntl.LOCK_UN)
