"""The DMP's audit trail: `mss dmp verify-traces`."""

from __future__ import annotations

from mss.config import Settings
from mss.dmp import traces
from mss.dmp.traces_head import Head
from mss.errors import InputError
from mss.store.backup import dialect_of, sqlite_path
from mss.store.db import Database


def verify_dmp_traces(settings: Settings, expected: Head | None = None) -> traces.Verification:
    """Walk the hash chain of the DMP traces (up to the head kept outside, if given)."""
    return verify_traces_at(settings.storage_url, expected)


def verify_traces_at(url: str, expected: Head | None = None) -> traces.Verification:
    """The same on the database at `url`, as it is: not migrated, and without the blob
    keys (the traces hold no blob), so that a restored copy is checked before they are
    back."""
    if dialect_of(url) == "sqlite" and not sqlite_path(url).exists():
        raise InputError(f"pas de base de données (no database): {sqlite_path(url)}")
    db = Database(url, reader_threads=1)
    try:
        return db.read_sync(lambda conn: traces.verify(conn, expected))
    finally:
        db.close_sync()
