"""Bodies in an S3-compatible object store (`[blobs] store = "s3"`), against moto's S3
server on loopback: sealed before upload, content-addressed under an HMAC, uploaded
before the commit (a store that times out: 451, nothing lost), collected only when no
committed row names them and past the grace."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import imaplib
import logging
import socket
import threading
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiosmtplib
import obstore
import pytest
from moto.server import ThreadedMotoServer
from obstore.store import S3Store
from sqlalchemy import delete, select

from mss.config import load_settings
from mss.core import codes
from mss.errors import ConfigError, StoreError
from mss.store import blob_registry as registry
from mss.store.accounts import add_account
from mss.store.api import Store
from mss.store.blobs import rotate_key_file
from mss.store.blobs_s3 import S3BlobStore, S3Options
from mss.store.mailboxes import INBOX, Target, mailbox_id
from mss.store.models import AccountKind, blob_table, message_table
from mss.store.sql import Tx

from .conftest import run_mss
from .harness import PASSWORD, Running, message, running

SENDER = "dr.emetteur@pro.mssante.test"
TO = "dr.destinataire@pro.mssante.test"
SECRET = "secret-de-test-jamais-journalise"
GRACE = 600


# --- the S3 server, and a relay to it that can stop answering -----------------------------


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(moto_endpoint: str) -> str:
    name = f"mss-{uuid.uuid4().hex[:12]}"
    request = urllib.request.Request(f"{moto_endpoint}/{name}", method="PUT")
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200
    return name


class Relay:
    """A TCP relay to the S3 server; while `hang` is set it swallows every byte and
    answers nothing (a store that times out), on new and pooled connections alike."""

    def __init__(self, target: str) -> None:
        host, _, port = target.removeprefix("http://").partition(":")
        self.target = (host, int(port))
        self.hang = False
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.listener.accept()
                upstream = socket.create_connection(self.target)
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError), source, sink:
            while chunk := source.recv(65536):
                if not self.hang:
                    sink.sendall(chunk)

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def relay(moto_endpoint: str) -> Iterator[Relay]:
    opened = Relay(moto_endpoint)
    yield opened
    opened.close()


def options(endpoint: str, bucket: str, **more: Any) -> S3Options:
    return S3Options(bucket=bucket, endpoint=endpoint, access_key_id="mss",
                     secret_access_key=SECRET, gc_grace=GRACE, **more)  # fmt: skip


def client(endpoint: str, bucket: str) -> S3Store:
    """A client of our own on the bucket (not the store's)."""
    return S3Store(bucket, endpoint=endpoint, region="us-east-1", access_key_id="mss",
                   secret_access_key=SECRET, virtual_hosted_style_request=False,
                   client_options={"allow_http": True})  # fmt: skip


def objects(endpoint: str, bucket: str) -> dict[str, bytes]:
    """Every object of the bucket."""
    s3 = client(endpoint, bucket)
    keys = [meta["path"] for batch in obstore.list(s3) for meta in batch]
    return {key: bytes(obstore.get(s3, key).bytes()) for key in keys}


# --- over the doors: SMTP in, IMAP out -------------------------------------------------------


def s3_overrides(endpoint: str, bucket: str) -> dict[str, dict[str, Any]]:
    return {"blobs": {"store": "s3", "endpoint": endpoint, "bucket": bucket, "timeout": 1,
                      "gc_grace": GRACE, "access_key_id": "mss"}}  # fmt: skip


@contextlib.asynccontextmanager
async def mss_on_s3(instance: Path, endpoint: str, bucket: str) -> AsyncIterator[Running]:
    env = {"MSS_BLOBS_SECRET_ACCESS_KEY": SECRET}
    async with running(instance, env=env, overrides=s3_overrides(endpoint, bucket)) as server:
        await server.add_pro(SENDER)
        await server.add_pro(TO)
        yield server


def imap_fetch_all(server: Running, user: str) -> list[bytes]:
    client = imaplib.IMAP4_SSL("localhost", server.ports["imaps"], ssl_context=server.client_tls())
    try:
        client.login(user, PASSWORD)
        client.select("INBOX")
        _, data = client.fetch("1:*", "(BODY.PEEK[])")
        return [item[1] for item in data if isinstance(item, tuple)]
    finally:
        client.logout()


async def test_a_message_over_smtp_is_stored_sealed_in_s3_and_read_back_over_imap(
    instance: Path, moto_endpoint: str, bucket: str
) -> None:
    body = "Compte rendu opératoire: CONFIDENTIEL-7c1e\r\n"
    async with mss_on_s3(instance, moto_endpoint, bucket) as server:
        reply = await server.submit(SENDER, message(SENDER, TO, body=body), [TO])
        assert reply.code == 250
        fetched = await asyncio.to_thread(imap_fetch_all, server, TO)
        rows = await server.store.read(
            lambda c: c.execute(select(blob_table.c.data, blob_table.c.object_key)).all()
        )
    assert len(fetched) == 1 and body.encode() in fetched[0]
    stored = objects(moto_endpoint, bucket)
    assert stored, "the body went to the object store"
    assert all(b"CONFIDENTIEL-7c1e" not in data for data in stored.values())  # sealed
    assert all(data == b"" and key in stored for data, key in rows)  # no body in the database


async def test_an_object_store_that_times_out_answers_451_and_the_retry_lands_once(
    instance: Path, relay: Relay, bucket: str
) -> None:
    raw = message(SENDER, TO, subject="Résultats", message_id="<retry-once@pro.mssante.test>")
    async with mss_on_s3(instance, relay.endpoint, bucket) as server:
        relay.hang = True
        started = time.monotonic()
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await server.submit(SENDER, raw, [TO])
        assert time.monotonic() - started < 10  # the timeout, not the client's 30 s
        assert f"{refused.value.code} {refused.value.message}" == codes.TEMPORARY_FAILURE
        assert await server.inbox(TO) == []
        assert await server.store.read(lambda c: c.execute(select(blob_table.c.id)).all()) == []
        relay.hang = False
        reply = await server.submit(SENDER, raw, [TO])  # the client tries again later
        assert reply.code == 250
        landed = await server.inbox(TO)
    assert len(landed) == 1 and b"retry-once@" in landed[0]


def test_s3_settings_check_their_values_and_never_show_the_secret(tmp_path: Path) -> None:
    config = tmp_path / "mss.toml"
    config.write_text('[blobs]\nstore = "s3"\n')
    with pytest.raises(ConfigError, match=r"blobs\.bucket"):
        load_settings(config)
    config.write_text('[blobs]\nstore = "s3"\nbucket = "b"\ntimeout = 0\n')
    with pytest.raises(ConfigError, match=r"blobs\.timeout"):
        load_settings(config)
    config.write_text('[blobs]\nstore = "disque"\n')
    with pytest.raises(ConfigError, match=r"blobs\.store"):
        load_settings(config)
    config.write_text('[blobs]\nstore = "s3"\nbucket = "b"\n')
    settings = load_settings(config, env={"MSS_BLOBS_SECRET_ACCESS_KEY": SECRET})
    assert settings.blobs.secret_access_key == SECRET
    assert SECRET not in repr(settings) and SECRET not in repr(options("http://x", "b"))


# --- the store: dedupe, collection, the collector racing a writer ---------------------------


@pytest.fixture
async def s3_store(
    db_url: str, key_file: Path, moto_endpoint: str, bucket: str
) -> AsyncIterator[Store]:
    opened = Store.open(db_url, key_file, s3=options(moto_endpoint, bucket))
    opened.start()
    try:
        yield opened
    finally:
        await opened.close()


async def new_inbox(store: Store, address: str = TO) -> int:
    def job(tx: Tx) -> int:
        account = add_account(tx, address=address, kind=AccountKind.PROFESSIONAL)
        return mailbox_id(tx.conn, account, INBOX)

    return await store.write(job)


def letter(n: int) -> bytes:
    return f"Subject: Lettre {n}\r\nMessage-ID: <l{n}@pro.test>\r\n\r\nCorps {n}\r\n".encode()


async def forget_messages(store: Store, blob_id: int) -> None:
    """What an expunge leaves: the blob row, named by nothing."""
    named = message_table.c.blob_id == blob_id
    await store.write(lambda tx: tx.conn.execute(delete(message_table).where(named)))


def s3_of(store: Store) -> S3BlobStore:
    assert isinstance(store.blobs, S3BlobStore)
    return store.blobs


async def test_equal_bodies_share_one_object_named_by_an_hmac_not_a_hash(
    s3_store: Store, moto_endpoint: str, bucket: str
) -> None:
    box = await new_inbox(s3_store)
    first = await s3_store.deliver(letter(1), [Target(box)])
    second = await s3_store.deliver(letter(1), [Target(box)])
    await s3_store.deliver(letter(2), [Target(box)])
    stored = objects(moto_endpoint, bucket)
    assert len(stored) == 2  # two bodies, three messages
    assert first.blob_id != second.blob_id
    assert await s3_store.blob_bytes(second.blob_id) == letter(1)
    assert not any(hashlib.sha256(letter(1)).hexdigest() in key for key in stored)


async def test_collection_keeps_what_a_committed_row_names_and_removes_orphans_past_grace(
    s3_store: Store, moto_endpoint: str, bucket: str
) -> None:
    box = await new_inbox(s3_store)
    kept = await s3_store.deliver(letter(1), [Target(box)])
    gone = await s3_store.deliver(letter(2), [Target(box)])
    await forget_messages(s3_store, gone.blob_id)
    await s3_of(s3_store).stage([s3_store.blobs.seal(b"uploaded, never committed")])
    assert len(objects(moto_endpoint, bucket)) == 3
    rows, report = await s3_store.collect_garbage()  # now: everything is within the grace
    assert (rows, report.deleted) == (1, 0) and len(objects(moto_endpoint, bucket)) == 3
    rows, report = await s3_store.collect_garbage(now=time.time() + GRACE + 60)
    assert report.deleted == 2
    assert len(objects(moto_endpoint, bucket)) == 1
    assert await s3_store.blob_bytes(kept.blob_id) == letter(1)


async def test_a_writer_racing_the_collector_is_refused_or_lands_never_lost(
    s3_store: Store, moto_endpoint: str, bucket: str
) -> None:
    blobs = s3_of(s3_store)
    box = await new_inbox(s3_store)
    first = await s3_store.deliver(letter(3), [Target(box)])
    await forget_messages(s3_store, first.blob_id)
    await s3_store.collect_garbage()  # the row goes; the object is within the grace
    [key] = objects(moto_endpoint, bucket)
    later = int(time.time()) + GRACE + 60
    # The collector dooms the object (nothing names it, old enough)…
    doomed = await s3_store.write(lambda tx: registry.doom(tx, [key], later - GRACE, later))
    assert doomed == [key]
    # …a writer of the same body now is refused (451 at the door) and writes nothing…
    with pytest.raises(registry.ObjectBeingDeleted):  # a StoreError: 451 at the doors
        await s3_store.deliver(letter(3), [Target(box)])
    assert await s3_store.read(lambda c: c.execute(select(message_table.c.id)).all()) == []
    # …the collector deletes it; a writer then uploads it again, and it is never lost.
    await blobs.finish_deleting(doomed, later)
    assert objects(moto_endpoint, bucket) == {}
    again = await s3_store.deliver(letter(3), [Target(box)])
    assert list(objects(moto_endpoint, bucket)) == [key]
    assert await s3_store.blob_bytes(again.blob_id) == letter(3)
    _, report = await s3_store.collect_garbage(now=later + GRACE)  # named: kept
    assert report.deleted == 0 and await s3_store.blob_bytes(again.blob_id) == letter(3)


async def test_a_writer_committing_after_the_listing_keeps_its_object(
    s3_store: Store, moto_endpoint: str, bucket: str
) -> None:
    """The collector listed the object as old and unnamed; a writer claims it and
    commits before the doom: the doom leaves it (touched since the cutoff)."""
    box = await new_inbox(s3_store)
    first = await s3_store.deliver(letter(4), [Target(box)])
    await forget_messages(s3_store, first.blob_id)
    await s3_store.collect_garbage()
    [key] = objects(moto_endpoint, bucket)
    cutoff = int(time.time()) + 1  # listed as older than the grace
    await asyncio.sleep(1.1)
    again = await s3_store.deliver(letter(4), [Target(box)])  # claims: touched after the cutoff
    await s3_store.write(lambda tx: tx.conn.execute(delete(message_table)))  # unnamed again
    await s3_store.write(lambda tx: tx.conn.execute(delete(blob_table)))
    assert await s3_store.write(lambda tx: registry.doom(tx, [key], cutoff, cutoff + 5)) == []
    assert again.blob_id


async def test_bodies_stored_in_the_database_stay_readable_after_the_switch_and_move_on_rotation(
    db_url: str, key_file: Path, moto_endpoint: str, bucket: str
) -> None:
    before = Store.open(db_url, key_file)
    before.start()
    box = await new_inbox(before)
    old = await before.deliver(letter(5), [Target(box)])
    await before.close()
    after = Store.open(db_url, key_file, s3=options(moto_endpoint, bucket))
    after.start()
    try:
        assert await after.blob_bytes(old.blob_id) == letter(5)
        assert await after.reencrypt_some() == 0  # same key: nothing to move
    finally:
        await after.close()
    rotate_key_file(key_file)
    rotated = Store.open(db_url, key_file, s3=options(moto_endpoint, bucket))
    rotated.start()
    try:
        assert await rotated.reencrypt_some() == 1  # into an object under the new key
        assert await rotated.blob_bytes(old.blob_id) == letter(5)
        row = await rotated.read(
            lambda c: c.execute(select(blob_table.c.data, blob_table.c.object_key)).one()
        )
    finally:
        await rotated.close()
    assert row.data == b"" and list(objects(moto_endpoint, bucket)) == [row.object_key]


async def test_a_body_put_in_a_transaction_without_staging_is_uploaded_before_its_commit(
    s3_store: Store, moto_endpoint: str, bucket: str
) -> None:
    """The DMP's deposits seal and put inside their transaction: the object is written
    there, before the commit, and a failure rolls the transaction back."""
    blobs = s3_of(s3_store)
    [blob_id] = await s3_store.write(lambda tx: blobs.put(tx, [blobs.seal(b"document CDA")]))
    assert len(objects(moto_endpoint, bucket)) == 1
    assert await s3_store.blob_bytes(blob_id) == b"document CDA"


def test_blobs_gc_command_collects_with_the_configured_store(
    instance: Path, moto_endpoint: str, bucket: str
) -> None:
    env = {"MSS_BLOBS_STORE": "s3", "MSS_BLOBS_ENDPOINT": moto_endpoint,
           "MSS_BLOBS_BUCKET": bucket, "MSS_BLOBS_ACCESS_KEY_ID": "mss",
           "MSS_BLOBS_SECRET_ACCESS_KEY": SECRET}  # fmt: skip
    result = run_mss("blobs", "gc", "--data-dir", str(instance), env=env)
    assert result.returncode == 0, result.stderr
    assert "0 unreferenced bodies deleted" in result.stdout
    assert SECRET not in result.stdout + result.stderr
    broken = run_mss("blobs", "gc", "--data-dir", str(instance),
                     env={**env, "MSS_BLOBS_ENDPOINT": "http://127.0.0.1:9"})  # fmt: skip
    assert broken.returncode != 0 and SECRET not in broken.stdout + broken.stderr
    assert broken.stderr.count("\n") == 1, broken.stderr  # one line, no traceback


async def test_imap_answers_no_while_the_object_store_hangs_and_the_session_goes_on(
    instance: Path, relay: Relay, bucket: str
) -> None:
    raw = message(SENDER, TO, subject="Imagerie", message_id="<imap-hang@pro.mssante.test>")
    async with mss_on_s3(instance, relay.endpoint, bucket) as server:
        assert (await server.submit(SENDER, raw, [TO])).code == 250

        def session() -> list[Any]:
            client = imaplib.IMAP4_SSL(
                "localhost", server.ports["imaps"], ssl_context=server.client_tls()
            )
            client.login(TO, PASSWORD)
            client.select("INBOX")
            relay.hang = True
            answers: list[Any] = [client.fetch("1", "(BODY.PEEK[])")[0]]
            answers.append(
                client.append("INBOX", None, None, b"Subject: brouillon\r\n\r\nx\r\n")[0]
            )
            relay.hang = False
            answers.append(client.fetch("1", "(BODY.PEEK[])"))
            answers.append(client.select("INBOX")[1])
            client.logout()
            return answers

        hung_fetch, hung_append, fetched, exists = await asyncio.to_thread(session)
    assert (hung_fetch, hung_append) == ("NO", "NO")
    assert fetched[0] == "OK" and b"imap-hang@" in fetched[1][0][1]
    assert exists == [b"1"]  # the refused APPEND stored nothing


async def test_a_body_whose_object_is_gone_or_swapped_is_a_store_error_not_a_plaintext(
    s3_store: Store, moto_endpoint: str, bucket: str
) -> None:
    box = await new_inbox(s3_store)
    one = await s3_store.deliver(letter(6), [Target(box)])
    two = await s3_store.deliver(letter(7), [Target(box)])
    s3 = client(moto_endpoint, bucket)
    [key_one, key_two] = await s3_store.read(
        lambda c: [registry.read_row(c, i)[2] for i in (one.blob_id, two.blob_id)]
    )
    obstore.put(s3, key_one, bytes(obstore.get(s3, key_two).bytes()))  # a swapped object
    with pytest.raises(StoreError, match="another body"):
        await s3_store.blob_bytes(one.blob_id)
    obstore.delete(s3, key_two)
    with pytest.raises(StoreError, match="missing"):
        await s3_store.blob_bytes(two.blob_id)


async def test_an_object_store_that_refuses_the_upload_answers_451(
    instance: Path, moto_endpoint: str
) -> None:
    """Not a timeout: the store answers an error (here: no such bucket)."""
    async with mss_on_s3(instance, moto_endpoint, "seau-absent") as server:
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await server.submit(SENDER, message(SENDER, TO, subject="Avis"), [TO])
        assert f"{refused.value.code} {refused.value.message}" == codes.TEMPORARY_FAILURE
        assert await server.inbox(TO) == []
