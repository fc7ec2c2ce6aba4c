"""The export of the patient's own data (RGPD art. 20, portability): one zip with their
messages (`messages/<mailbox>/<uid>.eml`, as received), the documents of their DMP
they may see (`documents/<id>-<name>` and `documents/documents.json`, the metadata),
and their history (`historique.json` and `historique.csv`).

The zip is written to a spooled temporary file in a worker thread, one read snapshot
at a time, and streamed out in chunks; it holds nothing of another patient (the
messages of the patient's account, the documents and traces of their INS) nor what
the viewer may not see (documents invisible to the patient, or hidden from a legal
representative who is looking).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import tempfile
import zipfile
from collections.abc import Iterator
from typing import IO

from mss.dmp import service
from mss.dmp.errors import DMPError
from mss.space import history
from mss.space.dates import PARIS
from mss.space.deps import SpaceDeps, Viewer
from mss.space.mail import hidden_from_viewer
from mss.space.record import actor_of, filename_of, shown, today_of, visible_document
from mss.store.space_record import messages_of
from mss.store.sql import Conn

CHUNK = 64 * 1024
SPOOL = 8 * 1024 * 1024  # beyond this the zip goes to disk
_FOLDER = re.compile(r"[^A-Za-z0-9_-]+")  # no dot: never `.` nor `..` in a zip's path


def export_name(deps: SpaceDeps) -> str:
    day = dt.datetime.fromtimestamp(deps.now(), PARIS).date()
    return f"export-{day.isoformat()}.zip"


class _Folders:
    """A safe folder name for each mailbox (letters, digits, `_` and `-`), unique: a
    mailbox whose cleaned name another one has already got gets a counter after it."""

    def __init__(self) -> None:
        self._of: dict[str, str] = {}
        self._taken: set[str] = set()

    def __call__(self, mailbox: str) -> str:
        if mailbox not in self._of:
            base = _FOLDER.sub("_", mailbox) or "_"
            folder, n = base, 1
            while folder in self._taken:
                n += 1
                folder = f"{base}-{n}"
            self._taken.add(folder)
            self._of[mailbox] = folder
        return self._of[mailbox]


def _messages(zf: zipfile.ZipFile, conn: Conn, deps: SpaceDeps, viewer: Viewer) -> None:
    folder_of = _Folders()
    hidden = hidden_from_viewer(conn, viewer, deps.address_of(viewer.ins))
    for found in messages_of(conn, deps.address_of(viewer.ins)):
        if found.blob_id in hidden:
            continue
        folder = folder_of(found.mailbox)
        zf.writestr(f"messages/{folder}/{found.uid}.eml", deps.store.blobs.get(conn, found.blob_id))


def _documents(zf: zipfile.ZipFile, conn: Conn, deps: SpaceDeps, viewer: Viewer,
               listed: list[dict[str, object]], today: dt.date) -> None:  # fmt: skip
    for meta in listed:
        doc = visible_document(conn, viewer, int(str(meta["id"])), today)
        zf.writestr(
            f"documents/{doc.id}-{filename_of(doc)}", deps.store.blobs.get(conn, doc.blob_id)
        )
    zf.writestr("documents/documents.json", json.dumps(listed, ensure_ascii=False, indent=2))


def _history(zf: zipfile.ZipFile, conn: Conn, viewer: Viewer, today: dt.date) -> None:
    lines = history.lines(conn, viewer, today)
    rows = [{"date": line.iso, "type": line.kind, "texte": line.text} for line in lines]
    zf.writestr("historique.json", json.dumps(rows, ensure_ascii=False, indent=2))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["date", "type", "texte"])
    writer.writeheader()
    writer.writerows(rows)
    zf.writestr("historique.csv", out.getvalue().encode("utf-8-sig"))


def _write(target: IO[bytes], conn: Conn, deps: SpaceDeps, viewer: Viewer,
           listed: list[dict[str, object]], today: dt.date) -> None:  # fmt: skip
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        _messages(zf, conn, deps, viewer)
        _documents(zf, conn, deps, viewer, listed, today)
        _history(zf, conn, viewer, today)


async def export(deps: SpaceDeps, viewer: Viewer) -> Iterator[bytes]:
    """The zip of the viewer's data, as chunks (the listing of documents is traced as
    a consultation by the patient)."""
    today = today_of(deps)
    try:
        found = await deps.store.write(
            lambda tx: service.patient_documents(tx, viewer.ins, today, actor_of(viewer))
        )
    except DMPError:
        found = []
    listed = [d for d in found if shown(d, viewer)]
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL)  # noqa: SIM115 (closed by _chunks)
    await deps.store.read(lambda conn: _write(spool, conn, deps, viewer, listed, today))
    spool.seek(0)
    return _chunks(spool)


def _chunks(spool: IO[bytes]) -> Iterator[bytes]:
    with spool:
        while chunk := spool.read(CHUNK):
            yield chunk
