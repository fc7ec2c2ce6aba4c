"""The DMP's traces: append-only and hash-chained (DOMAIN.md §5, "Every access and
deposit is traced").

Each trace carries the SHA-256 of the previous trace's hash and of its own
fields; `verify` walks the chain and reports any trace modified, deleted or
inserted. Appends are serialised (the writer's transaction on SQLite, an
advisory lock on PostgreSQL: `store/dmp_traces.py`) so that the chain never forks. Deleting the most
recent traces leaves a shorter valid chain: `verify` prints the head hash, to
be kept elsewhere (`traces_head.py`: a file beside the data, a log line) and
given back to `verify`, which then fails when that head is no longer in the chain.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from mss.dmp.traces_head import Head
from mss.store import dmp_traces as stored
from mss.store.models import utcnow
from mss.store.sql import Conn, Tx

GENESIS = "0" * 64


def digest(prev: str, row: dict[str, Any]) -> str:
    at = row["at"].astimezone(dt.UTC).isoformat(timespec="microseconds")
    fields = [
        prev, row["ins"], at, row["actor_kind"], row["actor"], row["action"], row["mode"] or "",
        row["document_id"], row["detail"] or "",
    ]  # fmt: skip
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode()).hexdigest()


def append(
    tx: Tx,
    ins: str,
    actor_kind: str,
    actor: str,
    action: str,
    *,
    mode: str = "",
    document_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> str:
    """Add a trace at the end of the chain; return its hash."""
    prev = stored.locked_head(tx) or GENESIS
    row: dict[str, Any] = {
        "ins": ins, "at": utcnow(), "actor_kind": actor_kind, "actor": actor, "action": action,
        "mode": mode, "document_id": document_id,
        "detail": json.dumps(detail, ensure_ascii=False, sort_keys=True) if detail else "",
    }  # fmt: skip
    row["prev_hash"] = prev
    row["hash"] = digest(prev, row)
    stored.add_trace(tx, row)
    return str(row["hash"])


def history(conn: Conn, ins: str, limit: int = 500) -> list[dict[str, Any]]:
    """The traces of one DMP, newest first."""
    return [_trace_dict(r) for r in stored.traces_of(conn, ins, limit)]


def _trace_dict(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": r["id"],
        "at": r["at"].astimezone(dt.UTC).isoformat(),
        "actor_kind": r["actor_kind"],
        "actor": r["actor"],
        "action": r["action"],
        "mode": r["mode"] or None,
        "document_id": r["document_id"],
        "detail": json.loads(r["detail"]) if r["detail"] else None,
    }


def has_trace(conn: Conn, ins: str, actor: str, action: str) -> bool:
    return stored.has_trace(conn, ins, actor, action)


@dataclass
class Verification:
    traces: int = 0
    head: str = GENESIS
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(conn: Conn, expected: Head | None = None) -> Verification:
    """Walk the whole chain: every trace must extend the previous one and hash right;
    with `expected` (a head kept outside the database), the chain must hold that hash
    (at that trace id when given): a chain cut or rewritten before it fails."""
    result = Verification()
    prev = GENESIS
    seen = expected is None or (expected.hash == GENESIS and not expected.position)
    for row in stored.every_trace(conn):
        result.traces += 1
        result.problems += _problems(row, prev)
        prev = row["hash"]
        seen = seen or _is_head(row, expected)
    result.head = prev
    if not seen:
        result.problems.append(
            f"head {expected} not in the chain: traces were deleted or rewritten since"
        )
    return result


def _is_head(row: dict[str, Any], expected: Head | None) -> bool:
    if expected is None or row["hash"] != expected.hash:
        return False
    return expected.position is None or row["id"] == expected.position


def _problems(row: dict[str, Any], prev: str) -> list[str]:
    """What is wrong with one trace, coming after the trace whose hash is `prev`."""
    problems = []
    if row["prev_hash"] != prev:
        problems.append(
            f"trace {row['id']}: does not follow the previous trace (one was deleted or inserted)"
        )
    if digest(row["prev_hash"], row) != row["hash"]:
        problems.append(f"trace {row['id']}: modified (its hash does not match its fields)")
    return problems
