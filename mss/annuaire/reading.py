"""Reading extraction files: their sources, headers, and lines turned into records.

Files are read as bytes, one line at a time (plain `.txt`, or the `.txt`
inside a published `.zip`), so memory stays constant whatever their size.
A line that cannot be imported is rejected with its file, number and reason
(`Tally`); the reading goes on.

`records_beside` does the reading and the parsing in a second process while
the importing one writes the rows: each of the two does about half of the
import's work, on its own core. The records come back through a pipe by
batches; the reader waits for each batch to be taken before it sends the next,
so memory stays constant there too. Then comes its tally of lines and rejects.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import signal
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from typing import IO, Any, cast

from mss.annuaire.formats import BadHeader, BadLine, Kind, Layout, detect_layout
from mss.errors import InputError, MssError

KEEP_REJECTS = 1000  # rejected lines kept for the report (all are counted)
# Fields never hold these: a field is a piece of a line split on "|", a line ends
# at "\n"; every value the parser adds (keys, address, department) is made of fields.
_FIELD_END, _RECORD_END = "|", "\n"

# progress(bytes read, bytes in all files, lines read)
Progress = Callable[[int, int, int], None]


@dataclass(frozen=True)
class Rejected:
    source: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.reason}"


@dataclass
class Tally:
    """The data lines read (header excluded) and those rejected."""

    lines: int = 0
    rejected: int = 0
    rejects: list[Rejected] = field(default_factory=list)

    def reject(self, source: str, line: int, reason: str) -> None:
        self.rejected += 1
        if len(self.rejects) < KEEP_REJECTS:
            self.rejects.append(Rejected(source, line, reason))


@dataclass(frozen=True)
class Source:
    name: str
    size: int
    open: Callable[[], IO[bytes]]


def _open_plain(path: Path) -> IO[bytes]:
    return path.open("rb", buffering=1 << 20)


def sources(path: Path) -> list[Source]:
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
        texts = [m for m in members if m.filename.lower().endswith((".txt", ".csv"))] or members
        if not texts:
            raise InputError(f"{path}: the archive holds no extraction file")

        return [
            Source(f"{path.name}:{m.filename}", m.file_size, partial(_MemberReader, path, m))
            for m in texts
        ]
    return [Source(path.name, path.stat().st_size, partial(_open_plain, path))]


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


def header(source: Source) -> Layout:
    with source.open() as stream:
        first = stream.readline()
    try:
        return detect_layout(first.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise InputError(f"{source.name}: the header is not UTF-8") from None
    except BadHeader as exc:
        raise InputError(f"{source.name}: {exc}") from None


def plan(paths: list[Path]) -> dict[Kind, list[tuple[Source, Layout]]]:
    """Open every file, read its header: refuse the whole import if one is unknown."""
    planned: dict[Kind, list[tuple[Source, Layout]]] = {}
    for path in paths:
        for source in sources(path):
            layout = header(source)
            planned.setdefault(layout.kind, []).append((source, layout))
    return planned


def records(
    files: list[tuple[Source, Layout]], tally: Tally, progress: Progress | None
) -> Iterator[tuple[str, ...]]:
    """The records of the files' lines, in order; the others counted in `tally`."""
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
                    progress(done, total, tally.lines)
                line = raw.rstrip(b"\r\n")
                if not line.strip():
                    continue
                tally.lines += 1
                try:
                    text = line.decode("utf-8")
                except UnicodeDecodeError as exc:
                    tally.reject(source.name, number, f"not UTF-8 (byte {exc.start + 1})")
                    continue
                try:
                    yield layout.record(text.split("|"))
                except BadLine as exc:
                    tally.reject(source.name, number, str(exc))
    if progress is not None:
        progress(total, total, tally.lines)


# --- the reading process ---------------------------------------------------------------------


class Batch:
    """Records as the reading process sent them: split one at a time as they are taken,
    so that no list of a batch's rows wakes the garbage collector (it would go through
    every object of the process, again and again)."""

    def __init__(self, text: str, count: int) -> None:
        self._text, self._count = text, count

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[list[str]]:
        return (record.split(_FIELD_END) for record in self._text.split(_RECORD_END))


@contextlib.contextmanager
def records_beside(
    files: list[tuple[Source, Layout]], tally: Tally, progress: Progress | None, batch: int
) -> Iterator[Iterator[Batch]]:
    """`records` by batches, read and parsed in a second process, started at once (it
    reads its first batch while the caller prepares); `tally` is filled when the last
    batch has been taken."""
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited state
    receive, send = context.Pipe(duplex=False)
    reader = context.Process(
        target=_read, args=(send, files, batch), name="mss-annuaire-reader", daemon=True
    )
    reader.start()
    send.close()
    try:
        yield _received(receive, tally, progress)
    finally:
        receive.close()  # a reader still sending gets a broken pipe and ends
        reader.join(5)
        if reader.is_alive():
            reader.kill()
            reader.join()


def _received(receive: Connection, tally: Tally, progress: Progress | None) -> Iterator[Batch]:
    while True:
        try:
            message = receive.recv()
        except EOFError:
            raise MssError("the annuaire reading process ended before the end") from None
        if message[0] == "rows":
            yield Batch(*message[1:])
        elif message[0] == "progress":
            if progress is not None:
                progress(*message[1:])
        elif message[0] == "end":
            tally.lines, tally.rejected, tally.rejects = message[1:]
            return
        else:
            raise message[1]


def _read(send: Connection, files: list[tuple[Source, Layout]], batch: int) -> None:
    """The reading process: batches of records as text, progress, then the tally."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the importing process
    try:
        _send_records(send, files, batch)
    except BrokenPipeError:
        pass  # the importing process stopped taking batches: nothing to tell
    except Exception as exc:  # shown by the importing process
        with contextlib.suppress(OSError):
            send.send(("error", _portable(exc)))
    finally:
        send.close()


def _send_records(send: Connection, files: list[tuple[Source, Layout]], batch: int) -> None:
    tally = Tally()
    rows: list[str] = []
    for record in records(files, tally, partial(_send_progress, send)):
        rows.append(_FIELD_END.join(record))
        if len(rows) >= batch:
            send.send(("rows", _RECORD_END.join(rows), len(rows)))
            rows = []
    if rows:
        send.send(("rows", _RECORD_END.join(rows), len(rows)))
    send.send(("end", tally.lines, tally.rejected, tally.rejects))


def _send_progress(send: Connection, done: int, total: int, lines: int) -> None:
    send.send(("progress", done, total, lines))


def _portable(exc: Exception) -> MssError:
    """The error as it crosses the pipe (an exception's own class may not rebuild there)."""
    if isinstance(exc, InputError):
        return InputError(str(exc))
    return MssError(f"annuaire reading failed: {type(exc).__name__}: {exc}")
