"""`mss backup DIR` and `mss restore DIR --data-dir NEW`: the installation's data, copied
while it serves, and put back elsewhere.

A backup folder holds
- the database, consistent as of one commit (`store/backup.py`: SQLite's online
  backup API, or `pg_dump` for PostgreSQL); the blobs (message and document bodies,
  encrypted) live in the database today, so they are in that copy;
- the config file (`mss.toml`);
- `traces.head`: the head of the DMP traces' chain, read before the copy, so the copy
  holds it (`dmp/traces_head.py`);
- `MANIFEST.json`: format, mss version, time, database dialect and schema revision,
  the head, the SHA-256 of every other file;
- with `--with-keys` only, the folders holding keys (blob key ring, TLS, DKIM, Web
  Push) under `keys/`. Without, none: a copy of the data and a copy of its keys must
  not travel together; the command prints where the keys are, to be saved apart.

`restore` refuses a data directory that is not empty, checks every hash of the
manifest, puts the config and the database in place (an empty PostgreSQL database
for pg_restore), then walks the traces' chain up to the saved head.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mss import __version__
from mss.admin.dmp import verify_traces_at
from mss.config import CONFIG_FILE, Settings, load_settings
from mss.dmp import traces, traces_head
from mss.dmp.traces_head import HEAD_FILE, Head
from mss.errors import InputError
from mss.store import backup as database
from mss.store.db import Database

MANIFEST = "MANIFEST.json"
FORMAT = "mss-backup/1"
KEYS = "keys"


@dataclass
class BackupReport:
    folder: Path
    manifest: dict[str, Any]
    key_folders: list[Path] = field(default_factory=list)


@dataclass
class RestoreReport:
    data_dir: Path
    verification: traces.Verification
    missing_keys: list[Path] = field(default_factory=list)


def key_folders(settings: Settings) -> list[Path]:
    """The folders holding the installation's secrets (absolute, without duplicates)."""
    files = [settings.storage.key_file, settings.tls.key,
             Path(settings.notify.vapid_private_key_file)]  # fmt: skip
    folders = [settings.path(f).parent for f in files] + [settings.path(settings.dkim.keys_dir)]
    return list(dict.fromkeys(f.resolve() for f in folders))


def backup(settings: Settings, config: Path, target: Path, *, with_keys: bool) -> BackupReport:
    """Copy the installation of `settings` into the new (or empty) folder `target`."""
    _require_empty(target, "le dossier de sauvegarde", "the backup folder")
    target.mkdir(parents=True, exist_ok=True)
    head = _head_of(settings.storage_url)
    db_file = database.dump(settings.storage_url, target)
    shutil.copy2(config, target / CONFIG_FILE)
    if head is not None:
        traces_head.write(target / HEAD_FILE, head)
        traces_head.advance(settings.data_dir / HEAD_FILE, head)
    folders = key_folders(settings)
    if with_keys:
        _copy_keys(settings.data_dir, folders, target / KEYS)
    manifest = {
        "format": FORMAT, "mss_version": __version__,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "database": {"dialect": database.dialect_of(settings.storage_url), "file": db_file.name,
                     "schema_revision": database.schema_revision(settings.storage_url)},
        "blobs": f"in the database: inside {db_file.name}",
        "traces_head": str(head) if head is not None else None,
        "keys_included": with_keys,
        "key_folders": [str(f) for f in folders],
        "files": _hashes(target),
    }  # fmt: skip
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
    return BackupReport(target, manifest, [] if with_keys else folders)


def restore(source: Path, data_dir: Path, env: dict[str, str] | None = None) -> RestoreReport:
    """Put the backup in `source` in place as the installation in `data_dir` (empty)."""
    _require_empty(data_dir, "le dossier de données", "the data directory")
    manifest = check_backup(source)
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copy2(source / CONFIG_FILE, data_dir / CONFIG_FILE)
        settings = load_settings(data_dir / CONFIG_FILE, env=env)
        _same_dialect(manifest["database"]["dialect"], settings.storage_url)
        database.restore(settings.storage_url, source / manifest["database"]["file"])
        if (source / HEAD_FILE).exists():
            shutil.copy2(source / HEAD_FILE, data_dir / HEAD_FILE)
        if (source / KEYS).is_dir():
            shutil.copytree(source / KEYS, data_dir, dirs_exist_ok=True)
    except BaseException:
        _empty(data_dir)
        raise
    expected = traces_head.parse(manifest["traces_head"]) if manifest["traces_head"] else None
    verification = verify_traces_at(settings.storage_url, expected)
    missing = [f for f in key_folders(settings) if not f.exists()]
    return RestoreReport(data_dir, verification, missing)


def check_backup(source: Path) -> dict[str, Any]:
    """The manifest of the backup in `source`, once every file's hash is checked."""
    try:
        manifest: dict[str, Any] = json.loads((source / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(
            f"pas de sauvegarde lisible (no readable backup) in {source}: {exc}"
        ) from None
    if manifest.get("format") != FORMAT:
        raise InputError(f"format de sauvegarde inconnu (unknown backup format) in {source}")
    listed = manifest["files"]
    for name, digest in listed.items():
        path = source / name
        if path.is_symlink() or not path.is_file() or _sha256(path) != digest:
            raise InputError(f"sauvegarde altérée (backup damaged): {name} does not match")
    revision = manifest["database"]["schema_revision"]
    if not database.known_revision(revision):
        raise InputError(
            f"sauvegarde d'une version plus récente de mss (backup of a newer mss):"
            f" schema {revision}, mss {__version__}"
        )
    extra = sorted(set(_files(source)) - set(listed))
    if extra or manifest["database"]["file"] not in listed or CONFIG_FILE not in listed:
        raise InputError(
            f"sauvegarde altérée (backup damaged): files not in its manifest: {extra or '?'}"
        )
    return manifest


def _same_dialect(saved: str, url: str) -> None:
    """A PostgreSQL dump goes into PostgreSQL, a SQLite copy into SQLite."""
    target = database.dialect_of(url)
    if saved != target:
        raise InputError(
            f"la sauvegarde est {saved}, la base cible {target} (the backup is {saved}, the"
            f" target database {target}): set MSS_STORAGE_URL to a {saved} database"
        )


def _head_of(url: str) -> Head | None:
    db = Database(url, reader_threads=1)
    try:
        return db.read_sync(traces_head.current)
    finally:
        db.close_sync()


def _require_empty(folder: Path, french: str, english: str) -> None:
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InputError(f"{french} n'est pas vide ({english} is not empty): {folder}")


def _empty(folder: Path) -> None:
    """Undo a failed restore: the data directory was empty before."""
    for child in folder.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


def _copy_keys(data_dir: Path, folders: list[Path], target: Path) -> None:
    """Copy the key folders under `target`, at their place relative to the data dir."""
    for folder in folders:
        if folder.is_dir() and folder.is_relative_to(data_dir):
            shutil.copytree(folder, target / folder.relative_to(data_dir), dirs_exist_ok=True)


def _files(folder: Path) -> list[str]:
    """Every file of the backup but its manifest (symbolic links count as files)."""
    return [
        str(path.relative_to(folder))
        for path in sorted(folder.rglob("*"))
        if (path.is_file() or path.is_symlink()) and path.relative_to(folder) != Path(MANIFEST)
    ]


def _hashes(folder: Path) -> dict[str, str]:
    return {name: _sha256(folder / name) for name in _files(folder)}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
