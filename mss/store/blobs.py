"""Blobs encrypted at rest: AES-256-GCM, the key id stored beside each blob.

The keys live in a key file outside the database (created by `mss init`, mode
0600): `{"current": "k2", "keys": {"k1": "<base64>", "k2": "<base64>"}}`. New
blobs use the current key; old blobs stay readable with their own key, and
`reencrypt_batch` moves them to the current key a batch at a time (rotation is
lazy: `mss keys rotate` adds a key, the server re-encrypts in the background).

Stored form: 12-byte random nonce ‖ ciphertext ‖ 16-byte tag; the key id is the
associated data, so a blob cannot be decrypted under another key's label.

`BlobCipher.address` names a body by its content for an object store (`blobs_s3`):
HMAC-SHA256 under a key derived from a data key (HKDF), never a bare hash.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Connection, select, update

from mss.errors import StoreError
from mss.store.db import Database
from mss.store.models import blob_table
from mss.store.sql import Conn, RawStatement, Tx

NONCE_SIZE = 12
KEY_SIZE = 32


class KeyFileError(StoreError):
    """The key file is missing, unreadable or malformed."""


@dataclass(frozen=True, slots=True)
class EncryptedBlob:
    key_id: str
    data: bytes
    size: int
    address: str | None = None  # its object's key, in an object store (`blobs_s3`)


class BlobCipher:
    """AES-256-GCM over a keyring; safe to share between threads."""

    def __init__(self, keys: dict[str, bytes], current: str) -> None:
        if current not in keys:
            raise KeyFileError(f"current key {current!r} is not in the keyring")
        for key_id, key in keys.items():
            if len(key) != KEY_SIZE:
                raise KeyFileError(f"key {key_id!r} is not {KEY_SIZE} bytes")
        self._aead = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._mac = {key_id: _address_key(key) for key_id, key in keys.items()}
        self.current = current

    def __repr__(self) -> str:
        return f"BlobCipher(current={self.current!r}, keys={sorted(self._aead)!r})"

    @property
    def key_ids(self) -> list[str]:
        return sorted(self._aead)

    def encrypt(self, plaintext: bytes) -> EncryptedBlob:
        nonce = os.urandom(NONCE_SIZE)
        sealed = self._aead[self.current].encrypt(nonce, plaintext, self.current.encode())
        return EncryptedBlob(self.current, nonce + sealed, len(plaintext))

    def address(self, key_id: str, plaintext: bytes) -> str:
        """A name for `plaintext` under `key_id`: equal bodies get equal names, and
        without the key nobody can test a guess of the body against a name."""
        mac = self._mac.get(key_id)
        if mac is None:
            raise KeyFileError(f"blob encrypted with unknown key {key_id!r}")
        return hmac.new(mac, plaintext, hashlib.sha256).hexdigest()

    def decrypt(self, key_id: str, data: bytes) -> bytes:
        aead = self._aead.get(key_id)
        if aead is None:
            raise KeyFileError(f"blob encrypted with unknown key {key_id!r}")
        try:
            return aead.decrypt(data[:NONCE_SIZE], data[NONCE_SIZE:], key_id.encode())
        except InvalidTag:
            raise StoreError(f"blob under key {key_id!r} failed authentication") from None


def _address_key(key: bytes) -> bytes:
    """A key for content addresses only, derived from a data key (RFC 5869)."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"mss blob address")
    return hkdf.derive(key)


# --- the key file ------------------------------------------------------------------


def _write_key_file(path: Path, current: str, keys: dict[str, bytes]) -> None:
    payload = {
        "current": current,
        "keys": {key_id: base64.b64encode(key).decode() for key_id, key in keys.items()},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def create_key_file(path: Path) -> bool:
    """Create the key file with one fresh key; never overwrite. True if created."""
    if path.exists():
        return False
    _write_key_file(path, "k1", {"k1": secrets.token_bytes(KEY_SIZE)})
    return True


def load_cipher(path: Path) -> BlobCipher:
    try:
        payload = json.loads(path.read_text())
        keys = {k: base64.b64decode(v, validate=True) for k, v in payload["keys"].items()}
        current = payload["current"]
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} does not exist (run `mss init`)") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KeyFileError(f"key file {path} is malformed: {exc}") from None
    return BlobCipher(keys, current)


def rotate_key_file(path: Path) -> str:
    """Add a new key and make it current; return its id. Old keys stay for reading."""
    cipher_payload = json.loads(path.read_text())
    keys = {k: base64.b64decode(v) for k, v in cipher_payload["keys"].items()}
    numbers = [int(k[1:]) for k in keys if k[1:].isdigit()]
    new_id = f"k{max(numbers, default=0) + 1}"
    keys[new_id] = secrets.token_bytes(KEY_SIZE)
    _write_key_file(path, new_id, keys)
    return new_id


# --- blobs in the database -----------------------------------------------------------


def allocate_blob_ids(tx: Tx, count: int) -> list[int]:
    """Ids for `count` new blobs, so a batch inserts them with one executemany.

    SQLite: the writer holds the write lock (BEGIN IMMEDIATE), so max(id) + 1…
    is safe across processes. PostgreSQL: the table's sequence.
    """
    if tx.dialect == "sqlite":
        top = int(_TOP_BLOB.scalar(tx.conn))
        return list(range(top + 1, top + 1 + count))
    return [int(row[0]) for row in _NEXT_BLOB_IDS.all(tx.conn, count)]


_TOP_BLOB = RawStatement("SELECT coalesce(max(id), 0) FROM blob")
_NEXT_BLOB_IDS = RawStatement(
    "SELECT nextval(pg_get_serial_sequence('blob', 'id')) FROM generate_series(1, ?)"
)
_INSERT_BLOB = RawStatement("INSERT INTO blob (id, key_id, size, data) VALUES (?, ?, ?, ?)")


def insert_blobs(tx: Tx, blobs: Sequence[EncryptedBlob]) -> list[int]:
    """Insert encrypted blobs; return their ids in order."""
    ids = allocate_blob_ids(tx, len(blobs))
    _INSERT_BLOB.many(
        tx.conn, [(i, b.key_id, b.size, b.data) for i, b in zip(ids, blobs, strict=True)]
    )
    return ids


def insert_blob(tx: Tx, blob: EncryptedBlob) -> int:
    return insert_blobs(tx, [blob])[0]


_READ_BLOB = RawStatement("SELECT key_id, data FROM blob WHERE id = ?")


def read_blob(conn: Connection, cipher: BlobCipher, blob_id: int) -> bytes:
    row = _READ_BLOB.first(conn, blob_id)
    if row is None:
        raise StoreError(f"blob {blob_id} does not exist")
    return cipher.decrypt(row[0], bytes(row[1]))


def blobs_to_reencrypt(conn: Connection, cipher: BlobCipher, limit: int) -> Sequence[int]:
    rows = conn.execute(
        select(blob_table.c.id).where(blob_table.c.key_id != cipher.current).limit(limit)
    )
    return [row.id for row in rows]


def reencrypt_blobs(tx: Tx, cipher: BlobCipher, blob_ids: Sequence[int]) -> int:
    """Re-encrypt the given blobs under the current key; return how many changed."""
    changed = 0
    for blob_id in blob_ids:
        row = tx.conn.execute(
            select(blob_table.c.key_id, blob_table.c.data).where(blob_table.c.id == blob_id)
        ).first()
        if row is None or row.key_id == cipher.current:
            continue
        fresh = cipher.encrypt(cipher.decrypt(row.key_id, row.data))
        tx.conn.execute(
            update(blob_table)
            .where(blob_table.c.id == blob_id)
            .values(key_id=fresh.key_id, data=fresh.data)
        )
        changed += 1
    return changed


class DatabaseBlobStore:
    """The `BlobStore` port in the `blob` table: a body commits with its metadata, in
    the same transaction and the same fsync."""

    def __init__(self, db: Database, cipher: BlobCipher) -> None:
        self._db = db
        self.cipher = cipher

    remote = False  # `get` is a local read: it may run on the event loop

    def __repr__(self) -> str:
        return f"DatabaseBlobStore({self.cipher!r})"

    @property
    def current_key(self) -> str:
        return self.cipher.current

    def seal(self, data: bytes) -> EncryptedBlob:
        return self.cipher.encrypt(data)

    async def stage(self, sealed: Sequence[EncryptedBlob]) -> None:
        """Nothing to do before the transaction: the bodies commit with it."""

    def put(self, tx: Tx, sealed: Sequence[EncryptedBlob]) -> list[int]:
        return insert_blobs(tx, sealed)

    def get(self, conn: Conn, blob_id: int) -> bytes:
        return read_blob(conn, self.cipher, blob_id)

    async def reencrypt_some(self, limit: int = 200) -> int:
        ids = await self._db.read(lambda conn: blobs_to_reencrypt(conn, self.cipher, limit))
        if not ids:
            return 0
        return await self._db.write(lambda tx: reencrypt_blobs(tx, self.cipher, ids))
