"""Shared fixtures: databases (SQLite and a real PostgreSQL), stores, instances.

The PostgreSQL server is started once per session from Debian's binaries
(`mss.testing.postgres.TemporaryPostgres`), unless MSS_TEST_POSTGRES_URL names one.
Each test gets its own database. With MSS_REQUIRE_POSTGRES=1 (set by
./scripts/test and CI) a missing PostgreSQL fails the run instead of skipping.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import psycopg
import pytest
import uvloop

from mss.store.api import Store
from mss.store.blobs import create_key_file
from mss.testing.postgres import TemporaryPostgres, find_pg_bin

from .harness import Running, running
from .notifying import sink  # noqa: F401  (the smarthost of the notification tests)

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(__file__).resolve().parent / "data"  # copy of ../shared/data
TEST_DATA = Path(__file__).resolve().parent / "data"


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """In-process servers and clients run on the loop `mss serve` runs by default
    (`server.event_loop`): uvloop's. `MSS_TEST_EVENT_LOOP=asyncio` runs them on the
    standard library's instead."""
    if os.environ.get("MSS_TEST_EVENT_LOOP") == "asyncio":
        return {"asyncio": asyncio.new_event_loop}
    return {"uvloop": uvloop.new_event_loop}


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """URL of a PostgreSQL server for the whole session."""
    url = os.environ.get("MSS_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    if find_pg_bin() is None:
        if os.environ.get("MSS_REQUIRE_POSTGRES") == "1":
            pytest.fail("PostgreSQL is required (MSS_REQUIRE_POSTGRES=1) but not installed")
        pytest.skip("PostgreSQL is not installed")
    server = TemporaryPostgres()
    try:
        yield server.start()
    finally:
        server.stop()


def _admin_conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database on the session's server, dropped afterwards."""
    yield from fresh_database(postgres_server)


def fresh_database(postgres_server: str) -> Iterator[str]:
    """Create an empty database on the server, yield its URL, drop it."""
    name = f"mss_test_{uuid.uuid4().hex[:12]}"
    admin = _admin_conninfo(postgres_server)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = postgres_server.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'mss.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "blob.keys"
    create_key_file(path)
    return path


@pytest.fixture
async def store(db_url: str, key_file: Path) -> AsyncIterator[Store]:
    opened = Store.open(db_url, key_file)
    opened.start()
    try:
        yield opened
    finally:
        await opened.close()


def run_mss(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real `mss` command (python -m mss) and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "mss", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="session")
def instance_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `mss init` per session; tests copy it (PKI and DKIM keys take time)."""
    data = tmp_path_factory.mktemp("template") / "data"
    result = run_mss(
        "init",
        "--data-dir",
        str(data),
        "--domain",
        "pro.mssante.test",
        "--domain",
        "hopital.mssante.test",
    )
    assert result.returncode == 0, result.stderr
    return data


@pytest.fixture
def instance(instance_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of an initialised data directory."""
    import shutil

    target = tmp_path / "data"
    shutil.copytree(instance_template, target)
    return target


@pytest.fixture
async def mss(instance: Path) -> AsyncIterator[Running]:
    """A running mss on the SQLite instance, every listener on an ephemeral port."""
    async with running(instance) as server:
        yield server
