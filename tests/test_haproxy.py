"""Issue 15, several nodes: two `mss serve` nodes (127.0.0.2 and 127.0.0.3: Linux routes
all of 127/8 to the loopback) on one PostgreSQL, behind a real HAProxy (Debian's
`haproxy`) in TCP mode with `send-proxy-v2`.

- SMTP submission and IMAP go through HAProxy; the nodes see the real client address
  (`Received:`), which is neither HAProxy's nor the node's;
- an IMAP IDLE on node A is woken by a message delivered through node B;
- the outbox is leased across nodes: each message to an applicative mailbox gives one
  webhook call (one `webhook-id`), whichever node took the message or ran the job;
- one node killed (SIGKILL, the whole process group) under SMTP and IMAP load: every
  message acknowledged 250 is found afterwards, and clients reconnect through HAProxy
  to the other node. The figures are printed (`pytest -s`).
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import imaplib
import os
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from mss.notify.webhooks import new_secret
from mss.store import notify as notes
from mss.store.models import AccountKind
from mss.testing import free_port
from mss.testing.imapclient import RawIMAP
from mss.testing.smarthost import smarthost

from .harness import PASSWORD, message, running
from .notifying import Sink, http_receiver, notify_settings
from .test_serve import ALL_PORTS_FREE, stop_server, wait_ready

pytestmark = pytest.mark.slow

JEAN = "jean.dupont@pro.mssante.test"
APP = "logiciel.labo@pro.mssante.test"
NODES = {"a": "127.0.0.2", "b": "127.0.0.3"}
HAPROXY_SOURCE = "127.0.0.10"  # the only address the nodes take PROXY headers from
CLIENT = "127.0.0.50"  # where the test's clients connect from
DOORS = ("submissions", "imaps")

HAPROXY_CFG = """\
global
    maxconn 2000
defaults
    mode tcp
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    retries 3
    option redispatch
"""
HAPROXY_DOOR = """\
frontend {door}
    bind 127.0.0.1:{port}
    default_backend {door}_nodes
backend {door}_nodes
    balance roundrobin
    source {source}
    server a {a}:{a_port} send-proxy-v2 check inter 300 fall 2 rise 2
    server b {b}:{b_port} send-proxy-v2 check inter 300 fall 2 rise 2
"""


@dataclass
class Hooks:
    """The webhook receiver of the applicative mailbox: every call, as (id, uid)."""

    calls: list[tuple[str, int]] = field(default_factory=list)
    base: str = ""

    async def on_hook(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls.append((request.headers["webhook-id"], int(body["data"]["uid"])))
        return web.Response(status=204)


@dataclass
class Cluster:
    nodes: dict[str, subprocess.Popen[str]]
    ports: dict[str, dict[str, int]]  # node → door → port
    front: dict[str, int]  # door → HAProxy's port
    tls: ssl.SSLContext
    hooks: Hooks
    data_dir: Path
    env: dict[str, str]

    def kill(self, name: str) -> None:
        """The node dies at once, supervisor and workers (its process group)."""
        os.killpg(self.nodes[name].pid, signal.SIGKILL)
        self.nodes[name].wait(10)


def _haproxy_config(front: dict[str, int], ports: dict[str, dict[str, int]]) -> str:
    doors = [
        HAPROXY_DOOR.format(
            door=door,
            port=front[door],
            source=HAPROXY_SOURCE,
            a=NODES["a"],
            b=NODES["b"],
            a_port=ports["a"][door],
            b_port=ports["b"][door],
        )
        for door in DOORS
    ]
    return HAPROXY_CFG + "".join(doors)


def _node(data_dir: Path, host: str, env: dict[str, str]) -> subprocess.Popen[str]:
    node_env = {**os.environ, **ALL_PORTS_FREE, **env, "MSS_LISTEN_HOST": host,
                "MSS_SERVER_WORKERS": "1",
                "MSS_SERVER_PROXY_FROM": f"{HAPROXY_SOURCE}/32"}  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "mss", "serve", "--data-dir", str(data_dir)],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=node_env,
        start_new_session=True,
    )  # fmt: skip


def _wait_listening(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@contextlib.contextmanager
def _haproxy(config: Path) -> Iterator[subprocess.Popen[bytes]]:
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    checked = subprocess.run([haproxy, "-c", "-f", str(config)], capture_output=True, check=False)
    assert checked.returncode == 0, checked.stderr.decode()
    process = subprocess.Popen([haproxy, "-db", "-f", str(config)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        yield process
    finally:
        process.terminate()
        process.wait(10)


async def _prepare(data_dir: Path, env: dict[str, str], hooks: Hooks) -> None:
    """Accounts and the applicative mailbox's webhook, in the shared database."""
    async with running(data_dir, env=env) as admin:
        await admin.add_pro(JEAN)
        await admin.add_pro(APP, kind=AccountKind.APPLICATIVE)
        url, now = f"{hooks.base}/hook", int(time.time())
        await admin.store.write(lambda tx: notes.set_webhook(tx, APP, url, [new_secret()], now))


@pytest.fixture
async def cluster(instance: Path, postgres_url: str, tmp_path: Path) -> AsyncIterator[Cluster]:
    with smarthost(Sink(), instance / "certs") as port:
        async with _cluster(instance, postgres_url, tmp_path, port) as found:
            yield found


@contextlib.asynccontextmanager
async def _cluster(
    instance: Path, postgres_url: str, tmp_path: Path, smarthost_port: int
) -> AsyncIterator[Cluster]:
    notify = notify_settings(smarthost_port)["notify"]
    env = {"MSS_STORAGE_URL": postgres_url, "MSS_POLICY_PATIENT_SMTP_LOGIN": "true",
           **{f"MSS_NOTIFY_{k.upper()}": str(v).lower() if isinstance(v, bool) else str(v)
              for k, v in notify.items()}}  # fmt: skip
    hooks = Hooks()
    async with http_receiver({"/hook": hooks.on_hook}) as hooks.base:
        await _prepare(instance, env, hooks)
        nodes = {name: _node(instance, host, env) for name, host in NODES.items()}
        try:
            ports = {name: await asyncio.to_thread(wait_ready, p) for name, p in nodes.items()}
            front = {door: free_port() for door in DOORS}
            config = tmp_path / "haproxy.cfg"
            config.write_text(_haproxy_config(front, ports))
            with _haproxy(config):
                for port in front.values():
                    await asyncio.to_thread(_wait_listening, port)
                tls = ssl.create_default_context(cafile=str(instance / "certs" / "ca.crt"))
                yield Cluster(nodes, ports, front, tls, hooks, instance, env)
        finally:
            for process in nodes.values():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                with contextlib.suppress(Exception):
                    stop_server(process, signal.SIGTERM)


# --- clients ----------------------------------------------------------------------------------


class _Smtps(smtplib.SMTP_SSL):
    """smtplib's SMTPS client to `target` from `source` (the certificate is the nodes'
    own, for localhost)."""

    def __init__(self, target: tuple[str, int], source: str, context: ssl.SSLContext) -> None:
        self._target, self._source = target, source
        super().__init__("localhost", target[1], context=context, timeout=30)

    def _get_socket(self, host: str, port: int, timeout: float) -> ssl.SSLSocket:
        raw = socket.create_connection(self._target, timeout, source_address=(self._source, 0))
        return self.context.wrap_socket(raw, server_hostname="localhost")


class _ImapFromClient(imaplib.IMAP4_SSL):
    def _create_socket(self, timeout: float | None) -> socket.socket:
        raw = socket.create_connection(("127.0.0.1", self.port), timeout,
                                       source_address=(CLIENT, 0))  # fmt: skip
        return self.ssl_context.wrap_socket(raw, server_hostname="localhost")


def _smtp(cluster: Cluster) -> smtplib.SMTP_SSL:
    return _Smtps(("127.0.0.1", cluster.front["submissions"]), CLIENT, cluster.tls)


def _submit(cluster: Cluster, subject: str, to: str = JEAN) -> None:
    with _smtp(cluster) as client:
        client.login(JEAN, PASSWORD)
        client.sendmail(JEAN, [to], message(JEAN, to, subject))


def _imap(cluster: Cluster) -> imaplib.IMAP4_SSL:
    client = _ImapFromClient("localhost", cluster.front["imaps"], ssl_context=cluster.tls,
                             timeout=30)  # fmt: skip
    try:
        client.login(JEAN, PASSWORD)
    except BaseException:
        client.shutdown()
        raise
    return client


async def _subjects(cluster: Cluster, address: str) -> list[str]:
    async with running(cluster.data_dir, env=cluster.env) as reader:
        raws = await reader.inbox(address)
    return [str(email.message_from_bytes(raw)["Subject"]) for raw in raws]


async def _idle_at(cluster: Cluster, node: str) -> RawIMAP:
    """An IDLE session opened on `node` itself (not through HAProxy)."""
    reader, writer = await asyncio.open_connection(
        NODES[node], cluster.ports[node]["imaps"], ssl=cluster.tls, server_hostname="localhost"
    )
    client = RawIMAP(reader, writer)
    client.greeting = await client.read_line()
    assert (await client.login(JEAN, PASSWORD)).ok
    assert (await client.command("SELECT INBOX")).ok
    await client.send(b"i1 IDLE\r\n")
    assert (await client.read_line()).startswith(b"+")
    return client


async def _eventually(check: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


def _one_id_per_message(hooks: Hooks) -> dict[int, set[str]]:
    ids: dict[int, set[str]] = {}
    for hook_id, uid in hooks.calls:
        ids.setdefault(uid, set()).add(hook_id)
    return ids


async def test_two_nodes_behind_haproxy_share_mail_idle_and_outbox(cluster: Cluster) -> None:
    idler = await _idle_at(cluster, "a")
    started = time.monotonic()
    submit_b = _Smtps((NODES["b"], cluster.ports["b"]["submissions"]), "127.0.0.1", cluster.tls)
    with submit_b as client:  # delivered through node B, directly
        client.login(JEAN, PASSWORD)
        client.sendmail(JEAN, [JEAN], message(JEAN, JEAN, "par le noeud B"))
    while not (await asyncio.wait_for(idler.read_line(), 10)).endswith(b" EXISTS\r\n"):
        pass
    woken = time.monotonic() - started
    await idler.close()
    # through HAProxy: the nodes see the client, not HAProxy
    await asyncio.to_thread(_submit, cluster, "par HAProxy")
    subjects = 6
    for n in range(subjects):  # round robin: both nodes take some
        await asyncio.to_thread(_submit, cluster, f"pour le logiciel {n}", APP)
    imap = await asyncio.to_thread(_imap, cluster)
    imap.select("INBOX")
    _, found = imap.search(None, "ALL")
    _, fetched = imap.fetch(found[0].split()[-1], "(BODY.PEEK[HEADER])")
    imap.logout()
    header = fetched[0][1] if isinstance(fetched[0], tuple) else b""
    assert f"([{CLIENT}])".encode() in header
    assert len(found[0].split()) == 2
    await _eventually(lambda: len(_one_id_per_message(cluster.hooks)) == subjects, 30)
    await asyncio.sleep(2)  # a second call would come now
    print(f"\nIDLE on node A woken {woken:.2f} s after a delivery through node B; "
          f"{len(cluster.hooks.calls)} webhook calls for {subjects} messages")  # fmt: skip
    assert sorted(uid for _, uid in cluster.hooks.calls) == list(range(1, subjects + 1))


@dataclass
class Load:
    """What the clients did: subjects sent and acknowledged, reconnect times."""

    stop: threading.Event = field(default_factory=threading.Event)
    sent: list[str] = field(default_factory=list)
    acked: list[str] = field(default_factory=list)
    smtp_reconnects: list[float] = field(default_factory=list)
    imap_reconnects: list[float] = field(default_factory=list)
    imap_reads: int = 0


def _sender(cluster: Cluster, load: Load, name: int) -> None:
    """Send to the applicative mailbox on one connection until it breaks, then reconnect."""
    failed_at: float | None = None
    n = 0
    while not load.stop.is_set():
        try:
            with _smtp(cluster) as client:
                client.login(JEAN, PASSWORD)
                if failed_at is not None:
                    load.smtp_reconnects.append(time.monotonic() - failed_at)
                    failed_at = None
                while not load.stop.is_set():
                    subject = f"charge {name}-{n}"
                    n += 1
                    load.sent.append(subject)
                    client.sendmail(JEAN, [APP], message(JEAN, APP, subject))
                    load.acked.append(subject)  # 250 to DATA
        except (smtplib.SMTPException, OSError):
            failed_at = failed_at or time.monotonic()
            time.sleep(0.05)


def _reader(cluster: Cluster, load: Load) -> None:
    """An IMAP session polling its INBOX; reconnects when it breaks."""
    failed_at: float | None = None
    while not load.stop.is_set():
        try:
            client = _imap(cluster)
        except (imaplib.IMAP4.error, OSError):
            failed_at = failed_at or time.monotonic()
            time.sleep(0.05)
            continue
        if failed_at is not None:
            load.imap_reconnects.append(time.monotonic() - failed_at)
            failed_at = None
        try:
            _poll(client, load)
        except (imaplib.IMAP4.error, OSError):
            failed_at = failed_at or time.monotonic()
            time.sleep(0.05)


def _poll(client: imaplib.IMAP4_SSL, load: Load) -> None:
    try:
        client.select("INBOX")
        while not load.stop.is_set():
            client.noop()
            client.search(None, "ALL")
            load.imap_reads += 1
            time.sleep(0.05)
    except BaseException:
        client.shutdown()
        raise
    client.logout()


async def test_a_node_killed_under_load_loses_no_acknowledged_message(cluster: Cluster) -> None:
    load = Load()
    clients = [threading.Thread(target=_sender, args=(cluster, load, n)) for n in range(4)]
    clients += [threading.Thread(target=_reader, args=(cluster, load)) for _ in range(2)]
    for client in clients:
        client.start()
    try:
        await asyncio.sleep(4)
        acked_before = len(load.acked)
        cluster.kill("a")
        await asyncio.sleep(6)
    finally:
        load.stop.set()
        for client in clients:
            await asyncio.to_thread(client.join, 60)
    found = await _subjects(cluster, APP)
    lost = set(load.acked) - set(found)
    print(
        f"\nnode A killed after {acked_before} messages acknowledged; in all: "
        f"{len(load.sent)} sent, {len(load.acked)} acknowledged (250), {len(found)} found, "
        f"{len(lost)} acknowledged and lost; SMTP reconnects through HAProxy: "
        f"{_times(load.smtp_reconnects)}; IMAP reconnects: {_times(load.imap_reconnects)}, "
        f"{load.imap_reads} IMAP polls"
    )
    assert not lost
    assert len(load.acked) > acked_before > 0  # the load went on after the kill
    assert load.smtp_reconnects and load.imap_reconnects  # some clients were on node A
    assert max(load.smtp_reconnects + load.imap_reconnects) < 10
    # every message the nodes took gets its webhook, once per message (one id), the jobs
    # node A held being taken up by node B
    await _eventually(lambda: len(_one_id_per_message(cluster.hooks)) >= len(found), 90)
    ids = _one_id_per_message(cluster.hooks)
    print(f"{len(cluster.hooks.calls)} webhook calls for {len(ids)} messages")
    assert all(len(one) == 1 for one in ids.values())


def _times(seconds: list[float]) -> str:
    if not seconds:
        return "none"
    median = sorted(seconds)[len(seconds) // 2]
    return f"{len(seconds)}, at most {max(seconds):.2f} s (median {median:.2f} s)"
