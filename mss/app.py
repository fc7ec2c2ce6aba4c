"""Composition root: runs every component of one `mss serve` process.

`Application` reads the settings once and starts the mail path (built by `wiring`),
the IMAP listeners and the web server under one AsyncExitStack, then drains them in
reverse order on stop. The components never read the configuration. Set-up is in
`instance`, the admin operations in `admin`, the worker processes in `supervisor`,
the command in `cli`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from typing import Any

from mss import __version__
from mss.config import Settings
from mss.dmp import traces_head
from mss.errors import MssError
from mss.imap.base import ImapConfig
from mss.imap.bus import MailboxBus
from mss.imap.server import Connection as ImapConnection
from mss.imap.server import ImapListener
from mss.imap.state import Session
from mss.instance import client_domains, mail_service, open_store, quota
from mss.metrics import Family, exposition
from mss.security.tls_transport import share_read_buffers
from mss.store import notify as notes
from mss.store import outbox
from mss.store.api import Store
from mss.store.changes import LocalFeed, open_feed
from mss.store.imapstore import ImapStore
from mss.web.metrics import notify_families, outbox_families
from mss.wiring import (
    Mail,
    TLSContexts,
    bearer_validator,
    build_mail,
    build_space,
    cpu_workers,
    dmp_settings,
    proxy_policy,
)

log = logging.getLogger("mss")

REENCRYPT_INTERVAL = 60.0
# The database's integrity is read in the background (each worker answers /healthz)
INTEGRITY_FIRST = 30.0
INTEGRITY_INTERVAL = 3600.0


def preload() -> None:
    """Import what an Application imports only when it starts (the web server, the
    patient space): a supervisor does it once before forking, so that its workers
    share these pages instead of each loading its own copy."""
    import mss.space.app
    import mss.space.deps
    import mss.web.app
    import mss.web.autoconfig
    import mss.web.dmp
    import mss.web.server  # noqa: F401


def describe_ports(ports: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in ports.items())


def _background(stack: AsyncExitStack, coroutine: Coroutine[Any, Any, None], name: str) -> None:
    """Run `coroutine` as a task, cancelled when `stack` closes."""
    task = asyncio.create_task(coroutine, name=name)
    stack.callback(task.cancel)


class Application:
    """Every running component of one `mss serve` process (or of one of its workers).

    Alone, it binds its listeners itself. As worker `worker` of `workers`, it
    serves on the listening sockets the supervisor bound before forking (the
    kernel hands each new connection to one worker), and learns of the other
    workers' changes to watched mailboxes by LISTEN/NOTIFY (PostgreSQL) or by
    looking for new commits ten times a second (SQLite).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        sockets: dict[str, socket.socket] | None = None,
        worker: int = 0,
        workers: int = 1,
        started_at: float | None = None,
        tls: TLSContexts | None = None,
    ) -> None:
        self.settings = settings
        self.tls = tls  # built by the supervisor before forking (`wiring.tls_contexts`)
        self.sockets = sockets or {}
        self.worker = worker
        self.workers = workers
        self.store: Store | None = None
        self.mail: Mail | None = None
        self.imap_bus: MailboxBus | None = None
        self.feed: LocalFeed | None = None
        self.imap_listeners: list[ImapListener] = []
        self.started_at = time.time() if started_at is None else started_at  # the server's
        self.ports: dict[str, int] = {}
        self.space: Any = None  # the patient space's ASGI app, once HTTPS is up
        self._traces_head: traces_head.Head | None = None  # the last head written
        self.integrity = "ok"  # the last integrity check's finding ("ok" until one says not)

    async def health(self) -> dict[str, str]:
        assert self.store is not None
        try:
            await self.store.ping()
        except MssError as exc:
            return {"database": f"error: {exc}"}
        if self.integrity != "ok":
            return {"database": f"endommagée (damaged): {self.integrity}"}
        return {"database": "ok"}

    async def check_integrity(self) -> str:
        """Read the whole database for damage (`Store.integrity`); /healthz says it."""
        assert self.store is not None
        self.integrity = await self.store.integrity()
        if self.integrity != "ok":
            log.error("the database is damaged: %s", self.integrity)
        return self.integrity

    async def _integrity_loop(self) -> None:
        await asyncio.sleep(INTEGRITY_FIRST)
        while True:
            await self.check_integrity()
            await asyncio.sleep(INTEGRITY_INTERVAL)

    async def metrics(self) -> str:
        """The processes' metrics, summed, and what the database says at this scrape."""
        assert self.store is not None
        stats = await self.store.read(outbox.stats)
        day = int(time.time()) - 86400
        notices = await self.store.read(lambda c: notes.channel_stats(c, day))
        lags = await self.store.read(lambda c: notes.sent_lags(c, day))
        started = Family("mss_start_time_seconds", "When the server started (Unix time).", [])
        return exposition(
            [
                started.add([], round(self.started_at)),
                *outbox_families(stats, time.time()),
                *notify_families(notices, lags),
            ]
        ).decode()

    async def run(
        self, stop: asyncio.Event, ready: Callable[[dict[str, int]], None] | None = None
    ) -> None:
        async with AsyncExitStack() as stack:
            self.store = open_store(self.settings)
            self.store.start()
            stack.push_async_callback(self.store.close)
            self.feed = open_feed(self.store.db, shared=self.workers > 1)
            await self.feed.start()
            stack.push_async_callback(self.feed.stop)
            await self._start_mail(stack)
            await self._start_imap(stack)
            await self._start_web(stack)
            if self.worker == 0:  # background duties: one worker is enough
                _background(stack, self._reencrypt_loop(), "blob-reencrypt")
                _background(stack, self._traces_head_loop(), "traces-head")
                stack.push_async_callback(self.keep_traces_head)
            _background(stack, self._integrity_loop(), "integrity-check")
            loop_kind = type(asyncio.get_running_loop()).__module__.split(".")[0]
            if self.workers > 1:
                log.info("worker %d of %d ready on %s", self.worker + 1, self.workers, loop_kind)
            else:
                log.info("mss %s serving (%s) on %s",
                         __version__, describe_ports(self.ports), loop_kind)  # fmt: skip
            if ready is not None:
                ready(self.ports)
            await stop.wait()
            log.info("stopping: draining listeners")
        log.info("stopped")

    async def _start_mail(self, stack: AsyncExitStack) -> None:
        assert self.store is not None
        cpu_pool = cpu_workers(self.settings) if self.workers == 1 else None
        if cpu_pool is not None:
            stack.callback(cpu_pool.shutdown, wait=False, cancel_futures=True)
        assert self.feed is not None
        for context in self.tls or ():  # a worker started again: files changed since
            context.refresh()  # the supervisor built them; before the first connection
        mail = build_mail(self.settings, self.store, cpu_pool, self.sockets, self.tls)
        for close in mail.closers:
            stack.push_async_callback(close)
        self.feed.subscribe(mail.runner.on_change)
        await mail.trust.refresh()
        self.mail = mail
        _background(stack, mail.trust.keep_fresh(), "trust-refresh")
        _background(stack, mail.runner.run(), "outbox")
        _background(stack, mail.keep_tls_fresh(), "tls-refresh")
        for listener in mail.listeners:
            await listener.start()
            stack.push_async_callback(listener.stop)
            self.ports[listener.name] = listener.port

    async def _start_imap(self, stack: AsyncExitStack) -> None:
        assert self.store is not None and self.mail is not None
        share_read_buffers()
        bus = MailboxBus()
        self.imap_bus = bus
        assert self.feed is not None
        store, logins = ImapStore(self.store, quota(self.settings)), self.mail.logins
        self.feed.subscribe(lambda change: bus.on_change(change, store.marks))
        config = ImapConfig(
            hostname=self.settings.server.hostname,
            allow_patients=self.settings.policy.patient_imap_login,
            max_message_size=self.settings.limits.max_message_size,
        )

        def session(connection: ImapConnection) -> Session:
            return Session(connection, store, logins, bus, config)

        tls = self.mail.tls[0]
        literal_limit = self.settings.limits.max_message_size
        for name, port, implicit in (
            ("imap", self.settings.listen.imap, False),
            ("imaps", self.settings.listen.imaps, True),
        ):
            listener = ImapListener(
                name, self.settings.listen.host, port, session,
                implicit_tls=(lambda: tls.current) if implicit else None,
                starttls=None if implicit else (lambda: tls.current),
                literal_limit=literal_limit, sock=self.sockets.get(name),
                proxy=proxy_policy(self.settings),
            )  # fmt: skip
            await listener.start()
            stack.push_async_callback(listener.stop)
            self.ports[name] = listener.port
            self.imap_listeners.append(listener)

    async def _start_web(self, stack: AsyncExitStack) -> None:
        from mss.web.app import create_asgi
        from mss.web.autoconfig import ClientSetup
        from mss.web.dmp import DMPGateway
        from mss.web.server import WebServer

        assert self.store is not None and self.mail is not None
        # the doors' context, taken for each connection: renewed certificates and new
        # CRLs as the doors see them (`Mail.keep_tls_fresh`); shared by the workers
        # until the first reload, hence their session tickets (`wiring.tls_contexts`)
        tls = self.mail.tls[0]
        gateway = DMPGateway(
            store=self.store, settings=dmp_settings(self.settings), logins=self.mail.logins,
            bearer=bearer_validator(self.settings), patient_domain=self.settings.domains.patient,
        )  # fmt: skip
        space = self.space = build_space(self.settings, self.store, self.mail)
        app = create_asgi(
            health=self.health, metrics=self.metrics, version=__version__,
            read=self.store.db.read_fast, dmp=gateway, space=space,
            clients=ClientSetup(mail_service(self.settings, self.ports),
                                client_domains(self.settings)),
        )  # fmt: skip
        web = WebServer(
            app, self.settings.listen.host, self.settings.listen.https, lambda: tls.current,
            self.sockets.get("https"), proxy=proxy_policy(self.settings),
        )  # fmt: skip
        await web.start()
        stack.push_async_callback(web.stop)
        self.ports["https"] = web.port

    async def keep_traces_head(self) -> None:
        """Write the DMP traces' head beside the data and log it, when it moved
        (`dmp/traces_head.py` says why periodically, and what the log line is for)."""
        assert self.store is not None
        try:
            head = await self.store.read(traces_head.current)
        except MssError:
            log.exception("the DMP traces head could not be read")
            return
        if head is None or head == self._traces_head:
            return
        try:
            traces_head.advance(self.settings.data_dir / traces_head.HEAD_FILE, head)
        except OSError:
            log.exception("the DMP traces head file could not be written")
        self._traces_head = head
        log.info("DMP traces head %s", head)

    async def _traces_head_loop(self) -> None:
        while True:
            await self.keep_traces_head()
            await asyncio.sleep(traces_head.HEAD_INTERVAL)

    async def _reencrypt_loop(self) -> None:
        assert self.store is not None
        while True:
            await asyncio.sleep(REENCRYPT_INTERVAL)
            try:
                moved = await self.store.reencrypt_some()
            except MssError:
                log.exception("blob re-encryption failed")
                continue
            if moved:
                log.info("re-encrypted %d blobs under key %s", moved, self.store.blobs.current_key)
