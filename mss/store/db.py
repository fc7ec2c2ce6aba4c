"""Database engines, schema migrations, and the durable group-commit writer.

One writer thread owns all writes of this process. Callers hand it a function
of a transaction (`await db.write(fn)`); it takes every function waiting in its
queue (up to `batch_max`), runs them in one transaction and commits once, so one
fsync (SQLite WAL, `synchronous=FULL`) or one commit (PostgreSQL) covers many
deliveries. `write` returns only after that commit: a message acknowledged
afterwards survives `kill -9` and power loss. If one function raises, the batch
is rolled back and every function of it is run again alone, so one bad write
never fails the others.

Reads run on a small pool of threads (`await db.read(fn)`), each on its own
connection; with SQLite in WAL mode they see the last commit without blocking
the writer. Write functions must be repeatable (they may run twice when their
batch is retried) and keep their side effects in the database, or in
`tx.after_commit(event)`, which is delivered to subscribers once committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import secrets
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from mss import metrics
from mss.errors import MssError, StoreError
from mss.store.sql import Refused, Tx, describe

log = logging.getLogger(__name__)


T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def normalize_url(url: str) -> str:
    """The SQLAlchemy URL mss uses: psycopg 3 for PostgreSQL, pysqlite for SQLite.

    `postgresql://` and `postgresql+asyncpg://` (the form in DESIGN.md) both map
    to the psycopg driver, which serves the writer and reader threads.
    """
    for prefix in ("postgresql+asyncpg://", "postgresql+psycopg2://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    if url.startswith("sqlite+pysqlite://"):
        return "sqlite://" + url[len("sqlite+pysqlite://") :]
    return url


# A bulk write takes the items of consecutive jobs of one batch and returns one
# result per item, in order: a batch of deliveries costs a few statements, not a
# few per delivery.
BulkWrite = Callable[[Tx, list[Any]], list[Any]]


@dataclass(slots=True)
class _Job(Generic[T]):
    fn: Callable[[Tx], T] | None
    future: asyncio.Future[T]
    loop: asyncio.AbstractEventLoop
    bulk: BulkWrite | None = None
    item: Any = None
    events: list[object] = field(default_factory=list)

    def run_alone(self, tx: Tx) -> T:
        if self.bulk is not None:
            result: T = self.bulk(tx, [self.item])[0]
            return result
        assert self.fn is not None
        return self.fn(tx)


_STOP = object()


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


def _temp_store_file(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA temp_store = FILE")


def _sqlite_engine(url: str, begin: str | None, pool_size: int) -> Engine:
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


class Database:
    """Engines, migrations, the group-commit writer thread and the reader pool."""

    def __init__(self, url: str, *, batch_max: int = 512, reader_threads: int = 4) -> None:
        self.url = normalize_url(url)
        self.batch_max = batch_max
        self.dialect = "sqlite" if self.url.startswith("sqlite") else "postgresql"
        if self.dialect == "sqlite":
            # The writer takes the write lock at BEGIN (IMMEDIATE) so that a
            # transaction never fails half-way for another process's lock.
            self.write_engine = _sqlite_engine(self.url, "BEGIN IMMEDIATE", 2)
            self.read_engine = _sqlite_engine(self.url, "BEGIN", reader_threads + 2)
            self._autocommit_engine = _sqlite_engine(self.url, None, 1)
        else:
            self.write_engine = create_engine(self.url, pool_size=2, pool_pre_ping=True)
            self.read_engine = create_engine(
                self.url, pool_size=reader_threads + 2, pool_pre_ping=True
            )
        self._readers = ThreadPoolExecutor(reader_threads, thread_name_prefix="mss-reader")
        self._write_lock: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        if self.dialect == "sqlite":
            database = self.write_engine.url.database
            if database and database != ":memory:":
                self._write_lock = _FileLock(Path(database + "-writer.lock"))
        self._loop_conn: Connection | None = None
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._subscribers: list[Callable[[list[object]], None]] = []
        self._in_commit: list[Callable[[Connection, list[object]], None]] = []
        # Names this process (outbox leases; its own change notices, to skip them)
        self.process_token = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.batches = 0
        self.batched_jobs = 0

    def __repr__(self) -> str:
        return f"Database({self.write_engine.url!r})"  # SQLAlchemy masks the password

    # --- schema ------------------------------------------------------------------

    def migrate(self, target: str = "head") -> None:
        """Upgrade the schema to `target`, the newest migration by default (Alembic)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        with self.write_engine.begin() as conn:
            if self.dialect == "postgresql":
                # Several processes may start at once: one migrates, the others wait.
                conn.execute(text("SELECT pg_advisory_xact_lock(7303640001)"))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, target)

    def spill_sorts_to_disk(self) -> None:
        """SQLite: sorts and temporary tables of this Database's connections go to
        temporary files, not memory (`temp_store = FILE`; mss keeps MEMORY otherwise),
        for bulk work whose memory must not follow the data. The pragma cannot change
        inside a transaction: new connections get it, the pooled ones are dropped."""
        if self.dialect != "sqlite":
            return
        for engine in (self.write_engine, self.read_engine):
            if not event.contains(engine, "connect", _temp_store_file):
                event.listen(engine, "connect", _temp_store_file)
            engine.dispose()

    def current_revision(self) -> str | None:
        from alembic.migration import MigrationContext

        with self.read_engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    # --- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run_writer, name="mss-writer", daemon=True)
            self._thread.start()

    async def close(self) -> None:
        """Finish every queued write, then stop the threads and close connections."""
        if self._thread is not None:
            self._queue.put(_STOP)
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        self._dispose()

    def _dispose(self) -> None:
        self._readers.shutdown(wait=True)
        if self._loop_conn is not None:
            self._loop_conn.close()
            self._loop_conn = None
        self.write_engine.dispose()
        self.read_engine.dispose()
        if self.dialect == "sqlite":
            self._autocommit_engine.dispose()

    def close_sync(self) -> None:
        """Close from synchronous code (CLI commands that never started the writer)."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None
        self._dispose()

    def in_commit(self, hook: Callable[[Connection, list[object]], None]) -> None:
        """Call `hook(conn, events)` inside each committing transaction that carries
        events (the change feed's NOTIFY: delivered only if the commit succeeds)."""
        self._in_commit.append(hook)

    def _run_in_commit(self, conn: Connection, events: list[object]) -> None:
        if events:
            for hook in self._in_commit:
                hook(conn, events)

    def subscribe(self, callback: Callable[[list[object]], None]) -> None:
        """Call `callback(events)` on the event loop after each commit carrying events."""
        self._subscribers.append(callback)

    # --- reads and writes --------------------------------------------------------

    async def write(self, fn: Callable[[Tx], T]) -> T:
        """Run `fn` in the next group commit; return its result once durable."""
        if self._thread is None:
            raise StoreError("the database writer is not running")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Job(fn, future, loop))
        return await future

    async def write_bulk(self, bulk: BulkWrite, item: Any) -> Any:
        """Add `item` to the next group commit, written with other items of `bulk`."""
        if self._thread is None:
            raise StoreError("the database writer is not running")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.put(_Job(None, future, loop, bulk, item))
        return await future

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """Run `fn` on a reader thread in a read transaction (one snapshot)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self.read_sync, fn)

    async def read_fast(self, fn: Callable[[Connection], T]) -> T:
        """A small, bounded read without leaving the event loop, on SQLite.

        On SQLite in WAL mode a read never waits for the writer and an indexed
        lookup costs microseconds, far less than the trip to a reader thread
        (about 250 µs); `fn` runs in one read transaction, so its statements see
        one snapshot. Only for reads that stay small whatever the data (point
        lookups, a few rows, one blob): the event loop waits for them.
        PostgreSQL reads cross the network: they go to the reader threads.
        """
        if self.dialect != "sqlite":
            return await self.read(fn)
        return self.read_inline(fn)

    def read_inline(self, fn: Callable[[Connection], T]) -> T:
        """`read_fast` for synchronous callers already on the event loop (SQLite only)."""
        conn = self._loop_conn
        if conn is None:
            conn = self._loop_conn = self._autocommit_engine.connect()
        raw = conn.connection.driver_connection
        assert raw is not None
        try:
            raw.execute("BEGIN")
            return fn(conn)
        except SQLAlchemyError as exc:
            conn.invalidate()
            self._loop_conn = None
            raise StoreError(f"database read failed: {describe(exc)}") from exc
        finally:
            if self._loop_conn is not None:
                conn.rollback()  # ends SQLAlchemy's logical transaction
                if raw.in_transaction:
                    raw.execute("ROLLBACK")

    def read_sync(self, fn: Callable[[Connection], T]) -> T:
        try:
            with self.read_engine.connect() as conn, conn.begin():
                return fn(conn)
        except SQLAlchemyError as exc:
            raise StoreError(f"database read failed: {describe(exc)}") from exc

    def write_sync(self, fn: Callable[[Tx], T]) -> T:
        """One write in its own transaction, outside the writer (CLI commands)."""
        try:
            with self._write_lock, self.write_engine.begin() as conn:
                tx = Tx(conn)
                result = fn(tx)
        except SQLAlchemyError as exc:
            raise StoreError(f"database write failed: {describe(exc)}") from exc
        return result

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with self.read_engine.connect() as conn:
            yield conn

    # --- the writer thread ---------------------------------------------------------

    def _run_writer(self) -> None:
        conn = self.write_engine.connect()
        try:
            stopping = False
            while not stopping:
                first = self._queue.get()
                if first is _STOP:
                    break
                with self._write_lock:  # what arrives while we wait joins this batch
                    batch: list[_Job[Any]] = [first]
                    while len(batch) < self.batch_max:
                        try:
                            item = self._queue.get_nowait()
                        except queue.Empty:
                            break
                        if item is _STOP:
                            stopping = True
                            break
                        batch.append(item)
                    conn = self._commit_batch(conn, batch)
        finally:
            conn.close()

    def _commit_batch(self, conn: Connection, batch: list[_Job[Any]]) -> Connection:
        self.batches += 1
        self.batched_jobs += len(batch)
        metrics.STORE_BATCHES.labels(self.dialect).inc()
        metrics.STORE_WRITES.labels(self.dialect).inc(len(batch))
        try:
            results = self._run_batch(conn, batch)
        except _JobFailed:
            for job in batch:
                self._run_alone(conn, job)
            return conn
        except Exception as exc:  # the commit itself failed: nothing is known durable
            log.exception("group commit of %d writes failed", len(batch))
            error = StoreError(f"database commit failed: {describe(exc)}")
            self._resolve([(job, None, error) for job in batch])
            return self._reconnect(conn)
        self._resolve([_outcome(job, result) for job, result in zip(batch, results, strict=True)])
        return conn

    def _run_batch(self, conn: Connection, batch: list[_Job[Any]]) -> list[Any]:
        results: list[Any] = []
        trans = conn.begin()
        try:
            start = 0
            while start < len(batch):
                end = start + 1
                tx = Tx(conn)
                job = batch[start]
                try:
                    if job.bulk is None:
                        results.append(job.run_alone(tx))
                    else:
                        while end < len(batch) and batch[end].bulk is job.bulk:
                            end += 1
                        results.extend(job.bulk(tx, [j.item for j in batch[start:end]]))
                except Exception as exc:
                    raise _JobFailed from exc
                # published once, with the first job of the group that was not refused
                group = list(zip(batch[start:end], results[start:end], strict=True))
                holder = next((j for j, r in group if not isinstance(r, Refused)), job)
                holder.events = tx.events
                start = end
            self._run_in_commit(conn, [event for job in batch for event in job.events])
        except BaseException:
            trans.rollback()
            raise
        trans.commit()
        return results

    def _run_alone(self, conn: Connection, job: _Job[Any]) -> None:
        tx = Tx(conn)
        try:
            with conn.begin():
                result = job.run_alone(tx)
                self._run_in_commit(conn, tx.events)
        except Exception as exc:
            job.events = []
            self._resolve([(job, None, self._translate(exc))])
            return
        job.events = tx.events
        self._resolve([_outcome(job, result)])

    def _reconnect(self, conn: Connection) -> Connection:
        with contextlib.suppress(Exception):  # the connection is already broken
            conn.close()
        return self.write_engine.connect()

    @staticmethod
    def _translate(exc: Exception) -> BaseException:
        if isinstance(exc, MssError):
            return exc
        if isinstance(exc, SQLAlchemyError):
            return StoreError(f"database write failed: {describe(exc)}")
        return exc

    def _resolve(self, outcomes: list[tuple[_Job[Any], Any, BaseException | None]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Job[Any], Any, Any]]] = {}
        for outcome in outcomes:
            by_loop.setdefault(outcome[0].loop, []).append(outcome)
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(self._settle, items)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                log.warning("dropping %d results for a closed event loop", len(items))

    def _settle(self, items: list[tuple[_Job[Any], Any, BaseException | None]]) -> None:
        events: list[object] = []
        for job, result, error in items:
            if error is None:
                events.extend(job.events)
            if job.future.done():
                continue
            if error is None:
                job.future.set_result(result)
            else:
                job.future.set_exception(error)
        if events:
            for callback in self._subscribers:
                try:
                    callback(events)
                except Exception:
                    log.exception("commit subscriber failed")


class _FileLock:
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


def _outcome(job: _Job[Any], result: Any) -> tuple[_Job[Any], Any, BaseException | None]:
    if isinstance(result, Refused):
        return job, None, result.error
    return job, result, None


class _JobFailed(MssError):
    """A write function raised inside a batch: retry the batch one job at a time."""


def make_null_pool_engine(url: str) -> Engine:
    """A throw-away engine (tests, tools) that keeps no connection open."""
    return create_engine(normalize_url(url), poolclass=NullPool)
