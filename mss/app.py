"""Composition root: builds every component from the settings and runs them.

`cli` calls only this module. Set-up (`init_instance`), the admin operations
behind `mss pro|patient|cert|keys …`, and `serve` (every listener under one
AsyncExitStack, drained in reverse order on SIGINT/SIGTERM) live here; the
components themselves never read the configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import logging
import multiprocessing
import os
import resource
import signal
import socket
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from mss import __version__
from mss.annuaire import importer as annuaire_importer
from mss.annuaire import lookup as annuaire_lookup
from mss.config import CONFIG_FILE, Settings, load_settings
from mss.core.address import InvalidAddress, is_valid_domain, parse_address
from mss.core.identity import InvalidPatient, PatientIdentity, build_patient
from mss.core.trust import WhitelistError, parse_whitelist
from mss.delivery.checks import Checks
from mss.delivery.config import DeliveryConfig
from mss.delivery.deposits import DepositHandler, MdnHandler
from mss.delivery.inbound import Pipeline
from mss.delivery.outbound import RelayHandler, mx_route
from mss.delivery.reports import ReportSender
from mss.delivery.trust import TrustSpace
from mss.dmp import service as dmp_service
from mss.dmp import traces as dmp_traces
from mss.dmp.access import Habilitations
from mss.errors import ConfigError, InputError, MssError
from mss.imap.server import Connection as ImapConnection
from mss.imap.server import ImapListener, limit_tls_read_buffers
from mss.imap.state import ImapConfig, MailboxBus, Session
from mss.security import dkim
from mss.security.auth import Credentials, LoginService
from mss.security.passwords import hash_password
from mss.security.pki import CertificateError, DevPKI
from mss.security.tls import ReloadingContext, client_context, server_context
from mss.security.tokens import BearerValidator
from mss.smtp.handler import MXHandler, SubmissionHandler
from mss.smtp.server import Listener, MssSMTP
from mss.store.accounts import (
    AccountRecord,
    accounts_of_national_id,
    add_account,
    add_patients,
    get_account,
    get_patient,
    set_profile_status,
)
from mss.store.api import Store
from mss.store.blobs import create_key_file, rotate_key_file
from mss.store.changes import LocalFeed, open_feed
from mss.store.models import AccountKind, BalType, ProfileStatus
from mss.store.outbox import SQLOutbox
from mss.store.queue import QueueEntry, drop, list_entries, retry_now
from mss.store.runner import OutboxRunner
from mss.store.trust import replace_whitelist, trusted_domains

__all__ = ["Settings", "annuaire_lookup"]

log = logging.getLogger("mss")

DEFAULT_DATA_DIR = Path("mss-data")
REENCRYPT_INTERVAL = 60.0


# --- set-up ------------------------------------------------------------------------------


def _config_text(hostname: str, domains: Sequence[str]) -> str:
    domain_list = ", ".join(f'"{d}"' for d in domains)
    return f"""\
# mss configuration, written by `mss init`. Every key can be overridden by an
# environment variable MSS_<SECTION>_<KEY> (e.g. MSS_STORAGE_URL).
# Relative paths are relative to server.data_dir (this file's folder).

[server]
data_dir = "."
hostname = "{hostname}"

[domains]
# Professional domains hosted here.
professional = [{domain_list}]
# The patient domain; host_patient_domain = false relays patient mail instead.
patient = "patient.mssante.fr"
host_patient_domain = true

[listen]
host = "127.0.0.1"
mx = 2525
submission = 2587
submissions = 2465
imap = 2143
imaps = 2993
https = 8443

[storage]
# SQLite by default; e.g. "postgresql://mss@db/mss" for PostgreSQL.
url = "sqlite:///mss.db"
key_file = "keys/blob.keys"

[tls]
cert = "certs/server.crt"
key = "certs/server.key"
ca = "certs/ca.crt"
crl = "certs/crl.pem"
min_version = "TLSv1.2"

[dkim]
keys_dir = "dkim"
selector_rsa = "mss-rsa"
selector_ed25519 = "mss-ed"

[limits]
max_message_size = 26214400

[policy]
patient_smtp_login = false
patient_imap_login = false
reply_window_days = 0
# Professional mailboxes of other operators not yet in the annuaire (allowed to write to
# patients, like those `mss annuaire import` loads).
professionals = []

[dmp]
# Lifetime of a professional's authorisation to consult a DMP.
authorization_days = 365
# The "matrice d'habilitation" (TOML); empty: the default shipped with mss.
habilitations = ""

[smtp]
max_recipients = 100
max_line_length = 998
max_header_size = 65536
idle_timeout = 300
data_timeout = 600

[relay]
expire_days = 5
retry_base = 60
retry_max = 3600

[relay.routes]
# "autre-operateur.mssante.fr" = "mx.autre-operateur.mssante.fr:25"

[dns]
# Use the system resolver for MX routes and DKIM keys.
enabled = false

[oauth]
# Bearer tokens (XOAUTH2, OAUTHBEARER), e.g. from Pro Santé Connect.
issuer = ""
jwks_url = ""
jwks_file = ""
audience = ""
"""


@dataclass(frozen=True, slots=True)
class InitReport:
    config: Path
    created: list[str]
    dns_records: list[str]


def init_instance(
    data_dir: Path, domains: Sequence[str], hostname: str | None = None
) -> InitReport:
    """Create a working installation in `data_dir`; idempotent, never overwrites keys."""
    for domain in domains:
        if not is_valid_domain(domain):
            raise InputError(f"--domain {domain!r} is not a domain name")
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / CONFIG_FILE
    created: list[str] = []
    if not config.exists():
        chosen = list(dict.fromkeys(d.lower() for d in domains)) or ["pro.mssante.test"]
        config.write_text(_config_text(hostname or f"mail.{chosen[0]}", chosen))
        created.append(f"configuration {config}")
    settings = load_settings(config)
    if create_key_file(settings.path(settings.storage.key_file)):
        created.append("blob encryption key")
    pki = DevPKI(settings.path(settings.tls.cert).parent)
    created += [
        f"PKI: {item}" for item in pki.ensure(settings.server.hostname, settings.domains.local)
    ]
    records = [dkim.zone_lines(key) for key in dkim_keys(settings)]
    store = Store.open(settings.storage_url, settings.path(settings.storage.key_file))
    store.db.close_sync()
    return InitReport(config, created, records)


def dkim_keys(settings: Settings) -> list[dkim.DKIMKey]:
    """The DKIM keys of every local domain, created when missing."""
    config = settings.dkim
    return [
        key
        for domain in settings.domains.local
        for key in dkim.ensure_keys(
            settings.path(config.keys_dir), domain, config.selector_rsa, config.selector_ed25519
        )
    ]


def load(config: Path | None, data_dir: Path | None = None) -> Settings:
    path = config if config is not None else (data_dir or DEFAULT_DATA_DIR) / CONFIG_FILE
    return load_settings(path)


def open_store(settings: Settings, *, migrate: bool = True) -> Store:
    return Store.open(
        settings.storage_url,
        settings.path(settings.storage.key_file),
        batch_max=settings.storage.batch_max,
        reader_threads=settings.storage.reader_threads,
        migrate=migrate,
    )


@contextlib.contextmanager
def _store(settings: Settings) -> Iterator[Store]:
    store = open_store(settings)
    try:
        yield store
    finally:
        store.db.close_sync()


# --- accounts and patients ---------------------------------------------------------------


def add_professional(
    settings: Settings,
    *,
    address: str,
    password: str | None,
    rpps: str | None = None,
    adeli: str | None = None,
    name: str | None = None,
    bal_type: str = "PER",
) -> str:
    """Create a professional (or applicative) mailbox on a local professional domain."""
    try:
        parsed = parse_address(address)
    except InvalidAddress as exc:
        raise InputError(str(exc)) from None
    if parsed.domain not in settings.domains.professional:
        raise InputError(
            f"{parsed.domain} is not a professional domain of this instance "
            f"({', '.join(settings.domains.professional)})"
        )
    try:
        kind_type = BalType(bal_type.upper())
    except ValueError:
        raise InputError(f"--type {bal_type!r} is not one of PER, ORG, APP, CAB") from None
    national_id = _national_id(rpps, adeli)
    password_hash = None
    if password is not None:
        try:
            password_hash = hash_password(password)
        except ValueError as exc:
            raise InputError(str(exc)) from None
    kind = AccountKind.APPLICATIVE if kind_type is BalType.APP else AccountKind.PROFESSIONAL
    with _store(settings) as store:
        store.db.write_sync(
            lambda tx: add_account(
                tx,
                address=str(parsed),
                kind=kind,
                bal_type=kind_type.value,
                display_name=name,
                password_hash=password_hash,
                national_id=national_id,
            )
        )
    return str(parsed)


def _national_id(rpps: str | None, adeli: str | None) -> str | None:
    if rpps is not None:
        if not (len(rpps) == 11 and rpps.isdigit()):
            raise InputError(f"--rpps {rpps!r} must be 11 digits")
        return "8" + rpps
    if adeli is not None:
        if not (len(adeli) == 9 and adeli.isalnum()):
            raise InputError(f"--adeli {adeli!r} must be 9 characters")
        return "0" + adeli
    return None


def add_patient(settings: Settings, values: dict[str, str | None]) -> PatientIdentity:
    try:
        identity = build_patient(values)
    except InvalidPatient as exc:
        raise InputError(str(exc)) from None
    with _store(settings) as store:
        store.db.write_sync(lambda tx: add_patients(tx, [identity], settings.domains.patient))
    return identity


PATIENT_CSV_REQUIRED = ("ins", "family", "given", "birth_date", "sex")
PATIENT_CSV_OPTIONAL = (
    "birth_place",
    "email",
    "phone",
    "status",
    "oid",
    "identity_status",
    "used_family",
    "used_given",
)


@dataclass(frozen=True, slots=True)
class ImportReport:
    imported: int
    with_mailbox: int
    ignored_columns: list[str]


def read_patient_csv(data: str) -> tuple[list[PatientIdentity], list[str]]:
    """Validate every row of a patient CSV; raise InputError naming the first bad line."""
    first_line = data.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.DictReader(io.StringIO(data), delimiter=delimiter)
    header = [h.strip().lower() for h in reader.fieldnames or []]
    missing = [c for c in PATIENT_CSV_REQUIRED if c not in header]
    if missing:
        raise InputError(
            f"the CSV header lacks {', '.join(missing)} (expected: "
            f"{', '.join(PATIENT_CSV_REQUIRED + PATIENT_CSV_OPTIONAL)})"
        )
    ignored = [h for h in header if h not in PATIENT_CSV_REQUIRED + PATIENT_CSV_OPTIONAL]
    identities: list[PatientIdentity] = []
    for row in reader:
        values = {(k or "").strip().lower(): v for k, v in row.items()}
        try:
            identities.append(build_patient(values))
        except InvalidPatient as exc:
            raise InputError(f"line {reader.line_num}: {exc}") from None
    return identities, ignored


def import_patients(settings: Settings, path: Path) -> ImportReport:
    """Import a CSV of patients in one transaction: all rows or none."""
    try:
        data = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    identities, ignored = read_patient_csv(data)
    with _store(settings) as store:
        store.db.write_sync(lambda tx: add_patients(tx, identities, settings.domains.patient))
    return ImportReport(len(identities), sum(i.has_mailbox for i in identities), ignored)


def set_patient_status(settings: Settings, ins: str, status: str) -> None:
    try:
        chosen = ProfileStatus(status.lower())
    except ValueError:
        raise InputError(f"status {status!r} is not one of active, closed, opposed") from None
    with _store(settings) as store:
        if store.db.read_sync(lambda conn: get_patient(conn, ins.upper())) is None:
            raise InputError(f"no patient with INS {ins}")
        store.db.write_sync(
            lambda tx: set_profile_status(tx, ins.upper(), chosen.value, settings.domains.patient)
        )


# --- the annuaire ----------------------------------------------------------------------------


def import_annuaire(
    settings: Settings, paths: Sequence[Path], progress: annuaire_importer.Progress | None = None
) -> list[annuaire_importer.Summary]:
    """Import national extraction files (each kind replaces its previous extraction)."""
    with _store(settings) as store:
        return annuaire_importer.import_files(store.db, paths, progress)


def search_annuaire(
    settings: Settings, query: annuaire_lookup.Query, *, professionals: bool = False
) -> annuaire_lookup.Page:
    search = annuaire_lookup.search_mailboxes
    if professionals:
        search = annuaire_lookup.search_professionals
    with _store(settings) as store:
        return store.db.read_sync(lambda conn: search(conn, query))


def annuaire_status(settings: Settings) -> list[dict[str, object]]:
    with _store(settings) as store:
        return store.db.read_sync(annuaire_lookup.status)


def verify_dmp_traces(settings: Settings) -> dmp_traces.Verification:
    """Walk the hash chain of the DMP traces."""
    with _store(settings) as store:
        return store.db.read_sync(dmp_traces.verify)


# --- the trust space and the relay queue --------------------------------------------------


def import_whitelist(settings: Settings, path: Path) -> tuple[int, int, int]:
    """Replace the whitelist by the domains of the national XML file: (total, added, removed)."""
    try:
        domains = parse_whitelist(path.read_bytes())
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    except WhitelistError as exc:
        raise InputError(f"{path}: {exc}") from None
    with _store(settings) as store:
        added, removed = store.db.write_sync(lambda tx: replace_whitelist(tx, domains))
    return len(domains), added, removed


def whitelist(settings: Settings) -> list[str]:
    with _store(settings) as store:
        return store.db.read_sync(trusted_domains)


def queue_entries(settings: Settings, *, everything: bool) -> list[QueueEntry]:
    with _store(settings) as store:
        statuses = None if everything else ["queued"]
        return store.db.read_sync(lambda c: list_entries(c, statuses))


def queue_retry(settings: Settings, ids: Sequence[int] | None) -> int:
    """Make queued messages due now; the running server sends them within seconds."""
    with _store(settings) as store:
        return store.db.write_sync(lambda tx: retry_now(tx, ids, int(time.time())))


def queue_drop(settings: Settings, ids: Sequence[int]) -> int:
    with _store(settings) as store:
        return store.db.write_sync(lambda tx: drop(tx, ids, int(time.time())))


# --- certificates and keys ---------------------------------------------------------------


def issue_certificate(settings: Settings, kind: str, args: dict[str, str]) -> tuple[Path, Path]:
    """Issue a dev certificate: professional, applicative, operator or server."""
    pki = DevPKI(settings.path(settings.tls.cert).parent)
    if not pki.exists():
        raise InputError("the dev PKI does not exist here (run `mss init`)")
    try:
        if kind == "professional":
            return pki.issue_professional(
                _national_id(args.get("rpps"), args.get("adeli")) or "",
                args.get("family", "DEV"),
                args.get("given", "Professionnel"),
            )
        if kind == "applicative":
            return pki.issue_applicative(str(parse_address(args["address"])))
        if kind == "operator":
            domains = [d.strip().lower() for d in args["domains"].split(",") if d.strip()]
            if not all(is_valid_domain(d) for d in domains) or not is_valid_domain(
                args["hostname"]
            ):
                raise InputError("operator certificates need valid host and domain names")
            return pki.issue_operator(args["hostname"], domains)
    except (CertificateError, InvalidAddress) as exc:
        raise InputError(str(exc)) from None
    raise InputError(f"unknown certificate kind {kind!r}")


def revoke_certificate(settings: Settings, cert: Path) -> int:
    pki = DevPKI(settings.path(settings.tls.cert).parent)
    try:
        return pki.revoke(cert)
    except (CertificateError, OSError, ValueError) as exc:
        raise InputError(f"cannot revoke {cert}: {exc}") from None


def rotate_blob_key(settings: Settings) -> str:
    return rotate_key_file(settings.path(settings.storage.key_file))


# --- serve -------------------------------------------------------------------------------


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
    ) -> None:
        self.settings = settings
        self.sockets = sockets or {}
        self.worker = worker
        self.workers = workers
        self.store: Store | None = None
        self.mail: Mail | None = None
        self.imap_bus: MailboxBus | None = None
        self.feed: LocalFeed | None = None
        self.imap_listeners: list[ImapListener] = []
        self.started_at = time.time()
        self.ports: dict[str, int] = {}

    async def health(self) -> dict[str, str]:
        assert self.store is not None
        try:
            await self.store.read(lambda conn: conn.execute(text("SELECT 1")).scalar())
        except MssError as exc:
            return {"database": f"error: {exc}"}
        return {"database": "ok"}

    def metrics(self) -> str:
        assert self.store is not None
        db = self.store.db
        lines = [
            "# TYPE mss_uptime_seconds gauge",
            f"mss_uptime_seconds {time.time() - self.started_at:.0f}",
            "# TYPE mss_store_commit_batches_total counter",
            f"mss_store_commit_batches_total {db.batches}",
            "# TYPE mss_store_committed_writes_total counter",
            f"mss_store_committed_writes_total {db.batched_jobs}",
        ]
        return "\n".join(lines) + "\n"

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
                reencrypt = asyncio.create_task(self._reencrypt_loop(), name="blob-reencrypt")
                stack.callback(reencrypt.cancel)
            if self.workers > 1:
                log.info("worker %d of %d ready", self.worker + 1, self.workers)
            else:
                log.info("mss %s serving (%s)", __version__, _describe_ports(self.ports))
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
        mail = build_mail(self.settings, self.store, cpu_pool, self.sockets)
        self.feed.subscribe(mail.runner.on_change)
        await mail.trust.refresh()
        self.mail = mail
        for name, coroutine in (
            ("trust-refresh", mail.trust.keep_fresh()),
            ("outbox", mail.runner.run()),
            ("tls-refresh", mail.keep_tls_fresh()),
        ):
            task = asyncio.create_task(coroutine, name=name)
            stack.callback(task.cancel)
        for listener in mail.listeners:
            await listener.start()
            stack.push_async_callback(listener.stop)
            self.ports[listener.name] = listener.port

    async def _start_imap(self, stack: AsyncExitStack) -> None:
        assert self.store is not None and self.mail is not None
        limit_tls_read_buffers()
        bus = MailboxBus()
        self.imap_bus = bus
        assert self.feed is not None
        store = self.store
        self.feed.subscribe(lambda change: bus.on_change(change, store))
        config = ImapConfig(
            hostname=self.settings.server.hostname,
            allow_patients=self.settings.policy.patient_imap_login,
            max_message_size=self.settings.limits.max_message_size,
        )
        store, logins = self.store, self.mail.logins

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
            )  # fmt: skip
            await listener.start()
            stack.push_async_callback(listener.stop)
            self.ports[name] = listener.port
            self.imap_listeners.append(listener)

    async def _start_web(self, stack: AsyncExitStack) -> None:
        from mss.web.app import create_asgi
        from mss.web.dmp import DMPGateway
        from mss.web.server import WebServer

        tls = self.settings.tls
        path = self.settings.path
        ctx = server_context(
            path(tls.cert), path(tls.key), ca=path(tls.ca), crl=path(tls.crl),
            client_cert="optional", min_version=tls.min_version,
        )  # fmt: skip
        assert self.store is not None and self.mail is not None
        gateway = DMPGateway(
            store=self.store, settings=dmp_settings(self.settings), logins=self.mail.logins,
            bearer=_bearer_validator(self.settings), patient_domain=self.settings.domains.patient,
        )  # fmt: skip
        app = create_asgi(
            health=self.health, metrics=self.metrics, version=__version__,
            read=self.store.db.read_fast, dmp=gateway,
        )  # fmt: skip
        web = WebServer(
            app, self.settings.listen.host, self.settings.listen.https, ctx,
            self.sockets.get("https"),
        )  # fmt: skip
        await web.start()
        stack.push_async_callback(web.stop)
        self.ports["https"] = web.port

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


def _credentials(account: AccountRecord) -> Credentials:
    return Credentials(
        address=account.address,
        kind=account.kind,
        national_id=account.national_id,
        disabled=account.disabled,
        password_hash=account.password_hash,
        display_name=account.display_name,
    )


@dataclass
class Mail:
    """The mail path of one process: pipeline, relay runner, listeners."""

    trust: TrustSpace
    pipeline: Pipeline
    logins: LoginService
    runner: OutboxRunner
    listeners: list[Listener]
    tls: list[ReloadingContext]

    async def refresh_tls(self) -> bool:
        """Pick up a renewed certificate or a new CRL; True if anything changed."""
        changed = [ctx.refresh() for ctx in self.tls]
        if changed[0]:
            for listener in self.listeners:
                await listener.reload(self.tls[0].current)
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
        max_header_size=settings.smtp.max_header_size,
        reject_dkim_failures=settings.dkim.on_verify_failure == "reject",
        relay_expire_days=settings.relay.expire_days,
    )


def _bearer_validator(settings: Settings) -> BearerValidator | None:
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


def build_mail(
    settings: Settings,
    store: Store,
    cpu_pool: Executor | None = None,
    sockets: dict[str, socket.socket] | None = None,
) -> Mail:
    """Build the mail path from the settings (listeners not started yet)."""
    shared = sockets or {}
    config = delivery_config(settings)
    trust = TrustSpace(store, settings.domains.local)
    keys = dkim_keys(settings)
    lookup = dkim.StaticTXT.from_file(
        settings.path(settings.dkim.records_file),
        fallback=dkim.dns_txt if settings.dns.enabled else None,
    )
    reports = ReportSender(store, trust, config)
    pipeline = Pipeline(
        store, Checks(store, trust, config), config, reports, dkim_lookup=lookup, cpu_pool=cpu_pool
    )
    logins = LoginService(StoreCredentials(store), bearer=_bearer_validator(settings))
    tls = settings.tls
    cert, key, ca, crl = (settings.path(p) for p in (tls.cert, tls.key, tls.ca, tls.crl))
    watched = [cert, key, ca, crl]
    relay_tls = ReloadingContext(
        lambda: client_context(ca=ca, cert=cert, key=key, crl=crl, min_version=tls.min_version),
        watched,
    )
    server_tls = ReloadingContext(
        lambda: server_context(
            cert, key, ca=ca, crl=crl, client_cert="optional", min_version=tls.min_version
        ),
        watched,
    )
    relay = RelayHandler(
        store, reports, dkim.DKIMSigner(keys), lambda: relay_tls.current,
        hostname=settings.server.hostname, route=settings.relay.route,
        mx_lookup=mx_route if settings.dns.enabled else None,
        retry_base=settings.relay.retry_base, retry_max=settings.relay.retry_max,
        expire_days=settings.relay.expire_days, timeout=settings.relay.connect_timeout,
        concurrency=settings.relay.concurrency,
    )  # fmt: skip
    mdn = MdnHandler(
        store, reports, hostname=settings.server.hostname, patient_domain=settings.domains.patient
    )
    runner = OutboxRunner(
        SQLOutbox(store.db), [relay, DepositHandler(store), mdn], owner=store.db.process_token
    )
    mx_handler = MXHandler(pipeline)
    submission_handler = SubmissionHandler(
        pipeline, logins, allow_patients=settings.policy.patient_smtp_login
    )
    listen = settings.listen

    def protocol(
        handler: object, *, submission: bool, implicit: bool
    ) -> Callable[[Callable[[MssSMTP], None]], MssSMTP]:
        def make(on_lost: Callable[[MssSMTP], None]) -> MssSMTP:
            return MssSMTP(
                handler,
                on_lost=on_lost,
                max_recipients=settings.smtp.max_recipients,
                max_line_length=settings.smtp.max_line_length,
                data_timeout=settings.smtp.data_timeout,
                implicit_tls=implicit,
                hostname=settings.server.hostname,
                ident="mss ESMTP",
                tls_context=None if implicit else server_tls.current,
                require_starttls=not implicit,
                timeout=settings.smtp.idle_timeout,
                data_size_limit=settings.limits.max_message_size,
                enable_SMTPUTF8=True,
                auth_required=submission,
                auth_require_tls=not implicit,
                auth_exclude_mechanism=None if submission else ["PLAIN", "LOGIN"],
                loop=asyncio.get_running_loop(),
            )

        return make

    listeners = [
        Listener("mx", listen.host, listen.mx,
                 protocol(mx_handler, submission=False, implicit=False), None,
                 sock=shared.get("mx")),
        Listener("submission", listen.host, listen.submission,
                 protocol(submission_handler, submission=True, implicit=False), None,
                 sock=shared.get("submission")),
        Listener("submissions", listen.host, listen.submissions,
                 protocol(submission_handler, submission=True, implicit=True), server_tls.current,
                 sock=shared.get("submissions")),
    ]  # fmt: skip
    return Mail(trust, pipeline, logins, runner, listeners, [server_tls, relay_tls])


LISTENERS = ("mx", "submission", "submissions", "imap", "imaps", "https")


def _describe_ports(ports: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in ports.items())


def serve(settings: Settings) -> int:
    """Run until SIGINT or SIGTERM, then drain and return 0.

    With `server.workers` above 1 (by default: one per core), a supervisor binds
    the listening sockets, forks the workers, restarts one that dies, and
    passes SIGINT/SIGTERM on to them.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:  # thousands of IMAP IDLE sessions need thousands of descriptors
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    workers = settings.server.worker_count
    if workers > 1:
        return Supervisor(settings, workers).run()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await Application(settings).run(stop)

    asyncio.run(main())
    return 0


def bind_listening_socket(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(4096)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise MssError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


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
    """The parent of the worker processes: sockets, forks, restarts, signals.

    It runs the migrations and binds every listening socket once, then forks
    (before any thread or event loop exists in this process). A worker that
    dies is started again a second later; SIGINT or SIGTERM is passed on to
    the workers, which drain their connections and exit.
    """

    def __init__(self, settings: Settings, workers: int) -> None:
        self.settings = settings
        self.workers = workers
        self.children: dict[int, int] = {}  # pid -> worker number
        self.stopping = False

    def run(self) -> int:
        open_store(self.settings).db.close_sync()  # migrations, once, before the workers
        listen = self.settings.listen
        sockets = {name: bind_listening_socket(listen.host, getattr(listen, name))
                   for name in LISTENERS}  # fmt: skip
        ports = {name: int(sock.getsockname()[1]) for name, sock in sockets.items()}
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._stop)
        for number in range(self.workers):
            self._spawn(number, sockets)
        log.info(
            "mss %s serving (%s) with %d workers",
            __version__, _describe_ports(ports), self.workers,
        )  # fmt: skip
        while self.children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            dead = self.children.pop(pid) if pid in self.children else None
            if dead is None or self.stopping:
                continue
            log.error("worker %d exited (%s); starting it again", dead + 1, _exit_text(status))
            time.sleep(1.0)
            if not self.stopping:
                self._spawn(dead, sockets)
        for sock in sockets.values():
            sock.close()
        log.info("stopped")
        return 0

    def _stop(self, signum: int, _frame: object) -> None:
        self.stopping = True
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def _spawn(self, number: int, sockets: dict[str, socket.socket]) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid:
            self.children[pid] = number
            return
        code = 0
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_DFL)
            _die_with_parent(parent)
            settings, workers = self.settings, self.workers

            async def main() -> None:
                stop = asyncio.Event()
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(sig, stop.set)
                app = Application(settings, sockets=sockets, worker=number, workers=workers)
                await app.run(stop)

            asyncio.run(main())
        except BaseException:
            log.exception("worker %d failed", number + 1)
            code = 1
        finally:
            logging.shutdown()
            os._exit(code)
