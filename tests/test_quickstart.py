"""Issue 17: the README's quick start, followed as written from a fresh clone of this
checkout by `./scripts/quickstart` (its own virtualenv, `./scripts/serve`, the CLI,
swaks and curl over IMAP), passes. It needs the default ports free and a committed
checkout; it takes a few minutes (a fresh `pip install`)."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PORTS = (2525, 2587, 2465, 2143, 2993, 8443)


def _taken(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_the_readme_quick_start_works_as_written() -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the quick start starts from a clone")
    taken = [p for p in PORTS if _taken(p)]
    assert not taken, f"the quick start's ports are taken: {taken}"
    result = subprocess.run(
        [str(ROOT / "scripts" / "quickstart")], capture_output=True, text=True, timeout=1200,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "the README's quick start works as written" in result.stdout
    assert "Subject: Compte rendu" in result.stdout
