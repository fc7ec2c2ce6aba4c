"""The operator's metrics: the counters and gauges every part of mss updates (one line
where it happens), and the Prometheus text of `/metrics` summed over every process.

Each metric is labelled (low cardinality: a door, an SMTP code, a reason class), so
that no value exists before its first use: `share_between_processes`, called by the
supervisor before it forks its workers, switches prometheus_client to its
multiprocess mode (one memory-mapped file per process and kind, in a fresh directory),
and a scrape answered by any worker sums the files of every worker, dead ones
included for counters (`process_exited` drops a dead worker's live gauges). Alone,
a process serves its own values.

What is read from the database (queue depth and age, notices) is not a metric of a
process: the process that answers computes it at scrape time (`Family` values handed
to `exposition`). Samples are sorted, so that two scrapes of an idle server are equal.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest, values
from prometheus_client.metrics import disable_created_metrics
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from mss.processes import alive

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
ENHANCED_CODE = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")  # RFC 3463 §2

disable_created_metrics()  # type: ignore[no-untyped-call]  # a `_created` timestamp per series: noise for an operator

MESSAGES_ACCEPTED = Counter(
    "mss_messages_accepted", "Messages accepted (committed, then 250) by door.",
    ["door"], registry=None,
)  # fmt: skip
MESSAGES_REFUSED = Counter(
    "mss_messages_refused",
    "Refusals of a message's MAIL, RCPT or DATA (or of a web send) by door and reply code.",
    ["door", "code", "enhanced"], registry=None,
)  # fmt: skip
LOGIN_FAILURES = Counter(
    "mss_login_failures", "Failed logins by door and reason class.",
    ["door", "reason"], registry=None,
)  # fmt: skip
IMAP_SESSIONS = Gauge(
    "mss_imap_sessions", "Open IMAP connections by listener.",
    ["door"], multiprocess_mode="livesum", registry=None,
)  # fmt: skip
DMP_DEPOSITS = Counter(
    "mss_dmp_deposits", "DMP deposit rows handled by result and MDN error code.",
    ["result", "code"], registry=None,
)  # fmt: skip
DMP_MDNS = Counter(
    "mss_dmp_mdns", "MDNs of DMP deposits sent, by code (processed, or the error code).",
    ["code"], registry=None,
)  # fmt: skip
STORE_BATCHES = Counter(
    "mss_store_commit_batches", "Group-commit transactions of the store's writer.",
    ["engine"], registry=None,
)  # fmt: skip
STORE_WRITES = Counter(
    "mss_store_committed_writes", "Writes committed by the store's writer.",
    ["engine"], registry=None,
)  # fmt: skip

OWN: tuple[Counter | Gauge, ...] = (
    MESSAGES_ACCEPTED, MESSAGES_REFUSED, LOGIN_FAILURES, IMAP_SESSIONS, DMP_DEPOSITS,
    DMP_MDNS, STORE_BATCHES, STORE_WRITES,
)  # fmt: skip


def count_refusal(door: str, reply: str) -> None:
    """One refused MAIL, RCPT, DATA or web send, by its reply's code and enhanced code
    (never its text: the series stay few)."""
    code, _, rest = reply.partition(" ")
    enhanced = rest.split(" ", 1)[0]
    MESSAGES_REFUSED.labels(
        door, code if code.isdigit() else "?", enhanced if ENHANCED_CODE.fullmatch(enhanced) else ""
    ).inc()


def share_between_processes(parent: Path) -> Path:
    """From now on (and in every process forked after), values live in files under
    `parent/<this pid>`, new and empty: a scrape sums them. The folders of servers no
    longer running go; another server's on the same data directory stays. Call it
    before any value is used."""
    parent.mkdir(parents=True, exist_ok=True)
    for old in parent.iterdir():
        if not (old.name.isdigit() and alive(int(old.name))) or int(old.name) == os.getpid():
            shutil.rmtree(old, ignore_errors=True)
    directory = parent / str(os.getpid())
    directory.mkdir()
    for metric in OWN:
        metric.clear()  # nothing counted yet; children made before would stay in memory
    os.environ[MULTIPROC_ENV] = str(directory)
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    return directory


def process_exited(pid: int) -> None:
    """A worker is gone: its live gauges (IMAP sessions) no longer count."""
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


class Family:
    """A gauge computed at scrape time: name, help, label names, (labels, value) rows."""

    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        self.metric = GaugeMetricFamily(name, documentation, labels=list(labels))

    def add(self, labels: Sequence[str], value: float) -> Family:
        self.metric.add_metric(list(labels), value)
        return self


class _Collected:
    """What the registry of one scrape collects: the processes' metrics, summed, then
    the families computed for this scrape; families and samples in a stable order."""

    def __init__(self, families: Iterable[Family]) -> None:
        self._families = [f.metric for f in families]

    def collect(self) -> Iterator[Metric]:
        directory = os.environ.get(MULTIPROC_ENV)
        if directory:
            files = sorted(glob.glob(os.path.join(directory, "*.db")))
            own: Iterable[Metric] = MultiProcessCollector.merge(files)  # type: ignore[no-untyped-call]
        else:
            own = (family for metric in OWN for family in metric.collect())
        for metric in sorted([*own, *self._families], key=lambda m: m.name):
            metric.samples.sort(key=lambda s: (s.name, sorted(s.labels.items())))
            yield metric


def exposition(families: Iterable[Family]) -> bytes:
    """The Prometheus text of a scrape (format 0.0.4)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collected(families))
    return generate_latest(registry)
