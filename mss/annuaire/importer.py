"""`mss annuaire import`: load national extraction files into the annuaire.

The files are read and their lines parsed by `reading.py`, in a second
process beside this one, which writes. Every file of one kind given to one
import is one extraction: it replaces the previous one. The rows go to the
set of tables that is not live (see `store/annuaire.py`) in batches of one
transaction each; the indexes are built after the load; the summary (added,
changed, retired) is computed in SQL against the live set; then one short
transaction makes the new set live.
Readers see the old directory until that commit and the new one after it.
This module drives the import and keeps the summary; each step on the tables
is a function of `store/annuaire_load.py`.

A line that cannot be imported is rejected with its number and reason and
the import goes on; a file whose header is not a known layout is refused
before anything is written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mss.annuaire.formats import Kind, Layout
from mss.annuaire.reading import Progress, Rejected, Source, Tally, plan, records_beside
from mss.errors import InputError
from mss.store.annuaire_load import Comparison, SpareSet, exclusive
from mss.store.db import Database

__all__ = ["Progress", "Rejected", "Summary", "import_files"]

log = logging.getLogger("mss.annuaire")

BATCH = 10_000


@dataclass
class Summary:
    """What an import did to one kind of extraction."""

    kind: str
    sources: list[str]
    lines: int = 0  # data lines read (header excluded)
    entries: int = 0  # mailboxes (mssante) or professionals (ps) after the import
    activities: int = 0  # activity lines kept (ps)
    added: int = 0
    changed: int = 0
    retired: int = 0
    rejected: int = 0
    rejects: list[Rejected] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "sources": self.sources,
            "lines": self.lines,
            "entries": self.entries,
            "activities": self.activities,
            "added": self.added,
            "changed": self.changed,
            "retired": self.retired,
            "rejected": self.rejected,
            "rejects": [str(r) for r in self.rejects],
            "seconds": round(self.seconds, 2),
        }


# --- the import ----------------------------------------------------------------------------


def _load(
    spare: SpareSet, files: list[tuple[Source, Layout]], summary: Summary, progress: Progress | None
) -> None:
    """Empty the spare set, append the files' records, BATCH at a time (one transaction
    each), while the reading process parses the next batch; count its lines and rejects."""
    tally = Tally()
    with records_beside(files, tally, progress, BATCH) as batches:
        spare.empty()
        for batch in batches:
            spare.append(batch)
    summary.lines, summary.rejected, summary.rejects = tally.lines, tally.rejected, tally.rejects


def _refuse_if_empty(summary: Summary) -> None:
    """No line, or none importable: the annuaire stays as it is."""
    if not summary.lines:
        raise InputError(f"{', '.join(summary.sources)}: no data lines; the annuaire is unchanged")
    if summary.rejected == summary.lines:
        raise InputError(
            f"every line of {', '.join(summary.sources)} was rejected "
            f"(first: {summary.rejects[0]}); the annuaire is unchanged"
        )


def _add_comparison(summary: Summary, found: Comparison) -> None:
    summary.entries, summary.activities = found.entries, found.activities
    summary.added, summary.changed, summary.retired = found.added, found.changed, found.retired


def _compare_while_indexing(spare: SpareSet) -> Comparison:
    """The comparison on a reading connection in a thread, while this one builds the
    indexes: both are statements of the database, which leaves the GIL to the other."""
    with ThreadPoolExecutor(1, thread_name_prefix="annuaire-compare") as pool:
        comparing = pool.submit(spare.compare)
        spare.index()
    return comparing.result()  # the pool's end waited for it, even if the indexes failed


def _state_counts(summary: Summary) -> dict[str, int]:
    """The counts `annuaire_state` keeps of the last import (shown by `mss annuaire status`)."""
    keys = ("entries", "lines", "added", "changed", "retired", "rejected")
    return {k: getattr(summary, k) for k in keys}


def import_files(
    db: Database, paths: Sequence[Path], progress: Progress | None = None
) -> list[Summary]:
    """Import extraction files; one Summary per kind of file found among them."""
    planned = plan(list(paths))
    summaries = []
    with exclusive(db):
        for kind, files in planned.items():
            summaries.append(_import_kind(db, kind, files, progress))
    return summaries


def _import_kind(
    db: Database, kind: Kind, files: list[tuple[Source, Layout]], progress: Progress | None
) -> Summary:
    started = time.perf_counter()
    summary = Summary(kind.value, [s.name for s, _ in files])
    spare = SpareSet(db, kind.value)
    _load(spare, files, summary, progress)
    # the sorts to come (indexes, merges, comparison) must not grow with the file;
    # after the load, whose statement journals stay in memory
    db.spill_sorts_to_disk()
    _refuse_if_empty(summary)
    spare.finish()
    _add_comparison(summary, _compare_while_indexing(spare))
    spare.make_live(source=", ".join(summary.sources), counts=_state_counts(summary))
    summary.seconds = time.perf_counter() - started
    log.info(
        "annuaire %s: %d lines, %d entries (%d added, %d changed, %d retired), %d rejected",
        kind.value, summary.lines, summary.entries, summary.added, summary.changed,
        summary.retired, summary.rejected,
    )  # fmt: skip
    return summary
