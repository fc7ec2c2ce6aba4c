"""Backup and restore (issue 15): `mss backup` while mss serves, `mss restore` elsewhere,
and the DMP traces' head kept outside the database.

The drill: a served instance under traffic (SMTP submissions in a loop, IMAP flag
changes, a DMP deposit, consultations that leave traces); `mss backup` (the real
command, another process) during it; restore into a new folder, start it, and find
every message acknowledged before the backup started, with every flag acknowledged
before it, the documents and the traces, the chain intact up to the saved head.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from mss.dmp import service, traces
from mss.dmp.access import Mode
from mss.dmp.service import Settings as DMPSettings
from mss.store.db import make_null_pool_engine
from mss.store.models import dmp_trace_table
from mss.testing.imapclient import RawIMAP
from mss.testing.xdmgen import INS, XDM, XDMDocument, cda

from .conftest import fresh_database, run_mss
from .harness import PASSWORD, Running, message, running
from .test_dmp_mail import OTHER, PATIENT, PRO, _drain, document_mail

USER = "marie.martin@pro.mssante.test"
SENDER = "jean.martin@pro.mssante.test"
KEY_FOLDERS = ("keys", "certs", "dkim")  # what the operator saves apart from the backup


@dataclass
class Traffic:
    """What the clients were told was done, and when (time.monotonic())."""

    delivered: list[tuple[float, str]] = field(default_factory=list)  # message ids
    flagged: list[tuple[float, int, str]] = field(default_factory=list)  # uid, flag
    stop: asyncio.Event = field(default_factory=asyncio.Event)


async def _submit_loop(server: Running, traffic: Traffic) -> None:
    n = 0
    while not traffic.stop.is_set():
        n += 1
        mid = f"drill-{n}-{uuid.uuid4().hex[:8]}@pro.mssante.test"
        reply = await server.submit(SENDER, message(SENDER, USER, message_id=f"<{mid}>"), [USER])
        assert reply.code == 250
        traffic.delivered.append((time.monotonic(), mid))


async def _flag_loop(server: Running, traffic: Traffic) -> None:
    client = await RawIMAP.connect(server.ports["imaps"], server.client_tls())
    await client.login(USER, PASSWORD)
    assert (await client.command("SELECT INBOX")).ok
    done: set[int] = set()
    while not traffic.stop.is_set():
        [found] = (await client.command("UID SEARCH ALL")).untagged("SEARCH")
        uids = [int(u) for u in found.split()[2:]]
        for uid in [u for u in uids if u not in done][:3]:
            flag = ("\\Flagged", "\\Answered", "$Suivi")[uid % 3]
            assert (await client.command(f"UID STORE {uid} +FLAGS ({flag})")).ok
            traffic.flagged.append((time.monotonic(), uid, flag))
            done.add(uid)
        await asyncio.sleep(0.02)
    await client.close()


async def _dmp_activity(server: Running) -> None:
    """A deposit by mail, an authorisation and a search: documents and traces."""
    reply = await server.submit(PRO, document_mail(XDM([XDMDocument(cda())]).build()), [PATIENT])
    assert reply.code == 250
    assert await _drain(server) == ["deposited 1 document(s)"]
    settings = DMPSettings()
    await server.store.write(lambda tx: service.authorize(tx, settings, INS, OTHER))
    await server.store.write(
        lambda tx: service.search_documents(tx, settings, INS, OTHER, Mode.NORMAL, service.Search())
    )


async def _prepare(server: Running) -> None:
    await server.add_pro(USER)
    await server.add_pro(SENDER)
    await server.add_pro(PRO, national_id="810003456789", name="Jean DUPONT")
    await server.add_patient(INS, family="DE VINCI", given="RUTH", birth_date="1979-03-17")


async def _backup_under_traffic(server: Running, folder: Path, env: dict[str, str]) -> float:
    """Run `mss backup` while messages and flags flow; return when it started."""
    traffic = Traffic()
    loops = [asyncio.create_task(_submit_loop(server, traffic)),
             asyncio.create_task(_flag_loop(server, traffic))]  # fmt: skip
    await asyncio.sleep(1.0)
    await _dmp_activity(server)
    await asyncio.sleep(0.5)
    started = time.monotonic()
    done = await asyncio.to_thread(
        run_mss, "backup", str(folder), "--data-dir", str(server.data_dir), env=env
    )
    await asyncio.sleep(0.5)
    traffic.stop.set()
    await asyncio.gather(*loops)
    assert done.returncode == 0, done.stderr
    assert "the keys are NOT in the backup" in done.stdout
    server.traffic = traffic  # type: ignore[attr-defined]
    return started


async def _mailbox(server: Running) -> dict[str, tuple[int, str]]:
    """Message-ID → (UID, FLAGS) of the user's INBOX, read over IMAP."""
    client = await RawIMAP.connect(server.ports["imaps"], server.client_tls())
    await client.login(USER, PASSWORD)
    assert (await client.command("EXAMINE INBOX")).ok
    reply = await client.command("UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    await client.close()
    found = {}
    for part in reply.text().split("* ")[1:]:
        uid = re.search(r"UID (\d+)", part)
        flags = re.search(r"FLAGS \(([^)]*)\)", part)
        mid = re.search(r"Message-ID: <([^>]+)>", part, re.IGNORECASE)
        if uid and flags and mid:
            found[mid.group(1)] = (int(uid.group(1)), flags.group(1))
    return found


def _put_keys_back(source: Path, target: Path) -> None:
    for name in KEY_FOLDERS:
        shutil.copytree(source / name, target / name)


@pytest.fixture
def second_postgres_url(postgres_server: str) -> Iterator[str]:
    """Another empty database on the session's server: where the restore goes."""
    yield from fresh_database(postgres_server)


@pytest.fixture(params=["sqlite", "postgresql"])
def databases(request: pytest.FixtureRequest) -> tuple[dict[str, str], dict[str, str]]:
    """The environment of the instance backed up, and of the one restored."""
    if request.param == "sqlite":
        return {}, {}
    first: str = request.getfixturevalue("postgres_url")
    second: str = request.getfixturevalue("second_postgres_url")
    return {"MSS_STORAGE_URL": first}, {"MSS_STORAGE_URL": second}


async def test_backup_under_load_restores_every_acknowledged_message_flag_document_and_trace(
    instance: Path, tmp_path: Path, databases: tuple[dict[str, str], dict[str, str]]
) -> None:
    source_env, target_env = databases
    folder, restored = tmp_path / "backup", tmp_path / "restored"
    async with running(instance, env=source_env) as server:
        await _prepare(server)
        started = await _backup_under_traffic(server, folder, source_env)
        traffic: Traffic = server.traffic  # type: ignore[attr-defined]
    refused = run_mss("restore", str(folder), "--data-dir", str(instance), env=target_env)
    assert refused.returncode == 1
    assert "n'est pas vide (the data directory is not empty)" in refused.stderr
    done = run_mss("restore", str(folder), "--data-dir", str(restored), env=target_env)
    assert done.returncode == 0, done.stderr
    assert "chain intact" in done.stdout
    head = restored / "traces.head"
    assert head.read_text() == (folder / "traces.head").read_text()
    verified = run_mss("dmp", "verify-traces", "--data-dir", str(restored), "--head", str(head),
                       env=target_env)  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr
    _put_keys_back(instance, restored)
    async with running(restored, env=target_env) as again:
        box = await _mailbox(again)
        before = [mid for at, mid in traffic.delivered if at < started]
        assert len(before) >= 5
        assert [mid for mid in before if mid not in box] == []
        flags = dict(box.values())
        flagged = [(uid, flag) for at, uid, flag in traffic.flagged if at < started]
        assert flagged
        assert [(uid, flag) for uid, flag in flagged if flag not in flags.get(uid, "")] == []
        [document] = await again.store.write(lambda tx: service.patient_documents(tx, INS))
        assert document["unique_id"] == "1.2.250.1.999.1.1^CR-2026-0001"
        for action in ("deposit", "authorize", "consult"):
            actor = OTHER.national_id if action != "deposit" else "810003456789"
            assert await again.store.read(
                lambda c, a=action, who=actor: traces.has_trace(c, INS, who, a)
            ), action


async def test_a_backup_holds_the_last_commits_still_in_the_write_ahead_log(
    instance: Path, tmp_path: Path
) -> None:
    """SQLite in WAL mode: the last commits are in mss.db-wal, not yet in mss.db; a copy of
    the file alone would lose them (the backup API reads the database as SQLite sees it)."""
    async with running(instance) as server:
        await _prepare(server)
        for n in range(3):
            await server.submit(SENDER, message(SENDER, USER, message_id=f"<wal-{n}@x>"), [USER])
        done = await asyncio.to_thread(
            run_mss, "backup", str(tmp_path / "b"), "--data-dir", str(instance)
        )
        assert done.returncode == 0, done.stderr
    restored = tmp_path / "new"
    assert run_mss("restore", str(tmp_path / "b"), "--data-dir", str(restored)).returncode == 0
    _put_keys_back(instance, restored)
    async with running(restored) as again:
        assert sorted(await _mailbox(again)) == ["wal-0@x", "wal-1@x", "wal-2@x"]


def _keys_of(instance: Path) -> bytes:
    return (instance / "keys" / "blob.keys").read_bytes()


def _holds(folder: Path, secret: bytes) -> bool:
    return any(secret in p.read_bytes() for p in folder.rglob("*") if p.is_file())


def test_a_backup_holds_no_key_unless_asked_and_says_where_they_are(
    instance: Path, tmp_path: Path
) -> None:
    plain = run_mss("backup", str(tmp_path / "plain"), "--data-dir", str(instance))
    assert plain.returncode == 0, plain.stderr
    assert str((instance / "keys").resolve()) in plain.stdout
    assert not _holds(tmp_path / "plain", _keys_of(instance))
    assert not (tmp_path / "plain" / "keys").exists()
    keyed = run_mss("backup", str(tmp_path / "keyed"), "--data-dir", str(instance), "--with-keys")
    assert keyed.returncode == 0, keyed.stderr
    assert _holds(tmp_path / "keyed", _keys_of(instance))
    restored = run_mss("restore", str(tmp_path / "keyed"), "--data-dir", str(tmp_path / "new"))
    assert restored.returncode == 0, restored.stderr
    assert _keys_of(tmp_path / "new") == _keys_of(instance)
    assert "put the keys back" not in restored.stdout


def test_a_damaged_backup_is_refused_and_leaves_the_data_directory_empty(
    instance: Path, tmp_path: Path
) -> None:
    assert run_mss("backup", str(tmp_path / "b"), "--data-dir", str(instance)).returncode == 0
    with open(tmp_path / "b" / "database.sqlite", "r+b") as f:
        f.seek(200)
        f.write(b"\xff")
    target = tmp_path / "new"
    target.mkdir()
    refused = run_mss("restore", str(tmp_path / "b"), "--data-dir", str(target))
    assert refused.returncode == 1
    assert "sauvegarde altérée (backup damaged): database.sqlite" in refused.stderr
    assert list(target.iterdir()) == []


def test_a_backup_with_a_file_its_manifest_does_not_name_is_refused(
    instance: Path, tmp_path: Path
) -> None:
    assert run_mss("backup", str(tmp_path / "b"), "--data-dir", str(instance)).returncode == 0
    (tmp_path / "b" / "keys" / "certs").mkdir(parents=True)
    (tmp_path / "b" / "keys" / "certs" / "ca.crt").write_text("a CA slipped in")
    refused = run_mss("restore", str(tmp_path / "b"), "--data-dir", str(tmp_path / "new"))
    assert refused.returncode == 1
    assert "files not in its manifest: ['keys/certs/ca.crt']" in refused.stderr
    assert not (tmp_path / "new").exists() or list((tmp_path / "new").iterdir()) == []


def test_a_postgresql_backup_goes_only_into_an_empty_postgresql_database(
    instance: Path, tmp_path: Path, postgres_url: str, second_postgres_url: str
) -> None:
    on_pg = {"MSS_STORAGE_URL": postgres_url}
    assert run_mss("init", "--data-dir", str(instance), env=on_pg).returncode == 0
    done = run_mss("backup", str(tmp_path / "b"), "--data-dir", str(instance), env=on_pg)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "b" / "database.pgdump").exists()
    into_sqlite = run_mss("restore", str(tmp_path / "b"), "--data-dir", str(tmp_path / "n1"))
    assert into_sqlite.returncode == 1
    assert "(the backup is postgresql, the target database sqlite)" in into_sqlite.stderr
    assert list((tmp_path / "n1").iterdir()) == []
    into_used = run_mss("restore", str(tmp_path / "b"), "--data-dir", str(tmp_path / "n2"),
                        env=on_pg)  # fmt: skip
    assert into_used.returncode == 1
    assert "(the PostgreSQL database is not empty)" in into_used.stderr
    into_empty = run_mss("restore", str(tmp_path / "b"), "--data-dir", str(tmp_path / "n3"),
                         env={"MSS_STORAGE_URL": second_postgres_url})  # fmt: skip
    assert into_empty.returncode == 0, into_empty.stderr


def test_a_backup_of_a_newer_schema_is_refused(instance: Path, tmp_path: Path) -> None:
    assert run_mss("backup", str(tmp_path / "b"), "--data-dir", str(instance)).returncode == 0
    manifest = tmp_path / "b" / "MANIFEST.json"
    newer = manifest.read_text().replace('"schema_revision": "0', '"schema_revision": "9')
    manifest.write_text(newer)
    refused = run_mss("restore", str(tmp_path / "b"), "--data-dir", str(tmp_path / "new"))
    assert refused.returncode == 1
    assert "(backup of a newer mss): schema 9" in refused.stderr


def test_a_backup_into_a_folder_that_is_not_empty_is_refused(
    instance: Path, tmp_path: Path
) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "old").write_text("x")
    refused = run_mss("backup", str(tmp_path / "b"), "--data-dir", str(instance))
    assert refused.returncode == 1
    assert "n'est pas vide (the backup folder is not empty)" in refused.stderr


# --- the traces' head, outside the database ------------------------------------------------


@pytest.fixture
async def traced(mss: Running) -> Running:
    """A served instance with a few DMP traces."""
    await _prepare(mss)
    await _dmp_activity(mss)
    return mss


async def test_the_served_instance_writes_the_traces_head_beside_the_data_and_logs_it(
    traced: Running, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="mss"):
        await traced.app.keep_traces_head()
    last = await traced.store.read(
        lambda c: c.execute(select(dmp_trace_table.c.id, dmp_trace_table.c.hash)
                            .order_by(dmp_trace_table.c.id.desc())).first()
    )  # fmt: skip
    assert last is not None
    assert (traced.data_dir / "traces.head").read_text() == f"{last.id} {last.hash}\n"
    assert f"DMP traces head {last.id} {last.hash}" in caplog.text


def _cut_last_traces(instance: Path, count: int) -> None:
    """What an intruder with write access to the database does: remove the newest traces
    (what remains is a valid shorter chain, whose last row is the new head)."""
    engine = make_null_pool_engine(f"sqlite:///{instance / 'mss.db'}")
    t = dmp_trace_table.c
    with engine.begin() as conn:
        last = conn.execute(select(func.max(t.id))).scalar_one()
        conn.execute(delete(dmp_trace_table).where(t.id > last - count))
    engine.dispose()


def _verify(instance: Path, *head: str) -> tuple[int, str]:
    done = run_mss("dmp", "verify-traces", "--data-dir", str(instance), *head)
    return done.returncode, done.stdout + done.stderr


async def test_a_chain_cut_after_its_head_was_kept_fails_verify_traces(instance: Path) -> None:
    async with running(instance) as server:
        await _prepare(server)
        await _dmp_activity(server)
    kept = (instance / "traces.head").read_text().strip()  # written when the server stopped
    position, digest = kept.split()
    assert _verify(instance, "--head", kept)[0] == 0
    assert _verify(instance, "--head", digest)[0] == 0
    assert _verify(instance, "--head", str(instance / "traces.head"))[0] == 0
    _cut_last_traces(instance, 1)
    assert _verify(instance)[0] == 0  # the chain alone cannot tell
    code, output = _verify(instance, "--head", str(instance / "traces.head"))
    assert code == 1
    assert f"head {position} {digest} not in the chain" in output
    assert _verify(instance, "--head", digest)[0] == 1
    assert _verify(instance, "--head", f"{int(position) - 1}:{digest}")[0] == 1


def test_verify_traces_refuses_a_head_it_cannot_read(instance: Path) -> None:
    code, output = _verify(instance, "--head", "not-a-hash")
    assert code == 2
    assert "tête de chaîne illisible (unreadable chain head)" in output
    assert _verify(instance, "--head", traces.GENESIS)[0] == 0  # an empty chain holds the genesis
