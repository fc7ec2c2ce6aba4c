"""The table of `scripts/bench-smtp-postfix`: for each number of connections, the
median rate of Postfix + Dovecot and of mss over the runs, their ratio, and the
server CPU per message (`python -m bench.smtptable FOLDER CONNECTIONS…`)."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any


def _runs(folder: Path, server: str, connections: str) -> list[dict[str, Any]]:
    files = sorted(folder.glob(f"{server}-{connections}-*.json"))
    return [json.loads(f.read_text()) for f in files]


def _rates(runs: list[dict[str, Any]]) -> tuple[float, str]:
    rates = [r["messages_per_second"] for r in runs]
    spread = f"{min(rates):,.1f}–{max(rates):,.1f}" if len(rates) > 1 else ""
    return statistics.median(rates), spread


def _cpu_ms(runs: list[dict[str, Any]]) -> str:
    per = [r["server_cpu_seconds"] * 1000 / r["messages"] for r in runs
           if r.get("server_cpu_seconds") is not None]  # fmt: skip
    return f"{statistics.median(per):.2f}" if per else "?"


def _p99(runs: list[dict[str, Any]]) -> str:
    return f"{statistics.median(r['p99_ms'] for r in runs):.1f}"


def table(folder: Path, connections: list[str]) -> list[str]:
    lines = [
        "| connections | Postfix+Dovecot msg/s | mss msg/s | ratio"
        " | CPU ms/msg Postfix+Dovecot | CPU ms/msg mss | p99 ms (250) Postfix / mss |",
        "|---|---|---|---|---|---|---|",
    ]
    for conn in connections:
        postfix, mss = _runs(folder, "postfix", conn), _runs(folder, "mss", conn)
        if not postfix or not mss:
            continue
        (p_rate, p_spread), (m_rate, m_spread) = _rates(postfix), _rates(mss)
        lines.append(
            f"| {conn} | {p_rate:,.1f} {f'({p_spread})' if p_spread else ''}"
            f" | {m_rate:,.1f} {f'({m_spread})' if m_spread else ''}"
            f" | {m_rate / p_rate:.2f} | {_cpu_ms(postfix)} | {_cpu_ms(mss)}"
            f" | {_p99(postfix)} / {_p99(mss)} |"
        )
    return lines


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    print("\n".join(table(folder, sys.argv[2:])))
    print(
        "(median over the runs, range in brackets; Postfix's rate is end to end into the maildir)"
    )
