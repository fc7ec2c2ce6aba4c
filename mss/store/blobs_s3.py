"""The `BlobStore` port in any S3-compatible object store (`[blobs] store = "s3"`).

Bodies are sealed exactly as in the database (`blobs.BlobCipher`: AES-256-GCM under
the key ring's current key, the key id as associated data) before they leave the
process: the object store never sees a plaintext.

Content-addressed: an object's key is `<prefix><key id>/<HMAC-SHA256(K, body)>`, K a
key derived from the data key (`BlobCipher.address`). Equal bodies under one key share
one object (a message sent to many, a document deposited twice); a bare hash would let
whoever reads the bucket test a guess ("is this the standard discharge letter?") and
link equal bodies across buckets and installations; the HMAC needs the key ring for
either. A rotation of the key starts new objects (re-encryption moves the rows; the
old objects are collected once no row names them). One data key per patient (erasing
a closed profile by destroying its key) is not done: the objects use the ring's keys.

Durability (a message is acknowledged only once its body is in the object store AND
its rows are committed):
- `stage` uploads before the transaction (on the event loop, bounded by the timeout;
  a failure or a timeout raises `StoreError`: the door answers 451, nothing is
  written). `put`, inside the transaction, uploads again itself what was not staged
  recently (a quarter of the grace: so an object a transaction names was written after
  the grace's start), then claims the objects (`blob_registry.claim`).
- `collect` (`mss blobs gc`) is mark-and-sweep with a grace: it lists the objects,
  leaves those younger than the grace (uploads whose transaction is in flight), dooms
  in one transaction those no `blob` row names (a writer claiming one afterwards is
  refused, 451), deletes them, then marks them deleted (a writer claiming one then
  uploads it again). `blob_registry` draws the locking.

obstore (Rust's object_store) is imported only when this store is configured: it is
an optional dependency (`pip install mss[s3]`). Its calls are synchronous in the
database threads (`put`, `get`: the transaction and the read already run there) and
asynchronous on the event loop (`stage`, `collect`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mss.errors import StoreError
from mss.store import blob_registry as registry
from mss.store.blobs import BlobCipher, EncryptedBlob
from mss.store.db import Database
from mss.store.sql import Conn, Tx

if TYPE_CHECKING:
    from obstore.store import S3Store

GC_BATCH = 500  # object keys per statement of the collector


@dataclass(frozen=True, kw_only=True)
class S3Options:
    """Where the objects go; the credentials never appear in a repr or a log."""

    bucket: str
    endpoint: str = ""
    region: str = "us-east-1"
    prefix: str = "blobs/"
    access_key_id: str = field(default="", repr=False)
    secret_access_key: str = field(default="", repr=False)
    timeout: int = 10
    gc_grace: int = 3600


@dataclass(frozen=True, slots=True)
class CollectReport:
    listed: int  # objects in the store
    deleted: int  # objects removed (no committed row named them, older than the grace)


def _open(options: S3Options) -> S3Store:
    try:
        from obstore.store import S3Store
    except ImportError:  # pragma: no cover - depends on the installation
        raise StoreError('[blobs] store = "s3" needs obstore: pip install "mss[s3]"') from None
    config: dict[str, Any] = {"region": options.region}
    if options.endpoint:
        config["endpoint"] = options.endpoint
    if options.access_key_id:
        config["access_key_id"] = options.access_key_id
        config["secret_access_key"] = options.secret_access_key
    seconds = f"{options.timeout}s"
    return S3Store(
        options.bucket,
        config=config,  # type: ignore[arg-type]
        virtual_hosted_style_request=False,
        client_options={
            "allow_http": options.endpoint.startswith("http://"),
            "timeout": seconds,
            "connect_timeout": seconds,
        },
        retry_config={
            "max_retries": 1,
            "backoff": {"max_backoff": dt.timedelta(seconds=1)},
            "retry_timeout": dt.timedelta(seconds=options.timeout),
        },
    )


class S3BlobStore:
    """Bodies in an object store, their rows (and the collector's marks) in the database."""

    remote = True  # `get` crosses the network: never on the event loop

    def __init__(self, db: Database, cipher: BlobCipher, options: S3Options) -> None:
        import obstore  # the optional dependency, only now

        self._obstore = obstore
        self._db = db
        self.cipher = cipher
        self.options = options
        self._s3 = _open(options)
        self._staged: dict[str, float] = {}  # object key -> monotonic time of its upload
        self._staged_lock = threading.Lock()  # the loop stages, the writer thread pops

    def __repr__(self) -> str:
        return f"S3BlobStore(bucket={self.options.bucket!r}, {self.cipher!r})"

    @property
    def current_key(self) -> str:
        return self.cipher.current

    def seal(self, data: bytes) -> EncryptedBlob:
        key_id = self.cipher.current
        sealed = self.cipher.encrypt(data)
        address = f"{self.options.prefix}{key_id}/{self.cipher.address(key_id, data)}"
        return EncryptedBlob(sealed.key_id, sealed.data, sealed.size, address)

    # --- writing ---------------------------------------------------------------------------

    async def stage(self, sealed: Sequence[EncryptedBlob]) -> None:
        uploads = {_address(b): b.data for b in sealed}
        try:
            async with asyncio.timeout(self.options.timeout):
                await asyncio.gather(*(self._put_async(k, d) for k, d in uploads.items()))
        except TimeoutError:
            raise StoreError("the object store did not answer in time") from None
        now = time.monotonic()
        with self._staged_lock:
            self._forget_old_stages(now)
            self._staged.update(dict.fromkeys(uploads, now))

    async def _put_async(self, key: str, data: bytes) -> None:
        with _translated("an upload"):
            await self._obstore.put_async(self._s3, key, data)

    def _upload(self, key: str, data: bytes) -> None:
        with _translated("an upload"):
            self._obstore.put(self._s3, key, data)

    def _forget_old_stages(self, now: float) -> None:
        limit = self.options.gc_grace / 4
        for key in [k for k, at in self._staged.items() if now - at > limit]:
            del self._staged[key]

    def put(self, tx: Tx, sealed: Sequence[EncryptedBlob]) -> list[int]:
        """In the transaction: upload what was not staged recently, claim the objects
        (`ObjectBeingDeleted` if the collector is deleting one), insert the rows."""
        limit, now = self.options.gc_grace / 4, time.monotonic()
        bodies = {_address(b): b.data for b in sealed}
        for key, data in bodies.items():
            with self._staged_lock:
                staged_at = self._staged.pop(key, None)
            if staged_at is None or now - staged_at > limit:
                self._upload(key, data)
        for key in registry.claim(tx, bodies, int(time.time())):
            self._upload(key, bodies[key])  # the collector deleted it: write it again
        return registry.insert_object_rows(tx, sealed)

    # --- reading ---------------------------------------------------------------------------

    def get(self, conn: Conn, blob_id: int) -> bytes:
        key_id, data, object_key = registry.read_row(conn, blob_id)
        if object_key is None:  # stored before the switch to the object store
            return self.cipher.decrypt(key_id, data)
        body = self.cipher.decrypt(key_id, self._download(object_key))
        if not object_key.endswith("/" + self.cipher.address(key_id, body)):
            raise StoreError(f"blob {blob_id}: its object holds another body")
        return body

    def _download(self, key: str) -> bytes:
        try:
            with _translated(f"the download of {key}"):
                return bytes(self._obstore.get(self._s3, key).bytes())
        except FileNotFoundError:
            raise StoreError(f"object {key} is missing from the object store") from None

    async def reencrypt_some(self, limit: int = 200) -> int:
        """Move up to `limit` blobs to the current key, into new objects (the old ones
        are collected once nothing names them)."""
        current = self.cipher.current
        ids = await self._db.read(lambda c: registry.object_rows_to_reencrypt(c, current, limit))
        for blob_id in ids:
            body = await self._db.read(lambda c, i=blob_id: self.get(c, i))  # type: ignore[misc]
            fresh = self.seal(body)
            await self.stage([fresh])
            await self._db.write(lambda tx, i=blob_id, f=fresh: self._move(tx, i, f))  # type: ignore[misc]
        return len(ids)

    def _move(self, tx: Tx, blob_id: int, sealed: EncryptedBlob) -> None:
        for key in registry.claim(tx, [_address(sealed)], int(time.time())):
            self._upload(key, sealed.data)
        registry.move_row(tx, blob_id, sealed)

    # --- the collector ---------------------------------------------------------------------

    async def collect(self, now: float | None = None) -> CollectReport:
        """Delete the objects no committed row names, older than the grace (`now`: the
        time to judge by, for tests)."""
        at = int(time.time() if now is None else now)
        cutoff = at - self.options.gc_grace
        await self.finish_deleting(await self._db.read(registry.doomed_earlier), at)
        listed = await asyncio.to_thread(self._list_older_than, cutoff)
        deleted = 0
        for start in range(0, len(listed), GC_BATCH):
            chunk = listed[start : start + GC_BATCH]
            doomed = await self._db.write(lambda tx, c=chunk: registry.doom(tx, c, cutoff, at))  # type: ignore[misc]
            deleted += await self.finish_deleting(doomed, at)
        await self._db.write(lambda tx: registry.forget_deleted(tx, cutoff))
        return CollectReport(listed=len(listed), deleted=deleted)

    def _list_older_than(self, cutoff: int) -> list[str]:
        found: list[str] = []
        with _translated("a listing"):
            for batch in self._obstore.list(self._s3, prefix=self.options.prefix):
                found += [m["path"] for m in batch if m["last_modified"].timestamp() < cutoff]
        return found

    async def finish_deleting(self, doomed: Sequence[str], now: int) -> int:
        """Delete doomed objects, then mark them deleted (writers may upload them again)."""
        for key in doomed:
            with contextlib.suppress(FileNotFoundError), _translated("a delete"):
                await self._obstore.delete_async(self._s3, key)
        await self._db.write(lambda tx: registry.mark_deleted(tx, doomed, now))
        return len(doomed)


@contextlib.contextmanager
def _translated(action: str) -> Iterator[None]:
    """obstore's errors (and the network's) as `StoreError`, naming no credential;
    `FileNotFoundError` (no such object) goes through."""
    try:
        yield
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise StoreError(f"the object store failed {action}: {type(exc).__name__}") from None


def _address(sealed: EncryptedBlob) -> str:
    if sealed.address is None:
        raise StoreError("a body sealed for the database was handed to the object store")
    return sealed.address
