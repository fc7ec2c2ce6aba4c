"""The head of the DMP traces' hash chain, kept outside the database.

The chain (`traces.py`) shows any trace modified or removed in its middle, but not
the most recent traces deleted: what remains is a shorter valid chain. Whoever can
write the database can do that; they cannot also rewrite what was written elsewhere.
So the head — the id N of the last trace and its hash H — is kept

- in a file beside the data (`DATA_DIR/traces.head`, one line `N H`), replaced
  atomically (written aside, fsynced, renamed), and
- in the log, one INFO line `DMP traces head N H` that an operator ships to
  another machine (syslog, a SIEM);

and `mss dmp verify-traces --head` checks that the chain still holds H at id N:
a chain cut before N, or rewritten up to N, fails.

When: `mss serve` (its first worker) reads the head every `HEAD_INTERVAL` seconds
and writes it when it moved, once more when it stops, and `mss backup` writes it
too. Not after each trace's commit: that would put a file write and an fsync in
the path of every consultation, and with several workers or nodes committing
traces the writes would race (an older head could land after a newer one); a
single periodic writer never goes backwards. The price is a window: traces
committed in the last `HEAD_INTERVAL` seconds are covered by the chain only, not
yet by the external head.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from mss.errors import InputError
from mss.store import dmp_traces as stored
from mss.store.sql import Conn

HEAD_FILE = "traces.head"
HEAD_INTERVAL = 10.0
_HEAD = re.compile(r"^\s*(?:(\d+)[\s:])?\s*([0-9a-f]{64})\s*$")


@dataclass(frozen=True, slots=True)
class Head:
    """The last trace: its id (None when only the hash is known) and its hash."""

    position: int | None
    hash: str

    def __str__(self) -> str:
        return f"{self.position} {self.hash}" if self.position is not None else self.hash


def current(conn: Conn) -> Head | None:
    """The head of the chain in the database (None: no trace yet)."""
    last = stored.last_trace(conn)
    return Head(*last) if last is not None else None


def parse(text: str) -> Head:
    """`H`, `N H`, `N:H`, or the path of a head file holding `N H`."""
    found = _HEAD.match(text.lower())
    if found is None and Path(text).is_file():
        found = _HEAD.match(Path(text).read_text("utf-8").lower())
    if found is None:
        raise InputError(f"tête de chaîne illisible (unreadable chain head): {text!r}")
    position = int(found.group(1)) if found.group(1) else None
    return Head(position, found.group(2))


def write(path: Path, head: Head) -> None:
    """Replace the head file atomically: written aside, fsynced, renamed over."""
    aside = path.with_name(path.name + ".tmp")
    with open(aside, "w", encoding="utf-8") as out:
        out.write(f"{head}\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(aside, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def advance(path: Path, head: Head) -> bool:
    """Write `head` to the head file unless it already holds a later trace (a backup and
    the server may both write it: the file never goes backwards). True if written."""
    try:
        kept = parse(path.read_text("utf-8"))
    except (OSError, InputError):
        kept = None
    if kept is not None and (kept.position or 0) >= (head.position or 0):
        return False
    write(path, head)
    return True
