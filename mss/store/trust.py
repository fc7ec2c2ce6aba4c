"""The trust-space whitelist as stored: replaced whole by each import."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, delete, insert, select

from mss.store.models import trusted_domain_table, utcnow
from mss.store.sql import Tx


def replace_whitelist(tx: Tx, domains: Sequence[str]) -> tuple[int, int]:
    """Make `domains` the whole whitelist; return (added, removed) counts."""
    before = set(trusted_domains(tx.conn))
    after = set(domains)
    tx.conn.execute(delete(trusted_domain_table))
    now = utcnow()
    if after:
        tx.conn.execute(
            insert(trusted_domain_table), [{"domain": d, "imported_at": now} for d in sorted(after)]
        )
    return len(after - before), len(before - after)


def trusted_domains(conn: Connection) -> list[str]:
    rows = conn.execute(
        select(trusted_domain_table.c.domain).order_by(trusted_domain_table.c.domain)
    )
    return [row.domain for row in rows]
