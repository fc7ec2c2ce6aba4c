"""The DMP's audit trail: `mss dmp verify-traces`."""

from __future__ import annotations

from mss.config import Settings
from mss.dmp import traces
from mss.instance import opened_store


def verify_dmp_traces(settings: Settings) -> traces.Verification:
    """Walk the hash chain of the DMP traces."""
    with opened_store(settings) as store:
        return store.db.read_sync(traces.verify)
