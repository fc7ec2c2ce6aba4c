"""The Prometheus text of `/metrics` (exposition format 0.0.4)."""

from __future__ import annotations

from collections.abc import Sequence

from mss.store.outbox import KindStats


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
