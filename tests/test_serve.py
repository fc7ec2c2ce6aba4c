"""`mss serve` starts on loopback, answers, and stops cleanly on SIGINT and SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import ssl
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

import httpx
import pytest

from .conftest import REPO


def _trust(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


READY = re.compile(r"serving \((.*)\)")
ALL_PORTS_FREE = {
    f"MSS_LISTEN_{name}": "0"
    for name in ("MX", "SUBMISSION", "SUBMISSIONS", "IMAP", "IMAPS", "HTTPS")
}


def wait_ready(process: subprocess.Popen[str], timeout: float = 60) -> dict[str, int]:
    """The listeners' ports, read from the "serving (mx 1234, …)" log line."""
    assert process.stderr is not None
    stderr = process.stderr
    seen: list[str] = []

    def read() -> dict[str, int] | None:
        for line in stderr:
            seen.append(line)
            match = READY.search(line)
            if match:
                pairs = (item.split() for item in match.group(1).split(", "))
                return {name: int(port) for name, port in pairs}
        return None

    with ThreadPoolExecutor(1) as pool:
        try:
            ports = pool.submit(read).result(timeout)
        except FutureTimeout:
            process.kill()
            ports = None
    if ports is None:
        raise AssertionError("server did not become ready:\n" + "".join(seen))
    return ports


def _serve(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        args,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **ALL_PORTS_FREE, **env},
    )


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_answers_health_and_stops_cleanly(instance: Path, sig: signal.Signals) -> None:
    with _serve([sys.executable, "-m", "mss", "serve", "--data-dir", str(instance)], {}) as process:
        try:
            port = wait_ready(process)["https"]
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
            port = wait_ready(process, timeout=120)["https"]
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
