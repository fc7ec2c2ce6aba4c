"""`mss serve`: one process, or a supervisor and its workers.

With `server.workers` above 1 (by default: one per core), the supervisor runs the
migrations and binds the listening sockets (one per door for each worker, on the
same port: `Supervisor._bind`), then forks the workers (before
any thread or event loop exists in this process), starts again a worker that dies,
and passes SIGINT/SIGTERM on to them; each worker drains its connections and exits.
The workers count in files of `<data dir>/run/metrics/<supervisor pid>`, summed by
whichever answers `/metrics` (`mss.metrics`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import resource
import signal
import socket
import time
from collections.abc import Callable, Coroutine
from typing import Any

from mss import __version__, metrics
from mss.app import Application, describe_ports, preload
from mss.config import Settings
from mss.errors import MssError
from mss.instance import open_store
from mss.security.proxy_protocol import LISTEN_BACKLOG
from mss.wiring import TLSContexts, tls_contexts

log = logging.getLogger("mss")

LISTENERS = ("mx", "submission", "submissions", "imap", "imaps", "https")
METRICS_DIR = "run/metrics"  # under the data directory: one folder per running server
RESTART_DELAY = 1.0  # seconds before a dead worker is started again


def serve(settings: Settings) -> int:
    """Run until SIGINT or SIGTERM, then drain and return 0."""
    _raise_open_files_limit()
    map_large_allocations_apart()
    workers = settings.server.worker_count
    if workers > 1:
        return Supervisor(settings, workers).run()
    run_loop(settings, _run_until_signalled(Application(settings)))
    return 0


def run_loop(settings: Settings, main: Coroutine[Any, Any, None]) -> None:
    """Run `main` to its end on the event loop `server.event_loop` names: uvloop's
    (libuv; its transports and loop are compiled) or the standard library's."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if settings.server.event_loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main)


def _raise_open_files_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:  # thousands of IMAP IDLE sessions need thousands of descriptors
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


M_MMAP_THRESHOLD = -3  # glibc's <malloc.h>
MMAP_THRESHOLD = 16 * 1024


def map_large_allocations_apart() -> None:
    """glibc: serve allocations of 16 KiB and more from their own mappings, returned
    to the system when freed. Each TLS handshake borrows OpenSSL's two record buffers
    (~17 KiB each, freed once the connection is quiet, `SSL_MODE_RELEASE_BUFFERS`);
    taken from the heap, they leave holes between the sessions' long-lived objects
    that no trim gives back: 20 KB per IMAP IDLE session (`bench imap --idle`)."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):  # not glibc: its own allocator
        ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)


async def _run_until_signalled(app: Application) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await app.run(stop, ready=lambda _ports: settle_garbage_collector())


def settle_garbage_collector() -> None:
    """Once serving, keep the collector off what lives as long as the process (modules,
    the apps and their caches: a million objects): `gc.freeze` moves them out of its
    reach, so that a full collection, every few hundred requests, scans what the
    requests left in a few milliseconds instead of pausing every connection of the
    process for 60–130 ms (the patient space's p99, `bench space`). Only `mss serve`
    does it: a test process starting many Applications would keep their cycles."""
    gc.collect()
    gc.freeze()


def share_with_workers() -> None:
    """Before forking: load what every worker would load, then freeze it.

    A forked worker shares its parent's pages until it writes to them; the
    collector writes to every object it examines, so a worker's first full
    collection would copy the whole inherited heap. Frozen objects (`gc.freeze`)
    are never examined again, in the parent or in its children (the `gc` module's
    advice for forking servers)."""
    preload()
    settle_garbage_collector()


def bind_listening_socket(host: str, port: int, *, spread: bool = False) -> socket.socket:
    """A listening socket; with `spread`, one of a group on the same port among which
    the kernel spreads new connections evenly (`SO_REUSEPORT`, same user only)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if spread:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise MssError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


def free_port(host: str, port: int) -> int:
    """`port` (or a port the system picks, for 0) once checked free: a plain socket binds
    it, then lets it go. Sockets of a `SO_REUSEPORT` group never conflict with one
    another, so a second `mss serve` on the same ports would silently share them."""
    with bind_listening_socket(host, port) as probe:
        return int(probe.getsockname()[1])


def _exit_text(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    return f"killed by signal {-code}" if code < 0 else f"exit status {code}"


def _die_with_parent(parent: int) -> None:
    """Linux: if the supervisor dies (even by SIGKILL), its workers die with it, so
    that nothing keeps serving, or holding the ports, behind a dead supervisor."""
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # it died before prctl
        os._exit(1)


class Supervisor:
    """The parent of the worker processes: sockets, forks, restarts, signals."""

    def __init__(self, settings: Settings, workers: int) -> None:
        self.settings = settings
        self.workers = workers
        self.children: dict[int, int] = {}  # pid -> worker number
        self.stopping = False
        self.started_at = time.time()
        self.tls: TLSContexts | None = None

    def run(self) -> int:
        metrics.share_between_processes(self.settings.data_dir / METRICS_DIR)
        open_store(self.settings).db.close_sync()  # migrations, once, before the workers
        sockets = self._bind()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._stop)
        share_with_workers()
        # the workers' TLS contexts, one session-ticket key for all (until a reload)
        self.tls = tls_contexts(self.settings)
        for number in range(self.workers):
            self._spawn(number, sockets)
        ports = {name: int(sock.getsockname()[1]) for name, sock in sockets[0].items()}
        log.info("mss %s serving (%s) with %d workers",
                 __version__, describe_ports(ports), self.workers)  # fmt: skip
        self._watch(sockets)
        for sock in (sock for group in sockets for sock in group.values()):
            sock.close()
        log.info("stopped")
        return 0

    def _bind(self) -> list[dict[str, socket.socket]]:
        """One listening socket per door and per worker, the workers' sockets of a door
        bound to the same port (`SO_REUSEPORT`): the kernel gives each worker its share
        of the new connections. On one shared socket, the worker that woke first
        accepted a whole wave of clients while the other core stayed idle (50 of 50
        connections in `bench smtp --connections 50`). The supervisor keeps them all
        open: the connections sent to a dead worker's socket wait for its successor."""
        host = self.settings.listen.host
        ports = {name: free_port(host, getattr(self.settings.listen, name)) for name in LISTENERS}
        return [
            {name: bind_listening_socket(host, port, spread=True) for name, port in ports.items()}
            for _ in range(self.workers)
        ]

    def _watch(self, sockets: list[dict[str, socket.socket]]) -> None:
        """Wait for the workers; start again one that dies, until told to stop."""
        while self.children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            dead = self.children.pop(pid, None)
            metrics.process_exited(pid)
            if dead is None or self.stopping:
                continue
            log.error("worker %d exited (%s); starting it again", dead + 1, _exit_text(status))
            time.sleep(RESTART_DELAY)
            if not self.stopping:
                self._spawn(dead, sockets)

    def _stop(self, signum: int, _frame: object) -> None:
        self.stopping = True
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def _spawn(self, number: int, sockets: list[dict[str, socket.socket]]) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid:
            self.children[pid] = number
            return
        self._worker(parent, number, sockets[number])

    def _worker(self, parent: int, number: int, sockets: dict[str, socket.socket]) -> None:
        """The forked child: serve as worker `number` until signalled, then exit."""
        code = 0
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_DFL)
            _die_with_parent(parent)
            app = Application(
                self.settings, sockets=sockets, worker=number, workers=self.workers,
                started_at=self.started_at, tls=self.tls,
            )  # fmt: skip
            run_loop(self.settings, _run_until_signalled(app))
        except BaseException:
            log.exception("worker %d failed", number + 1)
            code = 1
        finally:
            logging.shutdown()
            os._exit(code)
