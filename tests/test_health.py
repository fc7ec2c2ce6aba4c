"""/healthz reports a damaged database (issue 14): the whole SQLite file is read in the
background (`PRAGMA quick_check`), and a damaged one answers 503 "endommagée (damaged)",
where a plain `SELECT 1` still answers."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import httpx

from .harness import Running, running


def _damage(database: Path) -> None:
    """Overwrite the root page of one of the message table's indexes."""
    with closing(sqlite3.connect(database)) as conn, conn:
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE type = 'index' AND tbl_name = 'message'"
        ).fetchone()[0]
    conn.close()
    with database.open("r+b") as file:
        file.seek((root - 1) * size)
        file.write(b"\xff" * 64)


async def _health(server: Running) -> httpx.Response:
    async with httpx.AsyncClient(verify=server.client_tls()) as web:
        return await web.get(f"https://localhost:{server.ports['https']}/healthz")


async def test_healthz_is_ok_on_a_sound_database(instance: Path) -> None:
    async with running(instance) as server:
        assert await server.app.check_integrity() == "ok"
        answer = await _health(server)
    assert answer.status_code == 200 and answer.json() == {"status": "ok", "database": "ok"}


async def test_healthz_reports_a_damaged_database(instance: Path) -> None:
    _damage(instance / "mss.db")
    async with running(instance) as server:
        found = await server.app.check_integrity()
        answer = await _health(server)
    assert "Page" in found  # SQLite's own words about the damaged page
    assert answer.status_code == 503
    assert answer.json()["status"] == "degraded"
    assert answer.json()["database"].startswith("endommagée (damaged): ")
