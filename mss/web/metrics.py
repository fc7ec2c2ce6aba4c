"""The Prometheus text of `/metrics` (exposition format 0.0.4)."""

from __future__ import annotations

from collections.abc import Sequence

from mss.store.outbox import KindStats


def notify_lines(stats: Sequence[tuple[str, str, int]], lags: dict[str, list[int]]) -> list[str]:
    """Notices of the last 24 hours by channel and status, and the p99 of the seconds
    from an event to its notice (per channel)."""
    lines = ["# TYPE mss_notify_notices gauge"]
    for channel, status, count in sorted(stats):
        lines.append(
            f'mss_notify_notices{{channel="{channel or "none"}",status="{status}"}} {count}'
        )
    lines.append("# TYPE mss_notify_lag_p99_seconds gauge")
    for channel, values in sorted(lags.items()):
        ordered = sorted(values)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        lines.append(f'mss_notify_lag_p99_seconds{{channel="{channel}"}} {p99}')
    return lines


def outbox_lines(stats: Sequence[KindStats], now: float) -> list[str]:
    """Rows per kind and status, and the age of each kind's oldest pending row: the
    same for every worker (read from the database), so scrapes never alternate."""
    lines = ["# TYPE mss_outbox_rows gauge"]
    for kind in stats:
        for status, count in sorted(kind.counts.items()):
            lines.append(f'mss_outbox_rows{{kind="{kind.kind}",status="{status}"}} {count}')
    lines.append("# TYPE mss_outbox_oldest_pending_seconds gauge")
    for kind in stats:
        age = 0.0 if kind.oldest_pending is None else max(0.0, now - kind.oldest_pending)
        lines.append(f'mss_outbox_oldest_pending_seconds{{kind="{kind.kind}"}} {age:.0f}')
    return lines
