"""The DMP's audit trail: `mss dmp verify-traces`."""

from __future__ import annotations

from mss.config import Settings
from mss.dmp import traces
from mss.dmp.traces_head import Head
from mss.instance import opened_store


def verify_dmp_traces(settings: Settings, expected: Head | None = None) -> traces.Verification:
    """Walk the hash chain of the DMP traces (up to the head kept outside, if given)."""
    with opened_store(settings) as store:
        return store.db.read_sync(lambda conn: traces.verify(conn, expected))
