"""A pg_auto_failover formation on loopback for the failover test: a monitor, a
primary and a synchronous secondary (Debian's `pg-auto-failover-cli` and
`postgresql-15-auto-failover`), each `pg_autoctl` in a temporary folder.

As root (CI containers) the keepers run as the `postgres` user, as
`mss.testing.postgres.TemporaryPostgres` does: PostgreSQL refuses to run as root.
The monitor's health checks are shortened (pgautofailover.* settings) so that a
dead primary is noticed within seconds instead of the default 20 s. `kill_node`
stands for a machine that dies: the keeper and every PostgreSQL process of the
node get SIGKILL, so nothing restarts it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from mss.testing import free_port
from mss.testing.postgres import find_pg_bin

# Faster failure detection than the defaults (pg_auto_failover docs, "Configuration").
MONITOR_SETTINGS = {
    "pgautofailover.health_check_period": "1000",
    "pgautofailover.health_check_timeout": "1000",
    "pgautofailover.health_check_max_retries": "1",
    "pgautofailover.health_check_retry_delay": "500",
    "pgautofailover.node_considered_unhealthy_timeout": "2000",
    "pgautofailover.primary_demote_timeout": "2000",
}
DBNAME = "mss"


def available() -> str | None:
    """None if a formation can run here, else why not."""
    if shutil.which("pg_autoctl") is None:
        return "pg_autoctl is not installed (apt-get install pg-auto-failover-cli)"
    if find_pg_bin() is None:
        return "PostgreSQL is not installed"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root needs the 'postgres' user"
    return None


class Formation:
    """`start()` builds monitor + node 1 (primary) + node 2 (synchronous secondary)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="mss-paf-"))
        self.bin = find_pg_bin()
        self.monitor_port, self.ports = free_port(), [free_port(), free_port()]
        self.keepers: dict[str, subprocess.Popen[bytes]] = {}
        self._owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        """The libpq multi-host URL mss is given: whichever node is primary answers."""
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.ports)
        return f"postgresql://postgres@{hosts}/{DBNAME}?target_session_attrs=read-write"

    def node_url(self, index: int, dbname: str = DBNAME) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.ports[index]}/{dbname}?connect_timeout=2"

    # --- start -----------------------------------------------------------------------

    def start(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        self._spawn(
            "monitor", "monitor", "--pgport", str(self.monitor_port), "--listen", "127.0.0.1"
        )
        self._wait(deadline, self._monitor_ready, "the monitor")
        self._tune_monitor()
        monitor = f"postgres://autoctl_node@127.0.0.1:{self.monitor_port}/pg_auto_failover"
        for index, name in enumerate(("node1", "node2")):
            self._spawn(
                name, "postgres", "--pgport", str(self.ports[index]), "--name", name,
                "--listen", "127.0.0.1", "--dbname", DBNAME,
                "--monitor", f"{monitor}?sslmode=disable",
            )  # fmt: skip
            if index == 0:
                self._wait(deadline, lambda: self.states().get("node1") == "single", "node 1")
        self._wait(deadline, self._replicating, "node 2 as a synchronous secondary")

    def _spawn(self, name: str, kind: str, *args: str) -> None:
        home = self.root / name
        for folder in (home, home / "config", home / "data-home", home / "run"):
            folder.mkdir(mode=0o700)
            self._own(folder)
        env = {
            "PATH": f"{self.bin}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",  # initdb: a UTF8 database, as mss needs
            "HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_DATA_HOME": str(home / "data-home"), "XDG_RUNTIME_DIR": str(home / "run"),
        }  # fmt: skip
        command = [
            "pg_autoctl", "create", kind, "--pgdata", str(home / "pgdata"),
            "--hostname", "127.0.0.1", "--auth", "trust", "--no-ssl",
            "--pgctl", str(self.bin / "pg_ctl"), *args, "--run",
        ]  # fmt: skip
        user: dict[str, Any] = {}
        if self._owner is not None:
            user = {"user": self._owner.pw_uid, "group": self._owner.pw_gid, "extra_groups": []}
        with (home / "log").open("wb") as log:
            self.keepers[name] = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, cwd=home, **user,
            )  # fmt: skip

    def _own(self, path: Path) -> None:
        if self._owner is not None:
            for target in (self.root, path):
                os.chown(target, self._owner.pw_uid, self._owner.pw_gid)

    def _wait(self, deadline: float, ready: Any, what: str) -> None:
        while not _quietly(ready):
            for name, keeper in self.keepers.items():
                if keeper.poll() is not None:
                    raise RuntimeError(f"pg_autoctl {name} exited: {self.log(name)[-2000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"pg_auto_failover: {what} not ready; {self.states()}")
            time.sleep(0.5)

    def _monitor_ready(self) -> bool:
        with psycopg.connect(self._monitor_dsn(), connect_timeout=2) as conn:
            return (
                conn.execute("SELECT count(*) FROM pgautofailover.formation").fetchone() is not None
            )

    def _tune_monitor(self) -> None:
        with psycopg.connect(self._monitor_dsn(), autocommit=True) as conn:
            for name, value in MONITOR_SETTINGS.items():
                conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
            conn.execute("SELECT pg_reload_conf()")

    def _replicating(self) -> bool:
        states = self.states()
        if states.get("node1") != "primary" or states.get("node2") != "secondary":
            # pg_basebackup waits for a spread checkpoint (minutes): ask for one now
            with psycopg.connect(self.node_url(0, "postgres"), autocommit=True) as conn:
                conn.execute("CHECKPOINT")
            return False
        return True

    def _monitor_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.monitor_port}/pg_auto_failover"

    # --- observe and break -------------------------------------------------------------

    def states(self) -> dict[str, str]:
        """Each node's state as its keeper last reported it to the monitor."""
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(self._monitor_dsn(), connect_timeout=2) as conn,
        ):
            rows = conn.execute("SELECT nodename, reportedstate FROM pgautofailover.node")
            return {_text(name): _text(state) for name, state in rows}
        return {}

    def setting(self, index: int, name: str) -> str:
        with psycopg.connect(self.node_url(index)) as conn:
            row = conn.execute("SELECT current_setting(%s)", (name,)).fetchone()
            assert row is not None
            return str(row[0])

    def kill_node(self, name: str) -> None:
        """SIGKILL the keeper of `name` and every process under it (PostgreSQL too)."""
        keeper = self.keepers[name]
        for pid in [keeper.pid, *_descendants(keeper.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        keeper.wait()

    def log(self, name: str) -> str:
        return (self.root / name / "log").read_text(errors="replace")

    def stop(self) -> None:
        for name in ("node2", "node1", "monitor"):
            keeper = self.keepers.get(name)
            if keeper is not None and keeper.poll() is None:
                keeper.terminate()  # pg_autoctl stops its PostgreSQL (fast shutdown)
                try:
                    keeper.wait(30)
                except subprocess.TimeoutExpired:
                    self.kill_node(name)
        shutil.rmtree(self.root, ignore_errors=True)


def _text(value: object) -> str:
    # the monitor's database is SQL_ASCII (initdb's default locale): psycopg gives bytes
    return value.decode() if isinstance(value, bytes) else str(value)


def _quietly(ready: Any) -> bool:
    try:
        return bool(ready())
    except psycopg.Error:
        return False


def _descendants(pid: int) -> list[int]:
    """Every process under `pid` (PostgreSQL's children leave its process group)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found
