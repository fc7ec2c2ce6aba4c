"""Blob encryption keys: `mss keys rotate` (the running server re-encrypts lazily)."""

from __future__ import annotations

from mss.config import Settings
from mss.store.blobs import rotate_key_file


def rotate_blob_key(settings: Settings) -> str:
    return rotate_key_file(settings.path(settings.storage.key_file))
