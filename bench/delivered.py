"""What another server did with a load: how many messages its maildir holds, and
the CPU time its process trees spent (for `mss bench smtp --target`)."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path


def maildir_count(maildir: Path) -> int:
    """Messages delivered into a maildir (new/ and cur/; tmp/ holds unfinished ones)."""
    total = 0
    for sub in ("new", "cur"):
        with contextlib.suppress(FileNotFoundError):
            total += len(os.listdir(maildir / sub))
    return total


def wait_for_maildir(maildir: Path, count: int, timeout: float = 60.0) -> int:
    """Wait until the maildir holds `count` messages (or `timeout` passes without a
    new one); return how many it holds."""
    held, last_change = maildir_count(maildir), time.monotonic()
    while held < count and time.monotonic() - last_change < timeout:
        time.sleep(0.005)
        now = maildir_count(maildir)
        if now != held:
            held, last_change = now, time.monotonic()
    return held


def _processes() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds of the process and of its reaped children)."""
    ticks = os.sysconf("SC_CLK_TCK")
    table: dict[int, tuple[int, float]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[0] is the state: ppid is field 4 of stat, utime..cstime 14..17
        table[int(stat.parent.name)] = (int(fields[1]), sum(map(int, fields[11:15])) / ticks)
    return table


def tree_cpu(roots: list[int]) -> float:
    """CPU seconds of these processes and of all their descendants, live or reaped
    (a reaped child's time is in its parent's cutime/cstime): Postfix's master and
    Dovecot's fork short-lived workers."""
    table = _processes()
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    total, todo, seen = 0.0, [r for r in roots if r in table], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += table[pid][1]
        todo.extend(children.get(pid, []))
    return total
