"""`mss serve` starts on loopback, answers, and stops cleanly on SIGINT and SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import ssl
import subprocess
import sys
import threading
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
    """The listeners' ports, read from the "serving (mx 1234, …)" log line.

    The rest of stderr keeps being drained on a thread (into `process.log`), so
    that a chatty server never blocks on a full pipe.
    """
    assert process.stderr is not None
    stderr = process.stderr
    seen: list[str] = []
    found: dict[str, int] = {}
    ready = threading.Event()

    def drain() -> None:
        for line in stderr:
            seen.append(line)
            match = READY.search(line)
            if match and not ready.is_set():
                pairs = (item.split() for item in match.group(1).split(", "))
                found.update({name: int(port) for name, port in pairs})
                ready.set()
        ready.set()

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    process.log = seen  # type: ignore[attr-defined]
    process.drain = thread  # type: ignore[attr-defined]
    if not ready.wait(timeout) or not found:
        process.kill()
        raise AssertionError("server did not become ready:\n" + "".join(seen))
    return found


def stop_server(
    process: subprocess.Popen[str], sig: int = signal.SIGTERM, timeout: float = 30
) -> int:
    """Signal the server, wait for it, and close its pipe once drained; its exit status."""
    if process.poll() is None:
        process.send_signal(sig)
    code = process.wait(timeout)
    drain = getattr(process, "drain", None)
    if drain is not None:
        drain.join(5)
    if process.stderr is not None:
        process.stderr.close()
    return code


def _serve(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        env={**os.environ, **ALL_PORTS_FREE, **env},
    )  # fmt: skip


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
            assert stop_server(process, sig) == 0
            assert any("stopped" in line for line in process.log)  # type: ignore[attr-defined]
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
            assert stop_server(process, signal.SIGINT) == 0
        finally:
            process.kill()
