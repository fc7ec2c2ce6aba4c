"""Issue 15, Compose: `docker-compose.yml` shows the tested shape (HAProxy with PROXY v2,
two mss nodes, PostgreSQL with pg_auto_failover, an S3 store). No container engine runs
here, so this checks what can be checked without one: every MSS_ setting of the nodes is
one mss accepts, HAProxy's backends are the nodes' ports with send-proxy-v2, and the
nodes trust HAProxy's address as a proxy."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import yaml

from mss.config import load_settings

ROOT = Path(__file__).resolve().parent.parent


def _compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_compose_nodes_settings_are_valid_mss_settings() -> None:
    services = _compose()["services"]
    for node in ("mss-a", "mss-b", "init"):
        env = {k: str(v) for k, v in services[node]["environment"].items()}
        settings = load_settings(env=env)  # raises ConfigError on an unknown or bad value
        assert settings.blobs.store == "s3"
        assert "target_session_attrs=read-write" in settings.storage.url


def test_compose_haproxy_sends_proxy_v2_to_every_door_of_both_nodes() -> None:
    config = (ROOT / "deploy" / "haproxy.cfg").read_text(encoding="utf-8")
    servers = re.findall(r"^\s*server \S+ (mss-[ab]):(\d+) (.*)$", config, re.M)
    listen = load_settings(env={}).listen
    ports = {listen.mx, listen.submission, listen.submissions, listen.imap, listen.imaps,
             listen.https}  # fmt: skip
    assert {(node, int(port)) for node, port, _ in servers} == {
        (node, port) for node in ("mss-a", "mss-b") for port in ports
    }
    assert all("send-proxy-v2" in options for _, _, options in servers)


def test_compose_nodes_trust_haproxy_as_their_proxy() -> None:
    services = _compose()["services"]
    address = ipaddress.ip_address(services["haproxy"]["networks"]["mss"]["ipv4_address"])
    env = {k: str(v) for k, v in services["mss-a"]["environment"].items()}
    proxies = load_settings(env=env).server.proxy_from
    assert any(address in ipaddress.ip_network(p) for p in proxies)
