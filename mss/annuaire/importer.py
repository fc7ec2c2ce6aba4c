"""`mss annuaire import`: load national extraction files into the annuaire.

Files are read as bytes, one line at a time (plain `.txt`, or the `.txt`
inside a published `.zip`), so memory stays constant whatever their size.
Every file of one kind given to one import is one extraction: it replaces
the previous one. The rows go to the set of tables that is not live (see
`store/annuaire.py`) in batches of one transaction each; the indexes are
built after the load; the summary (added, changed, retired) is computed in
SQL against the live set; then one short transaction makes the new set live.
Readers see the old directory until that commit and the new one after it.
This module reads the files, turns lines into records, batches them and keeps
the summary; each step on the tables is a function of `store/annuaire_load.py`.

A line that cannot be imported is rejected with its number and reason and
the import goes on; a file whose header is not a known layout is refused
before anything is written.
"""

from __future__ import annotations

import io
import logging
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any, cast

from mss.annuaire.formats import BadHeader, BadLine, Kind, Layout, detect_layout
from mss.errors import InputError
from mss.store.annuaire_load import Comparison, SpareSet, exclusive
from mss.store.db import Database

log = logging.getLogger("mss.annuaire")

BATCH = 10_000
KEEP_REJECTS = 1000  # rejected lines kept for the report (all are counted)


@dataclass(frozen=True)
class Rejected:
    source: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.reason}"


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


# progress(bytes read, bytes in all files, lines read)
Progress = Callable[[int, int, int], None]


@dataclass(frozen=True)
class _Source:
    name: str
    size: int
    open: Callable[[], IO[bytes]]


def _sources(path: Path) -> list[_Source]:
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
        texts = [m for m in members if m.filename.lower().endswith((".txt", ".csv"))] or members
        if not texts:
            raise InputError(f"{path}: the archive holds no extraction file")

        return [
            _Source(f"{path.name}:{m.filename}", m.file_size, partial(_MemberReader, path, m))
            for m in texts
        ]
    return [_Source(path.name, path.stat().st_size, lambda: path.open("rb", buffering=1 << 20))]


class _MemberReader(io.BufferedReader):
    """One file of a zip archive, streamed; closing it closes the archive."""

    def __init__(self, path: Path, member: zipfile.ZipInfo) -> None:
        self._archive = zipfile.ZipFile(path)
        super().__init__(cast(Any, self._archive.open(member)), buffer_size=1 << 20)

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._archive.close()


def _header(source: _Source) -> Layout:
    with source.open() as stream:
        first = stream.readline()
    try:
        return detect_layout(first.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise InputError(f"{source.name}: the header is not UTF-8") from None
    except BadHeader as exc:
        raise InputError(f"{source.name}: {exc}") from None


def plan(paths: Sequence[Path]) -> dict[Kind, list[tuple[_Source, Layout]]]:
    """Open every file, read its header: refuse the whole import if one is unknown."""
    planned: dict[Kind, list[tuple[_Source, Layout]]] = {}
    for path in paths:
        for source in _sources(path):
            layout = _header(source)
            planned.setdefault(layout.kind, []).append((source, layout))
    return planned


def _records(
    files: list[tuple[_Source, Layout]], summary: Summary, progress: Progress | None
) -> Iterator[tuple[str, ...]]:
    total = sum(s.size for s, _ in files)
    done = 0
    for source, layout in files:
        with source.open() as stream:
            done += len(stream.readline())
            number = 1
            for raw in stream:
                number += 1
                done += len(raw)
                if progress is not None and number % 50_000 == 0:
                    progress(done, total, summary.lines)
                line = raw.rstrip(b"\r\n")
                if not line.strip():
                    continue
                summary.lines += 1
                try:
                    text = line.decode("utf-8")
                except UnicodeDecodeError as exc:
                    _reject(summary, source.name, number, f"not UTF-8 (byte {exc.start + 1})")
                    continue
                try:
                    yield layout.record(text.split("|"))
                except BadLine as exc:
                    _reject(summary, source.name, number, str(exc))
    if progress is not None:
        progress(total, total, summary.lines)


def _reject(summary: Summary, source: str, line: int, reason: str) -> None:
    summary.rejected += 1
    if len(summary.rejects) < KEEP_REJECTS:
        summary.rejects.append(Rejected(source, line, reason))


# --- the import ----------------------------------------------------------------------------


def _load(spare: SpareSet, records: Iterable[tuple[str, ...]]) -> None:
    """Append the records to the spare set, BATCH at a time (one transaction each)."""
    # One thread: parsing and binding both need the GIL, and a writer thread
    # beside the parser made the load slower, not faster (measured).
    batch: list[tuple[str, ...]] = []
    for record in records:
        batch.append(record)
        if len(batch) >= BATCH:
            spare.append(batch)
            batch = []
    if batch:
        spare.append(batch)


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


def _state_counts(summary: Summary) -> dict[str, int]:
    """The counts `annuaire_state` keeps of the last import (shown by `mss annuaire status`)."""
    keys = ("entries", "lines", "added", "changed", "retired", "rejected")
    return {k: getattr(summary, k) for k in keys}


def import_files(
    db: Database, paths: Sequence[Path], progress: Progress | None = None
) -> list[Summary]:
    """Import extraction files; one Summary per kind of file found among them."""
    planned = plan(paths)
    summaries = []
    with exclusive(db):
        for kind, files in planned.items():
            summaries.append(_import_kind(db, kind, files, progress))
    return summaries


def _import_kind(
    db: Database, kind: Kind, files: list[tuple[_Source, Layout]], progress: Progress | None
) -> Summary:
    started = time.perf_counter()
    summary = Summary(kind.value, [s.name for s, _ in files])
    spare = SpareSet(db, kind.value)
    spare.empty()
    _load(spare, _records(files, summary, progress))
    # the sorts to come (indexes, merges, comparison) must not grow with the file;
    # after the load, whose statement journals stay in memory
    db.spill_sorts_to_disk()
    _refuse_if_empty(summary)
    spare.finish()
    _add_comparison(summary, spare.compare())
    spare.make_live(source=", ".join(summary.sources), counts=_state_counts(summary))
    summary.seconds = time.perf_counter() - started
    log.info(
        "annuaire %s: %d lines, %d entries (%d added, %d changed, %d retired), %d rejected",
        kind.value, summary.lines, summary.entries, summary.added, summary.changed,
        summary.retired, summary.rejected,
    )  # fmt: skip
    return summary
