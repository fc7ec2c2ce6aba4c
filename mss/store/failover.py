"""Surviving a PostgreSQL failover: the multi-host URL, the errors a failover
causes, and the bounded retry of what it interrupted.

With a synchronous standby and automatic failover (pg_auto_failover, Patroni),
mss is given every node in one libpq URL and connects to whichever is the
primary now (libpq 34.1.1, "Specifying Multiple Hosts"):

    postgresql://mss@db1:5432,db2:5432/mss?target_session_attrs=read-write

SQLAlchemy does not parse several hosts in the authority part; it takes them as
repeated `host=` query parameters, so `multi_host_url` rewrites the first form
into the second, and `libpq_conninfo` gives raw libpq connections (LISTEN) the
same nodes back as `host=db1,db2 port=5432,5432`.

A failover shows up as a lost connection, a refused one (nobody is primary
yet), an administrator shutdown, or a read-only transaction (the old primary
demoted, the new one not yet writable): `is_failover` recognises those, and
`Retry` waits with a growing delay for a bounded window. A transaction that was
interrupted before its COMMIT was sent wrote nothing: it is run again whole. A
COMMIT that got no answer may or may not have happened: each group commit writes
its number in `commit_mark` (`mark_batch`), and the writer reads it back on the
primary of now (`batch_committed`): there, the batch committed (acknowledge it) or
not (run it again). Only when no primary answers within the window is it failed,
and the caller answers a temporary failure (SMTP 451): the client sends again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from urllib.parse import quote, urlsplit

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

# How long a store operation waits for a new primary before it gives up.
FAILOVER_WINDOW = 30.0
_FIRST_DELAY = 0.05
_MAX_DELAY = 1.0

# SQLSTATEs a failover produces (PostgreSQL Appendix A): class 08 (connection
# exception), 25006 read_only_sql_transaction, 57P01 admin_shutdown,
# 57P02 crash_shutdown, 57P03 cannot_connect_now.
_FAILOVER_STATES = frozenset({"25006", "57P01", "57P02", "57P03"})


def multi_host_url(url: str) -> str:
    """`drv://u@h1:p1,h2:p2/db?q` → `drv://u@/db?host=h1:p1&host=h2:p2&q` (SQLAlchemy's form)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    parts = urlsplit("//" + rest)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    if "," not in hosts:
        return url
    query = "&".join(f"host={quote(host, safe=':[]')}" for host in hosts.split(",") if host)
    if parts.query:
        query += "&" + parts.query
    return f"{scheme}://{userinfo}{at}{parts.path or '/'}?{query}"


def libpq_conninfo(engine: Engine) -> str:
    """The libpq connection string of `engine` (psycopg), every host of a multi-host URL kept."""
    from psycopg.conninfo import make_conninfo

    _, kwargs = engine.dialect.create_connect_args(engine.url)
    return make_conninfo("", **{k: str(v) for k, v in kwargs.items() if isinstance(v, str | int)})


_MARK = (
    "INSERT INTO commit_mark (writer, batch) VALUES (%s, %s) "
    "ON CONFLICT (writer) DO UPDATE SET batch = excluded.batch"
)
_MARKED = "SELECT batch FROM commit_mark WHERE writer = %s"


def mark_batch(conn: Connection, writer: str, batch: int) -> None:
    """In the committing transaction (PostgreSQL): `writer`'s group commit number `batch`."""
    conn.exec_driver_sql(_MARK, (writer, batch))


def batch_committed(conn: Connection, writer: str, batch: int) -> bool:
    """Whether group commit `batch` of `writer` is in the database `conn` reads."""
    row = conn.exec_driver_sql(_MARKED, (writer,)).first()
    return row is not None and int(row[0]) == batch


def is_failover(exc: BaseException | None) -> bool:
    """True when `exc`, or an error it was raised from, is what a failover looks like."""
    return _failover_cause(exc) is not None


def _failover_cause(exc: BaseException | None) -> BaseException | None:
    seen = 0
    while exc is not None and seen < 10:
        if _failover_error(exc):
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def _failover_error(exc: BaseException) -> bool:
    import psycopg

    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if not isinstance(orig, psycopg.Error):
        return False
    state = orig.sqlstate or ""
    if state.startswith("08") or state in _FAILOVER_STATES:
        return True
    # no SQLSTATE: the client side lost or could not open the connection
    return not state and isinstance(orig, psycopg.OperationalError)


class Retry:
    """A bounded window of retries with a doubling delay (50 ms up to 1 s)."""

    def __init__(
        self,
        window: float = FAILOVER_WINDOW,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock, self._sleep = clock, sleep
        self._deadline = clock() + window
        self._delay = _FIRST_DELAY
        self.attempts = 0

    def again(self, exc: BaseException) -> bool:
        """After a failover error with time left: wait the next delay and return True."""
        left, cause = self._deadline - self._clock(), _failover_cause(exc)
        if left <= 0 or cause is None:
            return False
        if self.attempts == 0:
            log.warning("database unavailable (%s); retrying for %.0f s", _short(cause), left)
        self.attempts += 1
        self._sleep(min(self._delay, left))
        self._delay = min(self._delay * 2, _MAX_DELAY)
        return True


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
