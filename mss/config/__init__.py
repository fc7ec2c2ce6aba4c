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

from mss.config.sections import (
    BlobSettings,
    ClientSettings,
    DKIMSettings,
    DMPSettings,
    DNSSettings,
    DomainSettings,
    LimitSettings,
    ListenSettings,
    LogSettings,
    NotifySettings,
    OAuthSettings,
    PolicySettings,
    RelaySettings,
    ServerSettings,
    SMTPSettings,
    SpaceSettings,
    StorageSettings,
    TLSSettings,
)
from mss.errors import ConfigError

CONFIG_FILE = "mss.toml"
ENV_PREFIX = "MSS_"


@dataclass(frozen=True, kw_only=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    domains: DomainSettings = field(default_factory=DomainSettings)
    listen: ListenSettings = field(default_factory=ListenSettings)
    clients: ClientSettings = field(default_factory=ClientSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    blobs: BlobSettings = field(default_factory=BlobSettings)
    tls: TLSSettings = field(default_factory=TLSSettings)
    dkim: DKIMSettings = field(default_factory=DKIMSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    policy: PolicySettings = field(default_factory=PolicySettings)
    smtp: SMTPSettings = field(default_factory=SMTPSettings)
    relay: RelaySettings = field(default_factory=RelaySettings)
    dns: DNSSettings = field(default_factory=DNSSettings)
    oauth: OAuthSettings = field(default_factory=OAuthSettings)
    dmp: DMPSettings = field(default_factory=DMPSettings)
    notify: NotifySettings = field(default_factory=NotifySettings)
    space: SpaceSettings = field(default_factory=SpaceSettings)
    log: LogSettings = field(default_factory=LogSettings)

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
