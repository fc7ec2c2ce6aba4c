"""A consistent copy of the database taken while mss runs, and its restore.

SQLite: the online backup API (`sqlite3.Connection.backup`) copies every page in
one step, inside one read transaction: the copy is the database as of one commit,
and the writer (WAL) is never blocked. PostgreSQL: `pg_dump` in its custom format
(one repeatable-read snapshot, the server keeps serving), and `pg_restore` into an
empty database. `pg_dump` cannot dump a server newer than itself: the one used is
the server's major version (`/usr/lib/postgresql/<major>/bin`), else the one on
PATH if it is at least as new. The password of the URL goes to the tools through
`PGPASSWORD`, not on their command line (which `ps` shows).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy import inspect, make_url, text

from mss.errors import InputError, StoreError
from mss.store.db import MIGRATIONS_DIR, make_null_pool_engine, normalize_url

SQLITE_FILE = "database.sqlite"
POSTGRES_FILE = "database.pgdump"
TOOL_TIMEOUT = 3600


def dialect_of(url: str) -> str:
    return "sqlite" if normalize_url(url).startswith("sqlite") else "postgresql"


def sqlite_path(url: str) -> Path:
    """The file of a `sqlite:///…` URL."""
    database = make_url(normalize_url(url)).database
    if not database or database == ":memory:":
        raise InputError(f"no database file in {url!r}")
    return Path(database)


def dump(url: str, target: Path) -> Path:
    """Write a consistent copy of the database at `url` into the folder `target`."""
    if dialect_of(url) == "sqlite":
        return _sqlite_copy(sqlite_path(url), target / SQLITE_FILE)
    out = target / POSTGRES_FILE
    tool = pg_tool("pg_dump", server_major(url))
    _run_tool([str(tool), "--format=custom", "--no-owner", f"--file={out}"], url)
    return out


def restore(url: str, source: Path) -> None:
    """Put the copy `source` (made by `dump`) in place as the database at `url`, which must
    be empty: a missing (or empty) SQLite file, a PostgreSQL database without tables."""
    if dialect_of(url) == "sqlite":
        path = sqlite_path(url)
        if path.exists() and path.stat().st_size > 0:
            raise InputError(f"la base existe déjà (the database already exists): {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        _sqlite_copy(source, path)
        return
    if has_tables(url):
        raise InputError(
            "la base PostgreSQL n'est pas vide (the PostgreSQL database is not empty): "
            f"{make_url(normalize_url(url)).render_as_string(hide_password=True)}"
        )
    tool = pg_tool("pg_restore", server_major(url))
    _run_tool([str(tool), "--no-owner", "--exit-on-error", "--single-transaction", str(source)],
              url)  # fmt: skip


def schema_revision(url: str) -> str | None:
    """The migration (Alembic revision) the database at `url` is at."""
    engine = make_null_pool_engine(url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            found = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            return str(found) if found is not None else None
    finally:
        engine.dispose()


def known_revision(revision: str | None) -> bool:
    """Whether this mss has the migration `revision` (a backup of a newer mss: not)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    if revision is None:
        return True
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return revision in {s.revision for s in ScriptDirectory.from_config(config).walk_revisions()}


def has_tables(url: str) -> bool:
    engine = make_null_pool_engine(url)
    try:
        with engine.connect() as conn:
            return bool(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def _sqlite_copy(source: Path, target: Path) -> Path:
    """Copy a live SQLite database page by page in one step (one snapshot), then fsync."""
    if not source.exists():
        raise StoreError(f"no SQLite database at {source}")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        with dst:
            src.backup(dst)  # pages=-1: everything in one step, under one read lock
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    finally:
        dst.close()
        src.close()
    with open(target, "rb") as f:
        os.fsync(f.fileno())
    return target


def server_major(url: str) -> int:
    """The major version of the PostgreSQL server at `url`."""
    engine = make_null_pool_engine(url)
    try:
        with engine.connect() as conn:
            number = conn.execute(text("SHOW server_version_num")).scalar()
    finally:
        engine.dispose()
    return int(str(number)) // 10000


def pg_tool(name: str, major: int) -> Path:
    """`pg_dump` or `pg_restore` of the server's major version (or newer)."""
    candidates = [f"/usr/lib/postgresql/{major}/bin/{name}"]
    candidates += sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    on_path = shutil.which(name)
    candidates += [on_path] if on_path else []
    for candidate in candidates:
        if Path(candidate).exists() and _tool_major(Path(candidate)) >= major:
            return Path(candidate)
    raise StoreError(f"{name} {major} introuvable (not found): install postgresql-client-{major}")


def _tool_major(tool: Path) -> int:
    version = [str(tool), "--version"]
    out = subprocess.run(version, capture_output=True, text=True, check=False)  # noqa: S603
    found = re.search(r"(\d+)(?:\.\d+)?", out.stdout)
    return int(found.group(1)) if found else 0


def _run_tool(command: list[str], url: str) -> None:
    """Run pg_dump/pg_restore against `url`; a failure is a StoreError with its stderr."""
    parsed = make_url(normalize_url(url))
    dsn = parsed.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    done = subprocess.run(  # noqa: S603  (our own tools, no shell)
        [*command, f"--dbname={dsn}"], capture_output=True, text=True, env=env,
        timeout=TOOL_TIMEOUT, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        raise StoreError(f"{Path(command[0]).name} a échoué (failed): {last}")
