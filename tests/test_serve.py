"""`mss serve` starts on loopback, answers, and stops cleanly on SIGINT and SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from .conftest import REPO


def _trust(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


READY = re.compile(r"serving \(https (\d+)\)")


def _wait_ready(process: subprocess.Popen[str], timeout: float = 60) -> int:
    assert process.stderr is not None
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        seen.append(line)
        match = READY.search(line)
        if match:
            return int(match.group(1))
    raise AssertionError("server did not become ready:\n" + "".join(seen))


def _serve(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        args,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "MSS_LISTEN_HTTPS": "0", **env},
    )


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_answers_health_and_stops_cleanly(instance: Path, sig: signal.Signals) -> None:
    with _serve([sys.executable, "-m", "mss", "serve", "--data-dir", str(instance)], {}) as process:
        try:
            port = _wait_ready(process)
            response = httpx.get(
                f"https://localhost:{port}/healthz", verify=_trust(instance / "certs" / "ca.crt")
            )
            assert response.status_code == 200
            assert response.json() == {"status": "ok", "database": "ok"}
            metrics = httpx.get(
                f"https://localhost:{port}/metrics", verify=_trust(instance / "certs" / "ca.crt")
            )
            assert "mss_store_commit_batches_total" in metrics.text
            process.send_signal(sig)
            assert process.wait(timeout=20) == 0
            assert process.stderr is not None
            assert "stopped" in process.stderr.read()
        finally:
            process.kill()


def test_scripts_serve_initialises_then_serves(tmp_path: Path) -> None:
    """The README's first command, with the test environment's virtualenv."""
    env = {"MSS_VENV": sys.prefix, "MSS_DATA_DIR": str(tmp_path / "data")}
    with _serve([str(REPO / "scripts" / "serve")], env) as process:
        try:
            port = _wait_ready(process, timeout=120)
            assert (tmp_path / "data" / "mss.toml").exists()
            assert (tmp_path / "data" / "certs" / "server.crt").exists()
            response = httpx.get(
                f"https://localhost:{port}/healthz",
                verify=_trust(tmp_path / "data" / "certs" / "ca.crt"),
            )
            assert response.status_code == 200
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=20) == 0
        finally:
            process.kill()
