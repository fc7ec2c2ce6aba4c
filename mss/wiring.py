"""The builders of the composition root: each reads its part of the settings and
builds a component, or the plain values a component is given.

`build_mail` assembles the mail path of one process (pipeline, the outbox runner and
its handlers, login service, TLS contexts, the SMTP doors); `app.Application` starts it.
No component reads the settings itself.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp

from mss.config import Settings
from mss.delivery.checks import Checks
from mss.delivery.config import DeliveryConfig
from mss.delivery.deposits import DepositHandler, MdnHandler
from mss.delivery.inbound import Pipeline
from mss.delivery.outbound import RelayHandler, mx_route
from mss.delivery.reports import ReportSender
from mss.delivery.trust import TrustSpace
from mss.dmp import service as dmp_service
from mss.dmp.access import Habilitations
from mss.errors import ConfigError
from mss.instance import dkim_keys, quota
from mss.security import dkim
from mss.security.auth import Credentials, LoginService
from mss.security.proxy_protocol import ProxyPolicy
from mss.security.tls import ReloadingContext, client_context, server_context
from mss.security.tokens import BearerValidator
from mss.smtp.doors import SmtpOptions, smtp_listeners
from mss.smtp.handler import MXHandler, SubmissionHandler
from mss.smtp.server import Listener
from mss.store import login_throttle as throttle
from mss.store.accounts import AccountRecord, accounts_of_national_id, get_account
from mss.store.api import Store
from mss.store.login_throttle import Admission, LoginLimits
from mss.store.outbox import SQLOutbox
from mss.store.ports import Handler
from mss.store.runner import OutboxRunner
from mss.wiring_notify import notify_parts, return_path, vapid_public_key

log = logging.getLogger("mss")


class StoreCredentials:
    """The accounts table as the login service sees it."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def by_address(self, address: str) -> Credentials | None:
        account = await self._store.read_fast(lambda c: get_account(c, address))
        return None if account is None else _credentials(account)

    async def by_national_id(self, national_id: str) -> list[Credentials]:
        accounts = await self._store.read(lambda c: accounts_of_national_id(c, national_id))
        return [_credentials(a) for a in accounts]


class StoreLedger:
    """The login throttle's counters in the store (`store.login_throttle`), shared by the
    processes; each one purges the finished windows every few minutes at a login."""

    PURGE_EVERY = 300

    def __init__(self, store: Store, limits: LoginLimits | None = None) -> None:
        self._store = store
        self._limits = limits or LoginLimits()
        self._purged = 0

    async def admit(self, account: str | None, ip: str | None) -> Admission:
        now, limits = int(time.time()), self._limits
        if now - self._purged >= self.PURGE_EVERY:
            self._purged = now
            await self._store.write(lambda tx: throttle.purge_logins(tx, now, limits))
        return await self._store.write(lambda tx: throttle.admit(tx, account, ip, now, limits))

    async def succeeded(self, account: str | None, ip: str | None, admission: Any) -> None:
        assert isinstance(admission, Admission)
        now, limits = int(time.time()), self._limits
        await self._store.write(
            lambda tx: throttle.succeeded(tx, account, ip, admission, now, limits)
        )

    async def held(self, account: str, ip: str | None) -> bool:
        now, limits = int(time.time()), self._limits
        return await self._store.read_fast(lambda c: throttle.held(c, account, ip, now, limits))


def _credentials(account: AccountRecord) -> Credentials:
    return Credentials(
        address=account.address, kind=account.kind, national_id=account.national_id,
        disabled=account.disabled, password_hash=account.password_hash,
        display_name=account.display_name,
    )  # fmt: skip


@dataclass
class Mail:
    """The mail path of one process: pipeline, outbox runner, listeners."""

    trust: TrustSpace
    pipeline: Pipeline
    logins: LoginService
    runner: OutboxRunner
    listeners: list[Listener]
    tls: list[ReloadingContext]
    closers: list[Callable[[], Awaitable[None]]]  # the channels' connection pools

    async def refresh_tls(self) -> bool:
        """Pick up a renewed certificate or a new CRL; True if anything changed."""
        changed = [ctx.refresh() for ctx in self.tls]  # every door reads `current` per connection
        return any(changed)

    async def keep_tls_fresh(self, interval: float = 60.0) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                if await self.refresh_tls():
                    log.info("TLS certificates or CRLs changed: new connections use them")
            except (OSError, ssl.SSLError):
                log.exception("cannot reload the TLS files; keeping the previous ones")


def delivery_config(settings: Settings) -> DeliveryConfig:
    return DeliveryConfig(
        hostname=settings.server.hostname,
        professional_domains=settings.domains.professional,
        patient_domain=settings.domains.patient,
        host_patient_domain=settings.domains.host_patient_domain,
        remote_professionals=frozenset(a.lower() for a in settings.policy.professionals),
        reply_window_days=settings.policy.reply_window_days,
        new_message_to_professionals=settings.policy.new_message_to_professionals,
        max_header_size=settings.smtp.max_header_size,
        reject_dkim_failures=settings.dkim.on_verify_failure == "reject",
        relay_expire_days=settings.relay.expire_days,
        notify_return_path=return_path(settings),
        quota=quota(settings),
    )


def bearer_validator(settings: Settings) -> BearerValidator | None:
    oauth = settings.oauth
    if not oauth.issuer:
        return None
    return BearerValidator(
        issuer=oauth.issuer,
        audience=oauth.audience or None,
        jwks_file=settings.path(Path(oauth.jwks_file)) if oauth.jwks_file else None,
        jwks_url=oauth.jwks_url or None,
        address_claim=oauth.address_claim,
        national_id_claim=oauth.national_id_claim,
    )


def dmp_settings(settings: Settings) -> dmp_service.Settings:
    path = settings.dmp.habilitations
    try:
        matrix = Habilitations.load(settings.path(Path(path)) if path else None)
    except (OSError, ValueError) as exc:
        raise ConfigError("dmp.habilitations", f"cannot load {path}: {exc}") from None
    return dmp_service.Settings(settings.dmp.authorization_days, matrix)


def cpu_workers(settings: Settings) -> Executor | None:
    """Worker processes for CPU-heavy checks (DKIM), one per core beyond the first."""
    count = settings.server.cpu_workers
    if count < 0:
        count = max(0, (os.cpu_count() or 1) - 1)
    if count == 0:
        return None
    # spawn: the server process has threads (writer, readers) that fork must not copy
    return ProcessPoolExecutor(count, mp_context=multiprocessing.get_context("spawn"))


TLSContexts = tuple[ReloadingContext, ReloadingContext]


def tls_contexts(settings: Settings) -> TLSContexts:
    """The doors' server context and the relay's client context, reloaded on change.

    `mss serve` with workers builds them once, before forking, so that every worker
    holds the same contexts, and with them the same key for TLS session tickets: a
    client that reconnects resumes its session with whichever worker the kernel hands
    the connection to (a context built in each worker has its own key, and the ticket
    of one worker is refused by the other). A reloaded context (renewed certificate,
    new CRL) has a new key: tickets issued before are refused, and the next handshake
    is a full one, checked against the new files. Each worker reloads on its own, so
    after a reload the workers' keys differ again until the next start: a session then
    resumes only on the worker that issued it."""
    tls = settings.tls
    cert, key, ca, crl = (settings.path(p) for p in (tls.cert, tls.key, tls.ca, tls.crl))
    watched = [cert, key, ca, crl]
    server_tls = ReloadingContext(
        lambda: server_context(
            cert, key, ca=ca, crl=crl, client_cert="optional", min_version=tls.min_version
        ),
        watched,
    )
    relay_tls = ReloadingContext(
        lambda: client_context(
            ca=ca, cert=cert, key=key, crl=crl, min_version=tls.min_version, resume=True
        ),
        watched,
    )
    return server_tls, relay_tls


def _relay_handler(
    settings: Settings, store: Store, reports: ReportSender, relay_tls: ReloadingContext
) -> RelayHandler:
    return RelayHandler(
        store, reports, dkim.DKIMSigner(dkim_keys(settings)), lambda: relay_tls.current,
        hostname=settings.server.hostname, route=settings.relay.route,
        mx_lookup=mx_route if settings.dns.enabled else None,
        retry_base=settings.relay.retry_base, retry_max=settings.relay.retry_max,
        expire_days=settings.relay.expire_days, timeout=settings.relay.connect_timeout,
        concurrency=settings.relay.concurrency,
    )  # fmt: skip


def _outbox_runner(
    settings: Settings, store: Store, reports: ReportSender, relay_tls: ReloadingContext
) -> tuple[OutboxRunner, list[Callable[[], Awaitable[None]]]]:
    """One runner for every after-commit duty: relay, DMP deposits, MDNs, notifications."""
    relay = _relay_handler(settings, store, reports, relay_tls)
    mdn = MdnHandler(
        store, reports, hostname=settings.server.hostname, patient_domain=settings.domains.patient
    )
    notify = notify_parts(settings, store)
    deposits = DepositHandler(
        store, patient_domain=settings.domains.patient,
        max_documents=settings.limits.max_documents_per_mail,
    )  # fmt: skip
    handlers: list[Handler] = [relay, deposits, mdn, *notify.handlers]
    runner = OutboxRunner(SQLOutbox(store.db), handlers, owner=store.db.process_token)
    return runner, notify.closers


def _smtp_doors(
    settings: Settings, pipeline: Pipeline, logins: LoginService, server_tls: ReloadingContext,
    sockets: dict[str, socket.socket],
) -> list[Listener]:  # fmt: skip
    submission = SubmissionHandler(
        pipeline, logins, allow_patients=settings.policy.patient_smtp_login
    )
    smtp, listen = settings.smtp, settings.listen
    options = SmtpOptions(
        hostname=settings.server.hostname, max_recipients=smtp.max_recipients,
        max_line_length=smtp.max_line_length, max_message_size=settings.limits.max_message_size,
        idle_timeout=smtp.idle_timeout, data_timeout=smtp.data_timeout,
    )  # fmt: skip
    ports = {"mx": listen.mx, "submission": listen.submission, "submissions": listen.submissions}
    return smtp_listeners(MXHandler(pipeline), submission, options, lambda: server_tls.current,
                          host=listen.host, ports=ports, sockets=sockets,
                          proxy=proxy_policy(settings))  # fmt: skip


def proxy_policy(settings: Settings) -> ProxyPolicy:
    """The load balancers allowed to (and required to) send a PROXY header."""
    return ProxyPolicy.parse(settings.server.proxy_from)


def build_mail(
    settings: Settings,
    store: Store,
    cpu_pool: Executor | None = None,
    sockets: dict[str, socket.socket] | None = None,
    tls: TLSContexts | None = None,
) -> Mail:
    """Build the mail path from the settings (listeners not started yet); `tls`: the
    contexts `tls_contexts` built before the workers were forked, if any."""
    config = delivery_config(settings)
    trust = TrustSpace(store, settings.domains.local)
    lookup = dkim.StaticTXT.from_file(
        settings.path(settings.dkim.records_file),
        fallback=dkim.dns_txt if settings.dns.enabled else None,
    )
    reports = ReportSender(store, trust, config)
    pipeline = Pipeline(
        store, Checks(store, trust, config), config, reports, dkim_lookup=lookup, cpu_pool=cpu_pool
    )
    logins = LoginService(
        StoreCredentials(store), StoreLedger(store), bearer=bearer_validator(settings)
    )
    server_tls, relay_tls = tls if tls is not None else tls_contexts(settings)
    runner, closers = _outbox_runner(settings, store, reports, relay_tls)
    listeners = _smtp_doors(settings, pipeline, logins, server_tls, sockets or {})
    return Mail(trust, pipeline, logins, runner, listeners, [server_tls, relay_tls], closers)


def build_space(settings: Settings, store: Store, mail: Mail) -> ASGIApp:
    """The patient space (`/espace/`), with the values of the settings it uses."""
    from mss.space.app import create_space
    from mss.space.deps import SpaceDeps

    space = settings.space
    deps = SpaceDeps(
        store=store, logins=mail.logins, patient_domain=settings.domains.patient,
        pipeline=mail.pipeline, idle_timeout=space.idle_timeout,
        absolute_timeout=space.absolute_timeout, code_minutes=space.code_minutes,
        attachment_max=space.attachment_max,
        new_message_to_professionals=settings.policy.new_message_to_professionals,
        vapid_public_key=vapid_public_key(settings), service_name=settings.notify.service_name,
        dmp_settings=dmp_settings(settings),
    )  # fmt: skip
    return create_space(deps)
