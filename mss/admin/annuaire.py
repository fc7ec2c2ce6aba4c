"""The national directory: `mss annuaire import|search|status`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mss.annuaire import importer, lookup
from mss.config import Settings
from mss.instance import opened_store


def import_annuaire(
    settings: Settings, paths: Sequence[Path], progress: importer.Progress | None = None
) -> list[importer.Summary]:
    """Import national extraction files (each kind replaces its previous extraction)."""
    with opened_store(settings) as store:
        return importer.import_files(store.db, paths, progress)


def search_annuaire(
    settings: Settings, query: lookup.Query, *, professionals: bool = False
) -> lookup.Page:
    search = lookup.search_professionals if professionals else lookup.search_mailboxes
    with opened_store(settings) as store:
        return store.db.read_sync(lambda conn: search(conn, query))


def annuaire_status(settings: Settings) -> list[dict[str, object]]:
    with opened_store(settings) as store:
        return store.db.read_sync(lookup.status)
