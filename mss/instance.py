"""An installation on disk: `mss init` creates it; commands open its settings and store.

`init_instance` writes `mss.toml` from the template shipped in the package
(`mss/data/mss.toml.in`), then the blob key, the development PKI, the DKIM keys and
the database, each only when missing: running it again changes nothing and never
overwrites a key.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

from mss.config import CONFIG_FILE, Settings, load_settings
from mss.core.address import is_valid_domain
from mss.core.clients import MailService, mx_line, srv_lines
from mss.errors import InputError
from mss.notify.push import generate_vapid_keys
from mss.security import dkim
from mss.security.pki import DevPKI
from mss.store.api import Store
from mss.store.blobs import create_key_file
from mss.store.blobs_s3 import S3Options
from mss.store.quotas import Quota

DEFAULT_DATA_DIR = Path("mss-data")


def default_data_dir() -> Path:
    """`$MSS_DATA_DIR` (as `./scripts/serve` and `./scripts/mss` set it), else ./mss-data."""
    return Path(os.environ.get("MSS_DATA_DIR") or DEFAULT_DATA_DIR)


DEFAULT_DOMAIN = "pro.mssante.test"
CONFIG_TEMPLATE = "data/mss.toml.in"


@dataclass(frozen=True, slots=True)
class InitReport:
    config: Path
    created: list[str]
    dns_records: list[str]  # DKIM
    client_records: list[str]  # MX, and SRV for mail clients


def init_instance(
    data_dir: Path, domains: Sequence[str], hostname: str | None = None
) -> InitReport:
    """Create a working installation in `data_dir`; idempotent, never overwrites keys."""
    _check_domains(domains)
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / CONFIG_FILE
    created = _write_config(config, domains, hostname)
    settings = load_settings(config)
    if create_key_file(settings.path(settings.storage.key_file)):
        created.append("blob encryption key")
    created += _ensure_pki(settings)
    created += _ensure_vapid(settings)
    records = [dkim.zone_lines(key) for key in dkim_keys(settings)]
    Store.open(settings.storage_url, settings.path(settings.storage.key_file)).db.close_sync()
    return InitReport(config, created, records, client_records(settings))


def _check_domains(domains: Sequence[str]) -> None:
    for domain in domains:
        if not is_valid_domain(domain):
            raise InputError(f"--domain {domain!r} is not a domain name")


def _write_config(config: Path, domains: Sequence[str], hostname: str | None) -> list[str]:
    if config.exists():
        return []
    chosen = list(dict.fromkeys(d.lower() for d in domains)) or [DEFAULT_DOMAIN]
    config.write_text(config_text(hostname or f"mail.{chosen[0]}", chosen))
    return [f"configuration {config}"]


def config_text(hostname: str, domains: Sequence[str]) -> str:
    """The `mss.toml` that `mss init` writes: the shipped template, filled in."""
    template = resources.files("mss").joinpath(CONFIG_TEMPLATE).read_text("utf-8")
    domain_list = ", ".join(f'"{d}"' for d in domains)
    return Template(template).substitute(hostname=hostname, domains=domain_list)


def mail_service(settings: Settings, served: dict[str, int] | None = None) -> MailService:
    """The host name and ports mail clients are told: those of `[clients]` (the proxy's),
    else those `served` (the ports bound: the settings may say 0), else those listened on."""
    told, listen, ports = settings.clients, settings.listen, served or {}

    def port(name: str) -> int:
        return int(getattr(told, name) or ports.get(name) or getattr(listen, name))

    return MailService(
        hostname=told.hostname or settings.server.hostname,
        imap=port("imap"), imaps=port("imaps"),
        submission=port("submission"), submissions=port("submissions"),
        oauth=bool(settings.oauth.issuer),
    )  # fmt: skip


def client_domains(settings: Settings) -> tuple[str, ...]:
    """The domains whose users log in with a mail client: the professional ones, and the
    patient domain when patients may use IMAP."""
    domains = settings.domains
    patients = domains.host_patient_domain and settings.policy.patient_imap_login
    return (*domains.professional, domains.patient) if patients else domains.professional


def client_records(settings: Settings) -> list[str]:
    """The MX of every local domain, the SRV records of those with mail-client users."""
    service = mail_service(settings)
    records = [mx_line(domain, settings.server.hostname) for domain in settings.domains.local]
    return records + [line for d in client_domains(settings) for line in srv_lines(service, d)]


def _ensure_vapid(settings: Settings) -> list[str]:
    """The VAPID key pair of Web Push (RFC 8292): the private key (0600) and, beside it
    (`.pub`), the public key the patient space gives browsers to subscribe with."""
    path = settings.path(Path(settings.notify.vapid_private_key_file))
    if path.exists():
        return []
    private, public = generate_vapid_keys()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(private + "\n")
    path.with_suffix(".pub").write_text(public + "\n")
    return ["Web Push (VAPID) keys"]


def _ensure_pki(settings: Settings) -> list[str]:
    pki = DevPKI(settings.path(settings.tls.cert).parent)
    created = pki.ensure(settings.server.hostname, settings.domains.local)
    return [f"PKI: {item}" for item in created]


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


def quota(settings: Settings) -> Quota:
    """The limits of every account without its own (store/quotas.py)."""
    limits = settings.limits
    return Quota(
        folders=limits.max_folders, messages=limits.max_messages, storage=limits.max_storage
    )


def load(config: Path | None, data_dir: Path | None = None) -> Settings:
    """The settings of `--config`, or of `mss.toml` in `--data-dir` (default ./mss-data)."""
    path = config if config is not None else (data_dir or default_data_dir()) / CONFIG_FILE
    return load_settings(path)


def open_store(settings: Settings, *, migrate: bool = True) -> Store:
    """The store of the installation, migrated to the current schema (unless told not)."""
    return Store.open(
        settings.storage_url,
        settings.path(settings.storage.key_file),
        batch_max=settings.storage.batch_max,
        reader_threads=settings.storage.reader_threads,
        migrate=migrate,
        s3=s3_options(settings),
    )


def s3_options(settings: Settings) -> S3Options | None:
    """Where bodies go when `[blobs] store = "s3"`; None: in the database."""
    blobs = settings.blobs
    if blobs.store != "s3":
        return None
    return S3Options(
        bucket=blobs.bucket, endpoint=blobs.endpoint, region=blobs.region,
        prefix=blobs.prefix, access_key_id=blobs.access_key_id,
        secret_access_key=blobs.secret_access_key, timeout=blobs.timeout,
        gc_grace=blobs.gc_grace,
    )  # fmt: skip


@contextlib.contextmanager
def opened_store(settings: Settings) -> Iterator[Store]:
    """The store for one admin command, closed when it is done."""
    store = open_store(settings)
    try:
        yield store
    finally:
        store.db.close_sync()
