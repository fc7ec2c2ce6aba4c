"""Settings: the file, environment overrides, and one clear error per bad key."""

from __future__ import annotations

from pathlib import Path

import pytest

from mss.config import load_settings
from mss.errors import ConfigError

from .conftest import run_mss


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mss.toml"
    path.write_text(text)
    return path


def test_defaults_without_a_file() -> None:
    settings = load_settings(None, env={})
    assert settings.listen.mx == 2525
    assert settings.domains.local == ("pro.mssante.test", "patient.mssante.fr")
    assert settings.limits.max_message_size == 25 * 1024 * 1024


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, '[storage]\nurl = "sqlite:///x.db"\n'), env={})
    assert settings.data_dir == tmp_path.resolve()
    assert settings.storage_url == f"sqlite:///{tmp_path.resolve() / 'x.db'}"
    assert settings.path(settings.tls.cert) == tmp_path.resolve() / "certs" / "server.crt"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "[listen]\nmx = 2525\n[policy]\npatient_smtp_login = false\n")
    settings = load_settings(
        path,
        env={
            "MSS_LISTEN_MX": "2626",
            "MSS_STORAGE_URL": "postgresql+asyncpg://mss@db/mss",
            "MSS_POLICY_PATIENT_SMTP_LOGIN": "yes",
            "MSS_DOMAINS_PROFESSIONAL": "a.mssante.test, b.mssante.test",
        },
    )
    assert settings.listen.mx == 2626
    assert settings.storage.url == "postgresql+asyncpg://mss@db/mss"
    assert settings.policy.patient_smtp_login is True
    assert settings.domains.professional == ("a.mssante.test", "b.mssante.test")


@pytest.mark.parametrize(
    ("text", "env", "key"),
    [
        ("[listen]\nmx = 'twenty-five'\n", {}, "listen.mx"),
        ("[listen]\nmx = 70000\n", {}, "listen.mx"),
        ("[listen]\nsmtp = 25\n", {}, "listen.smtp"),
        ("[nope]\nx = 1\n", {}, "nope"),
        ("[domains]\nprofessional = ['not a domain']\n", {}, "domains.professional"),
        ("[storage]\nurl = 'mysql://x'\n", {}, "storage.url"),
        ("[tls]\nmin_version = 'TLSv1.0'\n", {}, "tls.min_version"),
        ("[server]\nevent_loop = 'trio'\n", {}, "server.event_loop"),
        ("", {"MSS_LISTEN_IMAP": "abc"}, "listen.imap (MSS_LISTEN_IMAP)"),
        ("", {"MSS_POLICY_PATIENT_SMTP_LOGIN": "maybe"}, "policy.patient_smtp_login"),
        ("[listen\n", {}, "config"),
    ],
)
def test_invalid_setting_names_its_key(
    tmp_path: Path, text: str, env: dict[str, str], key: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(_write(tmp_path, text), env=env)
    assert str(info.value).startswith(key)


def test_settings_are_frozen() -> None:
    settings = load_settings(None, env={})
    with pytest.raises(AttributeError):
        settings.listen.mx = 25  # type: ignore[misc]


def test_serve_with_an_invalid_setting_stops_with_one_line(instance: Path) -> None:
    result = run_mss("serve", "--data-dir", str(instance), env={"MSS_LISTEN_HTTPS": "-1"})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == ["mss: configuration error: listen.https: port -1 is out of range 0-65535"]


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    result = run_mss("serve", "--data-dir", str(tmp_path / "nowhere"))
    assert result.returncode == 1
    assert "does not exist (run `mss init` first)" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
