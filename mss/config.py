"""Settings: loaded once from `mss.toml`, overridden by `MSS_<SECTION>_<KEY>`, validated.

Every section is a frozen, keyword-only dataclass; the loader checks each value
against the field's type, refuses unknown keys, and raises `ConfigError` naming
the key (`storage.url: …`) so that start-up stops with one clear line. Relative
paths are resolved against `server.data_dir`, itself relative to the file.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mss.core.address import PATIENT_DOMAIN, is_valid_domain
from mss.errors import ConfigError

CONFIG_FILE = "mss.toml"
ENV_PREFIX = "MSS_"


@dataclass(frozen=True, kw_only=True)
class ServerSettings:
    data_dir: Path = Path(".")
    hostname: str = "mail.pro.mssante.test"
    operator_name: str = "Opérateur MSSanté de développement"
    # Server processes sharing the listening sockets: 0 = one per CPU core (at most 8).
    workers: int = 0
    # Processes for CPU-heavy checks (DKIM verification) of a single server process:
    # -1 = one per core beyond the first (none when several workers share the cores).
    cpu_workers: int = -1

    def validate(self) -> None:
        if not is_valid_domain(self.hostname) and self.hostname != "localhost":
            raise ValueError("hostname", f"{self.hostname!r} is not a host name")
        if not 0 <= self.workers <= 64:
            raise ValueError("workers", "must be between 0 (one per core) and 64")

    @property
    def worker_count(self) -> int:
        return self.workers or max(1, min(os.cpu_count() or 1, 8))


@dataclass(frozen=True, kw_only=True)
class DomainSettings:
    professional: tuple[str, ...] = ("pro.mssante.test",)
    patient: str = PATIENT_DOMAIN
    # The whole system in one box by default; False relays patient mail instead.
    host_patient_domain: bool = True

    def validate(self) -> None:
        for domain in (*self.professional, self.patient):
            if not is_valid_domain(domain):
                key = "patient" if domain == self.patient else "professional"
                raise ValueError(key, f"{domain!r} is not a domain name")
        if not self.professional:
            raise ValueError("professional", "at least one professional domain is needed")

    @property
    def local(self) -> tuple[str, ...]:
        """Every domain whose mailboxes live here."""
        return (*self.professional, self.patient) if self.host_patient_domain else self.professional


@dataclass(frozen=True, kw_only=True)
class ListenSettings:
    host: str = "127.0.0.1"
    mx: int = 2525
    submission: int = 2587
    submissions: int = 2465
    imap: int = 2143
    imaps: int = 2993
    https: int = 8443

    def validate(self) -> None:
        for name in ("mx", "submission", "submissions", "imap", "imaps", "https"):
            port = getattr(self, name)
            if not 0 <= port <= 65535:
                raise ValueError(name, f"port {port} is out of range 0-65535")


@dataclass(frozen=True, kw_only=True)
class StorageSettings:
    url: str = "sqlite:///mss.db"
    key_file: Path = Path("keys/blob.keys")
    # Group commit: at most this many writes share one transaction.
    batch_max: int = 512
    reader_threads: int = 4

    def validate(self) -> None:
        if not self.url.startswith(("sqlite:", "sqlite+", "postgresql:", "postgresql+")):
            raise ValueError("url", "must be a sqlite:/// or postgresql:// URL")
        if not 1 <= self.batch_max <= 100_000:
            raise ValueError("batch_max", "must be between 1 and 100000")
        if not 1 <= self.reader_threads <= 64:
            raise ValueError("reader_threads", "must be between 1 and 64")


@dataclass(frozen=True, kw_only=True)
class TLSSettings:
    cert: Path = Path("certs/server.crt")
    key: Path = Path("certs/server.key")
    # Trust anchors for client certificates (IGC-Santé in production).
    ca: Path = Path("certs/ca.crt")
    crl: Path = Path("certs/crl.pem")
    min_version: str = "TLSv1.2"

    def validate(self) -> None:
        if self.min_version not in ("TLSv1.2", "TLSv1.3"):
            raise ValueError("min_version", "must be TLSv1.2 or TLSv1.3")


@dataclass(frozen=True, kw_only=True)
class DKIMSettings:
    keys_dir: Path = Path("dkim")
    selector_rsa: str = "mss-rsa"
    selector_ed25519: str = "mss-ed"
    # Public keys of peers known without DNS: lines "<selector>._domainkey.<domain> <TXT>".
    records_file: Path = Path("dkim/peer-keys.txt")
    # What to do with mail arriving on the MX whose DKIM does not verify:
    # "accept" (record the result in Authentication-Results) or "reject".
    on_verify_failure: str = "accept"

    def validate(self) -> None:
        if self.on_verify_failure not in ("accept", "reject"):
            raise ValueError("on_verify_failure", "must be accept or reject")


@dataclass(frozen=True, kw_only=True)
class SMTPSettings:
    max_recipients: int = 100
    max_line_length: int = 998  # RFC 5322 §2.1.1, CRLF excluded
    max_header_size: int = 64 * 1024
    idle_timeout: int = 300  # RFC 5321 §4.5.3.2.7: at least 5 minutes between commands
    data_timeout: int = 600  # the whole of DATA

    def validate(self) -> None:
        if not 1 <= self.max_recipients <= 10000:
            raise ValueError("max_recipients", "must be between 1 and 10000")
        if self.max_line_length < 78:
            raise ValueError("max_line_length", "must be at least 78")
        for name in ("idle_timeout", "data_timeout"):
            if getattr(self, name) < 1:
                raise ValueError(name, "must be at least 1 second")


@dataclass(frozen=True, kw_only=True)
class RelaySettings:
    # Where to send mail for other operators' domains: domain = "host:port".
    routes: dict[str, str] = field(default_factory=dict)
    retry_base: int = 60  # first retry after this many seconds, then doubling
    retry_max: int = 3600
    expire_days: int = 5
    connect_timeout: int = 30
    concurrency: int = 8

    def validate(self) -> None:
        for domain, target in self.routes.items():
            host, sep, port = target.rpartition(":")
            if not is_valid_domain(domain) or not sep or not host or not port.isdigit():
                raise ValueError("routes", f"{domain} = {target!r}: expected domain = host:port")
        if self.retry_base < 1 or self.retry_max < self.retry_base:
            raise ValueError("retry_base", "need 1 <= retry_base <= retry_max")
        if self.expire_days < 1:
            raise ValueError("expire_days", "must be at least 1")

    def route(self, domain: str) -> tuple[str, int] | None:
        target = self.routes.get(domain)
        if target is None:
            return None
        host, _, port = target.rpartition(":")
        return host, int(port)


@dataclass(frozen=True, kw_only=True)
class DNSSettings:
    # Use the system resolver for MX routes and DKIM keys (off in development).
    enabled: bool = False


@dataclass(frozen=True, kw_only=True)
class OAuthSettings:
    # Bearer tokens (XOAUTH2, OAUTHBEARER) are accepted only when an issuer is set.
    issuer: str = ""
    audience: str = ""
    jwks_file: str = ""
    jwks_url: str = ""
    address_claim: str = "email"
    national_id_claim: str = "preferred_username"

    def validate(self) -> None:
        if self.issuer and bool(self.jwks_file) == bool(self.jwks_url):
            raise ValueError("jwks_file", "with an issuer, set exactly one of jwks_file, jwks_url")


@dataclass(frozen=True, kw_only=True)
class LimitSettings:
    max_message_size: int = 25 * 1024 * 1024  # DOMAIN.md §3: 25 MB

    def validate(self) -> None:
        if self.max_message_size < 1024:
            raise ValueError("max_message_size", "must be at least 1024 bytes")


@dataclass(frozen=True, kw_only=True)
class DMPSettings:
    # The lifetime of a professional's authorisation to consult (not published: ours).
    authorization_days: int = 365
    # The "matrice d'habilitation" (TOML); empty: the default shipped with mss.
    habilitations: str = ""

    def validate(self) -> None:
        if self.authorization_days < 1:
            raise ValueError("authorization_days", "must be 1 or more")


@dataclass(frozen=True, kw_only=True)
class PolicySettings:
    # Patients send through their space; SMTP login is for tests and special set-ups.
    patient_smtp_login: bool = False
    patient_imap_login: bool = False
    # No reply window is published (DOMAIN.md §2): 0 means none.
    reply_window_days: int = 0
    # Mailboxes of other operators allowed to write to patients before the annuaire
    # publishes them (those of the annuaire are allowed anyway).
    professionals: tuple[str, ...] = ()

    def validate(self) -> None:
        if self.reply_window_days < 0:
            raise ValueError("reply_window_days", "must be 0 (no window) or more")


@dataclass(frozen=True, kw_only=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    domains: DomainSettings = field(default_factory=DomainSettings)
    listen: ListenSettings = field(default_factory=ListenSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    tls: TLSSettings = field(default_factory=TLSSettings)
    dkim: DKIMSettings = field(default_factory=DKIMSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    policy: PolicySettings = field(default_factory=PolicySettings)
    smtp: SMTPSettings = field(default_factory=SMTPSettings)
    relay: RelaySettings = field(default_factory=RelaySettings)
    dns: DNSSettings = field(default_factory=DNSSettings)
    oauth: OAuthSettings = field(default_factory=OAuthSettings)
    dmp: DMPSettings = field(default_factory=DMPSettings)

    @property
    def data_dir(self) -> Path:
        return self.server.data_dir

    def path(self, relative: Path) -> Path:
        """A path of the settings, resolved against the data directory."""
        return relative if relative.is_absolute() else self.server.data_dir / relative

    @property
    def storage_url(self) -> str:
        """The database URL with a relative SQLite path resolved in the data dir."""
        url = self.storage.url
        for prefix in ("sqlite:///", "sqlite+pysqlite:///"):
            if url.startswith(prefix) and not url.startswith(prefix + "/"):
                rest = url[len(prefix) :]
                if rest and rest != ":memory:":
                    return f"{prefix}{self.server.data_dir / rest}"
        return url


_SECTIONS = tuple(f.name for f in dataclasses.fields(Settings))


def _section_classes() -> dict[str, type[Any]]:
    hints = typing.get_type_hints(Settings)
    return {name: hints[name] for name in _SECTIONS}


def _coerce(key: str, hint: Any, value: Any, from_env: bool) -> Any:
    """Check or convert one value against its field type; raise ConfigError."""
    origin = typing.get_origin(hint)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if from_env and isinstance(value, str) and value.lower() in _BOOLS:
            return _BOOLS[value.lower()]
        raise ConfigError(key, f"expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if from_env and isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise ConfigError(key, f"expected an integer, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(key, f"expected a string, got {value!r}")
    if hint is Path:
        if isinstance(value, str) and value:
            return Path(value)
        raise ConfigError(key, f"expected a path, got {value!r}")
    if origin is dict:
        if from_env and isinstance(value, str):
            pairs = [item.partition("=") for item in value.split(",") if item.strip()]
            value = {k.strip(): v.strip() for k, _, v in pairs}
        if isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            return dict(value)
        raise ConfigError(key, f"expected a table of strings, got {value!r}")
    if origin is tuple:
        if from_env and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ConfigError(key, f"expected a list of strings, got {value!r}")
    raise ConfigError(key, f"unsupported setting type {hint!r}")


_BOOLS = {
    "true": True,
    "1": True,
    "yes": True,
    "on": True,
    "false": False,
    "0": False,
    "no": False,
    "off": False,
}


def _build_section(
    name: str, cls: type[Any], values: Mapping[str, Any], env: Mapping[str, str]
) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in values:
        if key not in known:
            raise ConfigError(
                f"{name}.{key}", f"unknown setting (known: {', '.join(sorted(known))})"
            )
    kwargs: dict[str, Any] = {}
    for key in known:
        env_name = f"{ENV_PREFIX}{name.upper()}_{key.upper()}"
        if env_name in env:
            kwargs[key] = _coerce(f"{name}.{key} ({env_name})", hints[key], env[env_name], True)
        elif key in values:
            kwargs[key] = _coerce(f"{name}.{key}", hints[key], values[key], False)
    section = cls(**kwargs)
    validate = getattr(section, "validate", None)
    if validate is not None:
        try:
            validate()
        except ValueError as exc:
            key, problem = exc.args
            raise ConfigError(f"{name}.{key}", problem) from None
    return section


def load_settings(
    path: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Read the config file (if any), apply overrides and environment, validate.

    `overrides` (section → key → value, as in the file) lets tests and `mss init`
    build settings without a file. Relative `server.data_dir` is resolved against
    the file's directory (the current directory without a file).
    """
    env = os.environ if env is None else env
    data: dict[str, Any] = {}
    base = Path.cwd()
    if path is not None:
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError("config", f"{path} does not exist (run `mss init` first)") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("config", f"{path} is not valid TOML: {exc}") from None
        base = path.resolve().parent
    for section, values in (overrides or {}).items():
        data.setdefault(section, {}).update(values)
    for section in data:
        if section not in _SECTIONS:
            raise ConfigError(section, f"unknown section (known: {', '.join(_SECTIONS)})")
        if not isinstance(data[section], dict):
            raise ConfigError(section, "expected a table of settings")
    sections = {
        name: _build_section(name, cls, data.get(name, {}), env)
        for name, cls in _section_classes().items()
    }
    server = sections["server"]
    data_dir = server.data_dir if server.data_dir.is_absolute() else base / server.data_dir
    sections["server"] = dataclasses.replace(server, data_dir=data_dir.resolve())
    return Settings(**sections)


def find_config(explicit: Path | None, data_dir: Path | None = None) -> Path:
    """The config file to use: explicit, else `$MSS_CONFIG`, else `<data_dir>/mss.toml`."""
    if explicit is not None:
        return explicit
    if "MSS_CONFIG" in os.environ:
        return Path(os.environ["MSS_CONFIG"])
    return (data_dir or Path("mss-data")) / CONFIG_FILE
