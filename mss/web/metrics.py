"""What `/metrics` reads from the database at scrape time (the same whichever worker
answers): the outbox's rows and age by kind, the notices by channel and status."""

from __future__ import annotations

from collections.abc import Sequence

from mss.metrics import Family
from mss.store.outbox import KindStats


def notify_families(
    stats: Sequence[tuple[str, str, int]], lags: dict[str, list[int]]
) -> list[Family]:
    """Notices of the last 24 hours by channel and status, and the p99 of the seconds
    from an event to its notice (per channel)."""
    notices = Family(
        "mss_notify_notices", "Notices of the last 24 hours by channel and status.",
        ["channel", "status"],
    )  # fmt: skip
    for channel, status, count in stats:
        notices.add([channel or "none", status], count)
    lag = Family(
        "mss_notify_lag_p99_seconds", "p99 of the seconds from an event to its notice.",
        ["channel"],
    )  # fmt: skip
    for channel, measured in lags.items():
        ordered = sorted(measured)
        lag.add([channel], ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))])
    return [notices, lag]


def outbox_families(stats: Sequence[KindStats], now: float) -> list[Family]:
    """Rows per kind (relay is the queue of mail to other operators) and status, and
    the age of each kind's oldest pending row."""
    rows = Family("mss_outbox_rows", "Outbox rows by kind and status.", ["kind", "status"])
    oldest = Family(
        "mss_outbox_oldest_pending_seconds", "Age of the oldest pending row by kind.", ["kind"]
    )
    for kind in stats:
        for status, count in kind.counts.items():
            rows.add([kind.kind, status], count)
        age = 0.0 if kind.oldest_pending is None else max(0.0, now - kind.oldest_pending)
        oldest.add([kind.kind], round(age))
    return [rows, oldest]
