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
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from mss import __version__
from mss.bench import store as bench_store
from mss.config import CONFIG_FILE, Settings, load_settings
from mss.core.address import InvalidAddress, is_valid_domain, parse_address
from mss.core.identity import InvalidPatient, PatientIdentity, build_patient
from mss.errors import InputError, MssError
from mss.security import dkim
from mss.security.passwords import hash_password
from mss.security.pki import CertificateError, DevPKI
from mss.security.tls import server_context
from mss.store.accounts import add_account, add_patients, get_patient, set_profile_status
from mss.store.api import Store
from mss.store.blobs import create_key_file, rotate_key_file
from mss.store.models import AccountKind, BalType, ProfileStatus

__all__ = ["Settings", "bench_store"]

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
    records: list[str] = []
    for domain in settings.domains.local:
        for key in dkim.ensure_keys(
            settings.path(settings.dkim.keys_dir),
            domain,
            settings.dkim.selector_rsa,
            settings.dkim.selector_ed25519,
        ):
            records.append(dkim.zone_lines(key))
    store = Store.open(settings.storage_url, settings.path(settings.storage.key_file))
    store.db.close_sync()
    return InitReport(config, created, records)


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
    """Every running component of one `mss serve` process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store: Store | None = None
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
            await self._start_web(stack)
            reencrypt = asyncio.create_task(self._reencrypt_loop(), name="blob-reencrypt")
            stack.callback(reencrypt.cancel)
            log.info(
                "mss %s serving (%s)",
                __version__,
                ", ".join(f"{k} {v}" for k, v in self.ports.items()),
            )
            if ready is not None:
                ready(self.ports)
            await stop.wait()
            log.info("stopping: draining listeners")
        log.info("stopped")

    async def _start_web(self, stack: AsyncExitStack) -> None:
        from mss.web.app import create_app
        from mss.web.server import WebServer

        tls = self.settings.tls
        ctx = server_context(
            self.settings.path(tls.cert), self.settings.path(tls.key), min_version=tls.min_version
        )
        app = create_app(health=self.health, metrics=self.metrics, version=__version__)
        web = WebServer(app, self.settings.listen.host, self.settings.listen.https, ctx)
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
                log.info("re-encrypted %d blobs under key %s", moved, self.store.cipher.current)


def serve(settings: Settings) -> int:
    """Run until SIGINT or SIGTERM, then drain and return 0."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await Application(settings).run(stop)

    asyncio.run(main())
    return 0
