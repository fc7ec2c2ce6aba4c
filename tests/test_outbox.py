"""The outbox (store/outbox.py) and its runner (store/runner.py), on SQLite and PostgreSQL.

Rows are added in the transaction of their cause, claimed with a lease, finished,
retried with backoff, dead-lettered after `max_attempts` without blocking the
rows behind; two runners never handle one row twice; a process killed between
the claim and the end loses nothing.
"""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest

from mss.store import outbox
from mss.store.api import Store
from mss.store.changes import LocalFeed
from mss.store.outbox import NewItem, OutboxItem, SQLOutbox
from mss.store.ports import Done, Failed, Outcome, Retry, RetryPolicy
from mss.store.runner import OutboxRunner

from .conftest import run_mss
from .harness import Running

KIND = "test"
FAST = RetryPolicy(base=0.01, cap=0.01, max_attempts=3, lease=60, batch=10)


class Recorder:
    """A handler that records what it handled, fails on payloads marked `poison`."""

    kind = KIND

    def __init__(self, policy: RetryPolicy = FAST, delay: float = 0.0) -> None:
        self.policy = policy
        self.delay = delay
        self.handled: list[int] = []
        self.batches: list[int] = []  # the size of each batch handed to `handle`
        self.dead: list[int] = []

    async def handle(self, items: Sequence[OutboxItem]) -> list[Outcome]:
        await asyncio.sleep(self.delay)
        if any(i.payload.get("poison") for i in items if len(items) == 1):
            raise LookupError("unknown encoding: x-mac-klingon")  # a bug, not a decision
        self.handled += [i.payload["n"] for i in items]
        self.batches.append(len(items))
        return [self._outcome(i) for i in items]

    async def on_dead(self, items: Sequence[OutboxItem]) -> None:
        self.dead += [i.payload["n"] for i in items]

    @staticmethod
    def _outcome(item: OutboxItem) -> Outcome:
        if item.payload.get("refuse"):
            return Failed("refused for good")
        if item.payload.get("later"):
            return Retry("peer busy")
        return Done(f"did {item.payload['n']}")


async def add(store: Store, *payloads: dict[str, object], now: int = 1000) -> None:
    items = [NewItem(dict(p)) for p in payloads]
    await store.write(lambda tx: outbox.add(tx, KIND, items, now))


async def rows(store: Store) -> list[OutboxItem]:
    return await store.read(lambda c: outbox.list_items(c, kinds=[KIND]))


def runner(store: Store, handler: Recorder, owner: str = "w1", now: float = 2000.0) -> OutboxRunner:
    return OutboxRunner(SQLOutbox(store.db), [handler], owner=owner, clock=lambda: now)


async def test_rows_are_done_once_and_keep_their_result(store: Store) -> None:
    await add(store, {"n": 1}, {"n": 2})
    handler = Recorder()
    handled = await runner(store, handler).run_once(KIND)
    assert [h.final for h in handled] == ["done", "done"]
    assert handler.handled == [1, 2]
    assert [(r.status, r.result, r.attempts) for r in await rows(store)] == [
        ("done", "did 1", 1),
        ("done", "did 2", 1),
    ]
    assert await runner(store, handler).run_once(KIND) == []  # nothing left to do


async def test_a_row_added_by_a_rolled_back_transaction_never_exists(store: Store) -> None:
    def add_then_fail(tx: object) -> None:
        outbox.add(tx, KIND, [NewItem({"n": 1})], 1000)  # type: ignore[arg-type]
        raise RuntimeError("the cause failed")

    with pytest.raises(RuntimeError):
        await store.write(add_then_fail)
    assert await rows(store) == []


async def test_a_retried_row_waits_for_its_backoff(store: Store) -> None:
    await add(store, {"n": 1, "later": True})
    slow = RetryPolicy(base=60, cap=3600, max_attempts=5, lease=600)
    handled = await runner(store, Recorder(slow), now=2000).run_once(KIND)
    assert handled[0].final == "pending"
    [row] = await rows(store)
    assert row.last_error == "peer busy" and row.lease_owner is None
    assert 2000 + 54 <= row.due_at <= 2000 + 66  # 60 s ± 10 % jitter
    assert await runner(store, Recorder(slow), now=2030).run_once(KIND) == []
    assert len(await runner(store, Recorder(slow), now=2070).run_once(KIND)) == 1


async def test_a_poison_row_is_dead_lettered_while_the_rows_behind_it_go_on(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    one = RetryPolicy(base=0, cap=0, max_attempts=3, lease=60, batch=1)
    await add(store, {"n": 1, "poison": True}, {"n": 2}, {"n": 3})
    handler = Recorder(one)
    for step in range(6):
        await runner(store, handler, now=2000 + step).run_once(KIND)
    states = {r.payload["n"]: (r.status, r.attempts) for r in await rows(store)}
    assert states == {1: ("dead", 3), 2: ("done", 1), 3: ("done", 1)}
    assert handler.handled == [2, 3]
    assert handler.dead == [1]  # the handler was told (a DSN, an MDN…)
    [dead] = [r for r in await rows(store) if r.status == "dead"]
    assert "LookupError: unknown encoding" in (dead.last_error or "")
    assert any("dead-lettered" in r.message for r in caplog.records)
    # an operator revives it: due now, attempts start over
    assert await store.write(lambda tx: outbox.retry(tx, ids=[dead.id], kinds=None, now=3000)) == 1
    [revived] = [r for r in await rows(store) if r.id == dead.id]
    assert (revived.status, revived.attempts, revived.due_at) == ("pending", 0, 3000)


async def test_a_failed_row_is_final_and_not_retried(store: Store) -> None:
    await add(store, {"n": 1, "refuse": True})
    handled = await runner(store, Recorder()).run_once(KIND)
    assert handled[0].final == "failed"
    [row] = await rows(store)
    assert (row.status, row.last_error) == ("failed", "refused for good")
    assert await store.write(lambda tx: outbox.retry(tx, ids=None, kinds=[KIND], now=3000)) == 0


async def test_an_expired_lease_lets_another_process_take_the_row(store: Store) -> None:
    await add(store, {"n": 1})
    claimed = await store.write(
        lambda tx: outbox.claim(tx, KIND, now=1000, lease=30, owner="crashed", limit=10)
    )
    assert [c.attempts for c in claimed] == [1]
    # while the lease holds, nobody else gets it
    assert (
        await store.write(
            lambda tx: outbox.claim(tx, KIND, now=1029, lease=30, owner="w2", limit=10)
        )
        == []
    )
    handler = Recorder()
    handled = await runner(store, handler, owner="w2", now=1031).run_once(KIND)
    assert [h.item.attempts for h in handled] == [2]
    assert handler.handled == [1]
    # the first holder, back from the dead, can no longer finish it
    late = outbox.Finish(claimed[0].id, "pending", due_at=5000, error="late")
    assert await store.write(lambda tx: outbox.finish(tx, [late], owner="crashed", now=1040)) == 0
    [row] = await rows(store)
    assert (row.status, row.result) == ("done", "did 1")


async def test_two_runners_never_handle_one_row_twice(db_url: str, key_file: Path) -> None:
    """Two stores (two processes' worth of connections and writers) on one database."""
    first, second = Store.open(db_url, key_file), Store.open(db_url, key_file, migrate=False)
    first.start()
    second.start()
    try:
        await add(first, *({"n": n} for n in range(200)))
        policy = RetryPolicy(base=1, cap=1, max_attempts=3, lease=60, batch=7, concurrency=3)
        a, b = Recorder(policy, delay=0.001), Recorder(policy, delay=0.001)

        async def drain(store: Store, handler: Recorder, owner: str) -> None:
            while await runner(store, handler, owner=owner).run_once(KIND):
                pass

        await asyncio.gather(drain(first, a, "w1"), drain(second, b, "w2"))
        assert sorted(a.handled + b.handled) == list(range(200))
        assert not set(a.handled) & set(b.handled)
        assert {r.status for r in await rows(first)} == {"done"}
    finally:
        await first.close()
        await second.close()


async def test_the_runner_wakes_after_the_commit_that_adds_rows(store: Store) -> None:
    handler = Recorder()
    running = OutboxRunner(SQLOutbox(store.db), [handler], owner="w1", poll=30.0)
    LocalFeed(store.db).subscribe(running.on_change)
    task = asyncio.create_task(running.run())
    try:
        await asyncio.sleep(0.05)  # the lane looked, found nothing, sleeps up to 30 s
        await add(store, {"n": 7}, now=0)
        for _ in range(100):
            if handler.handled:
                break
            await asyncio.sleep(0.01)
        assert handler.handled == [7]
    finally:
        task.cancel()


async def test_rows_committed_one_after_another_are_claimed_handled_and_finished_together(
    store: Store,
) -> None:
    """A message a few milliseconds after another (one connection sending) each add a
    row: the runner gathers a moment after the first wake, so one claim, one handling
    and one finish serve them all, not three transactions each."""
    handler = Recorder()
    running = OutboxRunner(SQLOutbox(store.db), [handler], owner="w1", poll=30.0, gather=1.0)
    LocalFeed(store.db).subscribe(running.on_change)
    task = asyncio.create_task(running.run())
    try:
        await asyncio.sleep(0.05)  # the lane looked, found nothing, sleeps up to 30 s
        for n in range(5):
            await add(store, {"n": n}, now=0)  # five commits, one after another
        for _ in range(500):  # the handler is called, then the rows are finished
            if {row.status for row in await rows(store)} == {"done"}:
                break
            await asyncio.sleep(0.01)
        assert {row.status for row in await rows(store)} == {"done"}
        assert sorted(handler.handled) == [0, 1, 2, 3, 4]
        assert handler.batches == [5]
    finally:
        task.cancel()


CHILD = """
import asyncio, sys
from pathlib import Path
from mss.store.api import Store
from mss.store import outbox

async def main() -> None:
    store = Store.open(sys.argv[1], Path(sys.argv[2]), migrate=False)
    store.start()
    won = await store.write(lambda tx: outbox.claim(
        tx, "test", now=1000, lease=5, owner="doomed", limit=100))
    print(len(won), flush=True)
    await asyncio.sleep(3600)  # working on them... until SIGKILL

asyncio.run(main())
"""


async def test_kill_9_between_claim_and_end_loses_nothing(store: Store, db_url: str,
                                                          key_file: Path) -> None:  # fmt: skip
    await add(store, *({"n": n} for n in range(20)))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, db_url, str(key_file)],
        stdout=subprocess.PIPE, text=True, env={**os.environ},
    )  # fmt: skip
    try:
        assert child.stdout is not None
        line = await asyncio.to_thread(child.stdout.readline)
        assert line.strip() == "20"  # claimed (and committed) by the child
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
        assert child.stdout is not None
        child.stdout.close()
    assert {r.lease_owner for r in await rows(store)} == {"doomed"}
    handler = Recorder()
    assert await runner(store, handler, now=1004).run_once(KIND) == []  # lease still held
    while await runner(store, handler, now=1006).run_once(KIND):
        pass
    assert sorted(handler.handled) == list(range(20))
    assert {(r.status, r.attempts) for r in await rows(store)} == {("done", 2)}


async def test_stats_count_rows_by_kind_and_status(store: Store) -> None:
    await add(store, {"n": 1}, {"n": 2, "refuse": True}, now=500)
    await runner(store, Recorder()).run_once(KIND)
    await add(store, {"n": 3}, now=900)
    [stats] = await store.read(outbox.stats)
    assert stats.counts == {"done": 1, "failed": 1, "pending": 1}
    assert stats.oldest_pending == 900
    purged = await store.write(lambda tx: outbox.purge_finished(tx, now=10**9, keep=60))
    assert purged == 2


def test_mss_outbox_lists_retries_and_drops_rows(instance: Path) -> None:
    """The operator's hand on the outbox: `mss outbox list|retry|drop`."""
    store = Store.open(f"sqlite:///{instance / 'mss.db'}", instance / "keys" / "blob.keys")
    try:
        store.db.write_sync(lambda tx: outbox.add(tx, KIND, [NewItem({"n": 1})] * 3, 1000))
        [a, b, c] = store.db.read_sync(lambda conn: outbox.list_items(conn))
        dead = outbox.Finish(b.id, "dead", error="LookupError: x-mac-klingon")
        now = int(time.time())
        store.db.write_sync(
            lambda tx: outbox.claim(tx, KIND, now=now, lease=600, owner="w", limit=3)
        )
        store.db.write_sync(lambda tx: outbox.finish(tx, [dead], owner="w", now=now))
    finally:
        store.db.close_sync()
    listed = run_mss("outbox", "list", "--data-dir", str(instance))
    assert listed.returncode == 0, listed.stderr
    assert "dead" in listed.stdout and "x-mac-klingon" in listed.stdout
    assert "being handled by w" in listed.stdout  # the other two, leased
    summary = run_mss("outbox", "list", "--summary", "--data-dir", str(instance))
    assert "test: 1 dead, 2 pending" in summary.stdout
    retried = run_mss("outbox", "retry", str(b.id), "--data-dir", str(instance))
    assert retried.stdout.strip() == "1 rows due now"
    dropped = run_mss("outbox", "drop", str(a.id), str(c.id), "--data-dir", str(instance))
    assert dropped.stdout.strip() == "2 rows dropped"
    assert (
        run_mss("outbox", "list", "--status", "bogus", "--data-dir", str(instance)).returncode == 1
    )
    final = run_mss("outbox", "list", "--all", "--data-dir", str(instance)).stdout
    statuses = {int(line.split()[0]): line.split()[2] for line in final.splitlines()[1:]}
    assert statuses == {a.id: "dropped", b.id: "pending", c.id: "dropped"}


async def test_metrics_show_the_outbox_depth_and_age(mss: Running) -> None:
    await mss.store.write(lambda tx: outbox.add(tx, "no-handler", [NewItem({})], 1000))
    trust = ssl.create_default_context(cafile=str(mss.data_dir / "certs" / "ca.crt"))
    async with httpx.AsyncClient(verify=trust) as client:
        answer = (await client.get(f"https://localhost:{mss.ports['https']}/metrics")).text
    assert 'mss_outbox_rows{kind="no-handler",status="pending"} 1' in answer
    assert 'mss_outbox_oldest_pending_seconds{kind="no-handler"}' in answer


async def test_a_row_that_kills_its_process_is_dead_lettered_at_the_next_claim(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """Claimed `max_attempts` times and never finished (each process died on it): the
    next claim buries it instead of handing it out again, and tells the handler."""
    await add(store, {"n": 1})
    for attempt in range(FAST.max_attempts):  # three processes died on row 1
        await store.write(
            lambda tx, t=attempt: outbox.claim(tx, KIND, now=1000 + 100 * t, lease=60,
                                               owner=f"dead{t}", limit=1)
        )  # fmt: skip
    await add(store, {"n": 2}, now=1500)
    handler = Recorder()
    await runner(store, handler, now=2000).run_once(KIND)
    states = {r.payload["n"]: r.status for r in await rows(store)}
    assert states == {1: "dead", 2: "done"}
    assert handler.dead == [1] and handler.handled == [2]
    assert any("never finished" in r.message for r in caplog.records)


async def test_a_handler_cannot_complete_a_row_whose_lease_another_process_holds(
    store: Store,
) -> None:
    await add(store, {"n": 1})
    [mine] = await store.write(
        lambda tx: outbox.claim(tx, KIND, now=1000, lease=10, owner="slow", limit=1)
    )
    await store.write(lambda tx: outbox.claim(tx, KIND, now=1011, lease=60, owner="w2", limit=1))
    with pytest.raises(outbox.LeaseLost):
        await store.write(lambda tx: outbox.complete(tx, mine, "late", now=1020))
    [row] = await rows(store)
    assert (row.status, row.lease_owner) == ("pending", "w2")


async def test_the_rows_of_a_dead_process_of_this_machine_are_taken_up_at_once(
    store: Store,
) -> None:
    """Killed mid-work, a process leaves leased rows: the next runner on this machine
    makes them due at its start instead of waiting for the end of their leases."""
    import socket

    await add(store, {"n": 1}, {"n": 2})
    gone = await asyncio.create_subprocess_exec("true")
    await gone.wait()  # its pid no longer runs
    dead = f"{socket.gethostname()}:{gone.pid}:abcd"
    await store.write(lambda tx: outbox.claim(tx, KIND, now=1000, lease=10_000, owner=dead,
                                              limit=1))  # fmt: skip
    alive = f"{socket.gethostname()}:{os.getpid()}:beef"
    await store.write(lambda tx: outbox.claim(tx, KIND, now=1000, lease=10_000, owner=alive,
                                              limit=1))  # fmt: skip
    released = await SQLOutbox(store.db).release_orphans(2000)
    assert released == 1
    owners = sorted((r.lease_owner or "-", r.due_at) for r in await rows(store))
    assert owners == [("-", 2000), (alive, 11_000)]
