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
the writer. Write functions must be repeatable (they run again when their batch
is retried, or interrupted by a PostgreSQL failover: failover.py) and keep their
side effects in the database, or in `tx.after_commit(event)`, delivered once committed.
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

from sqlalchemy import Connection, create_engine, event, text
from sqlalchemy.exc import SQLAlchemyError

from mss import metrics
from mss.errors import MssError, StoreError
from mss.store.engines import FileLock, normalize_url, sqlite_engine, temp_store_file
from mss.store.failover import FAILOVER_WINDOW, Retry, batch_committed, is_failover, mark_batch
from mss.store.sql import Refused, Tx, describe

log = logging.getLogger(__name__)


T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


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


class Database:
    """Engines, migrations, the group-commit writer thread and the reader pool."""

    def __init__(
        self,
        url: str,
        *,
        batch_max: int = 512,
        reader_threads: int = 4,
        failover_window: float = FAILOVER_WINDOW,
    ) -> None:
        self.url = normalize_url(url)
        self.batch_max = batch_max
        self.dialect = "sqlite" if self.url.startswith("sqlite") else "postgresql"
        # PostgreSQL: how long an operation a failover interrupted is retried
        self.failover_window = failover_window if self.dialect == "postgresql" else 0.0
        if self.dialect == "sqlite":
            # The writer takes the write lock at BEGIN (IMMEDIATE) so that a
            # transaction never fails half-way for another process's lock.
            self.write_engine = sqlite_engine(self.url, "BEGIN IMMEDIATE", 2)
            self.read_engine = sqlite_engine(self.url, "BEGIN", reader_threads + 2)
            self._autocommit_engine = sqlite_engine(self.url, None, 1)
        else:
            self.write_engine = create_engine(self.url, pool_size=2, pool_pre_ping=True)
            # Reads in autocommit: under READ COMMITTED each statement sees its own
            # snapshot in a transaction too, so BEGIN and COMMIT were two round trips
            # for nothing; and no ping at checkout: a connection a failover broke
            # fails its read, which `read_sync` runs again on a new one.
            self.read_engine = create_engine(
                self.url, pool_size=reader_threads + 2, isolation_level="AUTOCOMMIT"
            )
        self._readers = ThreadPoolExecutor(reader_threads, thread_name_prefix="mss-reader")
        self._write_lock: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        if self.dialect == "sqlite":
            database = self.write_engine.url.database
            if database and database != ":memory:":
                self._write_lock = FileLock(Path(database + "-writer.lock"))
        self._loop_conn: Connection | None = None
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._subscribers: list[Callable[[list[object]], None]] = []
        self._in_commit: list[Callable[[Connection, list[object]], None]] = []
        # Names this process (outbox leases; its own change notices, to skip them)
        self.process_token = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.batches = 0
        self.batched_jobs = 0
        self.unanswered_commits = 0  # COMMITs a failover left unanswered, settled by their mark

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
        inside a transaction: each connection gets it when next taken from its pool, as
        `read_sync` and `write_sync` (all the import uses) do; the writer thread's and the
        event loop's connections, held for their life, keep MEMORY. (The pool is not
        dropped for a new one: a connection in use then, by a reader of the live directory,
        would go back to the old pool and stay open, closed by no one.)"""
        if self.dialect != "sqlite":
            return
        for engine in (self.write_engine, self.read_engine):
            if not event.contains(engine, "checkout", temp_store_file):
                event.listen(engine, "checkout", temp_store_file)

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
        """Run `fn` on a reader thread: in one read transaction (one snapshot) on SQLite;
        on PostgreSQL in autocommit, each statement its own snapshot (as READ COMMITTED,
        its default, gives inside a transaction too)."""
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
        retry = Retry(self.failover_window)  # a read has no effect: run it again after a failover
        while True:
            try:
                with self.read_engine.connect() as conn, conn.begin():
                    return fn(conn)
            except SQLAlchemyError as exc:
                if not retry.again(exc):
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
        conn: Connection | None = None  # connected by the first batch, again after a failover
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
            _drop(conn)

    def _commit_batch(self, conn: Connection | None, batch: list[_Job[Any]]) -> Connection | None:
        self.batches += 1
        self.batched_jobs += len(batch)
        metrics.STORE_BATCHES.labels(self.dialect).inc()
        metrics.STORE_WRITES.labels(self.dialect).inc(len(batch))
        number, retry = self.batches, Retry(self.failover_window)
        while True:
            try:
                conn = self._connected(conn)
                results = self._run_batch(conn, batch, number)
            except _JobFailed:
                assert conn is not None
                for job in batch:
                    self._run_alone(conn, job)
                return conn
            except _Interrupted as exc:  # a failover before COMMIT: nothing was written
                _drop(conn)
                conn = None
                if retry.again(exc):
                    continue
                self._fail(batch, exc)
                return None
            except _Unanswered as exc:  # the primary died during COMMIT: ask the next one
                _drop(conn)
                conn, self.unanswered_commits = None, self.unanswered_commits + 1
                committed = self._committed(number, retry)
                if committed is False and retry.again(exc):
                    continue  # not on the primary of now: nothing was written
                if not committed:
                    self._fail(batch, exc)
                    return None
                results = exc.results
            except Exception as exc:  # the commit itself failed: nothing is known durable
                if not is_failover(exc):
                    log.exception("group commit of %d writes failed", len(batch))
                self._fail(batch, exc)
                _drop(conn)
                return None
            self._resolve([_outcome(j, r) for j, r in zip(batch, results, strict=True)])
            return conn

    def _connected(self, conn: Connection | None) -> Connection:
        try:
            return conn if conn is not None else self.write_engine.connect()
        except SQLAlchemyError as exc:
            if is_failover(exc):
                raise _Interrupted from exc
            raise

    def _fail(self, batch: list[_Job[Any]], exc: BaseException) -> None:
        log.warning("%d writes not committed: %s", len(batch), describe(exc))
        error = StoreError(f"database commit failed: {describe(exc)}")
        self._resolve([(job, None, error) for job in batch])

    def _committed(self, number: int, retry: Retry) -> bool | None:
        """Whether group commit `number` is on the primary (None: none answered in time)."""
        while True:
            try:
                with self.write_engine.connect() as conn:
                    return batch_committed(conn, self.process_token, number)
            except SQLAlchemyError as exc:
                if not retry.again(exc):
                    return None

    def _run_batch(self, conn: Connection, batch: list[_Job[Any]], number: int) -> list[Any]:
        results: list[Any] = []
        for job in batch:  # a batch run again after a failover publishes afresh
            job.events = []
        try:
            trans = conn.begin()
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
                    raise (_Interrupted if is_failover(exc) else _JobFailed) from exc
                # published once, with the first job of the group that was not refused
                group = list(zip(batch[start:end], results[start:end], strict=True))
                holder = next((j for j, r in group if not isinstance(r, Refused)), job)
                holder.events = tx.events
                start = end
            self._run_in_commit(conn, [event for job in batch for event in job.events])
            if self.dialect == "postgresql":
                mark_batch(conn, self.process_token, number)
        except BaseException as exc:
            with contextlib.suppress(Exception):  # the connection may be gone
                conn.rollback()
            if is_failover(exc) and not isinstance(exc, _Interrupted):
                raise _Interrupted from exc
            raise
        try:
            trans.commit()
        except Exception as exc:
            if self.dialect == "postgresql" and is_failover(exc):
                raise _Unanswered(results) from exc  # committed or not: see failover.py
            raise
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


def _outcome(job: _Job[Any], result: Any) -> tuple[_Job[Any], Any, BaseException | None]:
    if isinstance(result, Refused):
        return job, None, result.error
    return job, result, None


class _JobFailed(MssError):
    """A write function raised inside a batch: retry the batch one job at a time."""


class _Interrupted(MssError):
    """A failover broke the batch's transaction before its COMMIT: run it all again."""


class _Unanswered(MssError):
    """A failover broke the connection during COMMIT: the batch may have committed."""

    def __init__(self, results: list[Any]) -> None:
        super().__init__("COMMIT got no answer")
        self.results = results


def _drop(conn: Connection | None) -> None:
    """Drop the writer's connection (broken, on a node turned read-only, or at stop):
    invalidated, it never returns to the pool; the writer connects again when needed."""
    if conn is not None:
        with contextlib.suppress(Exception):  # it may already be broken
            conn.invalidate()
        with contextlib.suppress(Exception):
            conn.close()
