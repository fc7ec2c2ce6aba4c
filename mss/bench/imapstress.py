"""A concurrent IMAP stress tool with a model of each session's view.

Several clients log in to the same account and select the same mailbox, then
issue random commands (SELECT, FETCH, APPEND, STORE, EXPUNGE, SEARCH, NOOP).
Every untagged response is applied to the client's model of its view
(sequence numbers → UIDs and flags) and checked: EXPUNGE and FETCH numbers in
range, EXISTS never shrinking the view, UIDs increasing with sequence numbers,
STORE answers carrying the flags asked for, SEARCH results within the view. At
the end each client syncs and compares its model with the mailbox.

It reports per-command rates (for `mss bench imap`) and the list of errors
(empty when the server kept every session consistent).
"""

from __future__ import annotations

import asyncio
import random
import re
import ssl
import time
from collections import Counter
from dataclasses import dataclass, field

from mss.bench.imapclient import RawIMAP, Reply

FLAGS = ["\\Seen", "\\Flagged", "\\Answered", "\\Deleted", "$Important"]
_UNTAGGED = re.compile(rb"^\* (\d+) (EXISTS|EXPUNGE|RECENT|FETCH)\b(.*)", re.DOTALL)
_UID = re.compile(rb"UID (\d+)")
_FLAGS = re.compile(rb"FLAGS \(([^)]*)\)")


@dataclass
class View:
    """One client's idea of the selected mailbox."""

    uids: list[int | None] = field(default_factory=list)
    flags: dict[int, set[str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def fail(self, text: str) -> None:
        if len(self.errors) < 50:
            self.errors.append(text)

    def apply(self, reply: Reply, command: str) -> None:
        for line in reply.lines:
            match = _UNTAGGED.match(line)
            if match is None:
                continue
            number, kind, rest = int(match.group(1)), match.group(2), match.group(3)
            if kind == b"EXISTS":
                if number < len(self.uids):
                    self.fail(f"{command}: EXISTS {number} shrinks a view of {len(self.uids)}")
                self.uids.extend([None] * (number - len(self.uids)))
            elif kind == b"EXPUNGE":
                if command.startswith(("FETCH", "STORE", "SEARCH")):
                    self.fail(f"{command}: EXPUNGE sent during {command.split()[0]}")
                if not 1 <= number <= len(self.uids):
                    self.fail(f"{command}: EXPUNGE {number} outside 1..{len(self.uids)}")
                    continue
                uid = self.uids.pop(number - 1)
                if uid is not None:
                    self.flags.pop(uid, None)
            elif kind == b"FETCH":
                self._fetch(number, rest, command)

    def _fetch(self, number: int, rest: bytes, command: str) -> None:
        if not 1 <= number <= len(self.uids):
            self.fail(f"{command}: FETCH {number} outside 1..{len(self.uids)}")
            return
        uid_match = _UID.search(rest)
        if uid_match is not None:
            uid = int(uid_match.group(1))
            known = self.uids[number - 1]
            if known is not None and known != uid:
                self.fail(f"{command}: message {number} was UID {known}, now {uid}")
            self.uids[number - 1] = uid
            before = next((u for u in reversed(self.uids[: number - 1]) if u is not None), None)
            after = next((u for u in self.uids[number:] if u is not None), None)
            if (before is not None and before >= uid) or (after is not None and after <= uid):
                self.fail(f"{command}: UID {uid} out of order at {number}")
        flags_match = _FLAGS.search(rest)
        known_uid = self.uids[number - 1]
        if flags_match is not None and known_uid is not None:
            names = set(flags_match.group(1).decode().split()) - {"\\Recent"}
            self.flags[known_uid] = names


@dataclass
class Result:
    seconds: float
    counts: Counter[str]
    errors: list[str]

    def rates(self) -> dict[str, float]:
        return {name: round(count / self.seconds, 1) for name, count in sorted(self.counts.items())}


async def _client(
    number: int, port: int, tls: ssl.SSLContext, user: str, password: str, stop: float,
    counts: Counter[str], errors: list[str], seed: int, barrier: asyncio.Barrier,
    target: int = 30,
) -> None:  # fmt: skip
    rng = random.Random(seed + number)
    client = await RawIMAP.connect(port, tls)
    view = View()
    try:
        await client.login(user, password)
        await _select(client, view, counts)
        serial = 0
        while time.monotonic() < stop:
            serial += 1
            count = len(view.uids)
            # Like imaptest: keep the mailbox around `target` messages, so that rates
            # measure the commands, not a mailbox that grows for the whole run.
            grow = count < target
            op = rng.choices(
                ["FETCH", "APPEND", "STORE", "EXPUNGE", "SEARCH", "NOOP", "SELECT"],
                weights=[30, 25 if grow else 5, 25, 2 if grow else 15, 8, 7, 5],
            )[0]
            if op == "FETCH" and count:
                start = rng.randint(1, count)
                command = f"FETCH {start}:{min(count, start + rng.randint(0, 20))} (UID FLAGS)"
            elif op == "STORE" and count:
                seq = rng.randint(1, count)
                flag = "\\Deleted" if not grow and rng.random() < 0.5 else rng.choice(FLAGS)
                command = f"STORE {seq} {rng.choice('+-') if grow else '+'}FLAGS ({flag})"
            elif op == "APPEND":
                body = f"From: stress@x.test\r\nSubject: s{number}-{serial}\r\n\r\ncorps\r\n"
                command = f"APPEND INBOX {{{len(body)}+}}\r\n{body}"
                op = "APPEND"
            elif op == "EXPUNGE":
                command = "EXPUNGE"
            elif op == "SEARCH":
                command = "SEARCH UNDELETED"
            elif op == "SELECT":
                await _select(client, view, counts)
                continue
            else:
                command, op = "NOOP", "NOOP"
            reply = await client.command(command)
            counts[op] += 1
            if not reply.ok:
                view.fail(f"{command.splitlines()[0]}: {reply.tagged!r}")
            view.apply(reply, command)
            _check(view, op, command, reply)
    except (ConnectionError, asyncio.IncompleteReadError, TimeoutError) as exc:
        view.fail(f"connection lost: {exc!r}")
    try:
        await barrier.wait()  # everybody has stopped changing the mailbox
        await _final_check(client, view)
    except (ConnectionError, asyncio.IncompleteReadError, TimeoutError) as exc:
        view.fail(f"connection lost: {exc!r}")
    finally:
        errors.extend(f"client {number}: {e}" for e in view.errors)
        await client.close()


async def _select(client: RawIMAP, view: View, counts: Counter[str]) -> None:
    reply = await client.command("SELECT INBOX")
    counts["SELECT"] += 1
    view.uids, view.flags = [], {}
    view.apply(reply, "SELECT")
    if view.uids:
        view.apply(await client.command("FETCH 1:* (UID FLAGS)"), "FETCH 1:*")


def _check(view: View, op: str, command: str, reply: Reply) -> None:
    if op == "STORE" and reply.ok:
        seq = int(command.split()[1])
        flag = command.split("(")[1].rstrip(")")
        answered = any(line.startswith(b"* %d FETCH " % seq) for line in reply.lines)
        uid = view.uids[seq - 1] if seq <= len(view.uids) else None
        # no answer for a message another session expunged (RFC 2180 §4.2): nothing to check
        if answered and uid is not None and uid in view.flags:
            present = flag in view.flags[uid]
            if present != command.split()[2].startswith("+"):
                view.fail(f"{command}: flags after STORE {sorted(view.flags[uid])}")
    if op == "SEARCH":
        for line in reply.untagged("SEARCH"):
            for n in line.split()[2:]:
                if not 1 <= int(n) <= len(view.uids):
                    view.fail(f"SEARCH: {int(n)} outside 1..{len(view.uids)}")


async def _final_check(client: RawIMAP, view: View) -> None:
    """After a NOOP every change is known: the model must match the mailbox exactly."""
    view.apply(await client.command("NOOP"), "NOOP")
    truth = View(uids=[None] * len(view.uids))
    if view.uids:
        truth.apply(await client.command("FETCH 1:* (UID FLAGS)"), "FETCH 1:*")
    if None in truth.uids:
        view.fail("the final FETCH 1:* missed messages of the view")
    for position, (mine, real) in enumerate(zip(view.uids, truth.uids, strict=True), 1):
        if mine is not None and mine != real:
            view.fail(f"message {position}: model UID {mine}, mailbox UID {real}")
        if mine is not None and mine in view.flags and view.flags[mine] != truth.flags.get(mine):
            model = sorted(view.flags[mine])
            view.fail(f"UID {mine}: model flags {model}, mailbox {truth.flags.get(mine)}")


async def stress(
    port: int, tls: ssl.SSLContext, user: str, password: str, *, clients: int = 10,
    seconds: float = 10.0, seed: int = 1,
) -> Result:  # fmt: skip
    counts: Counter[str] = Counter()
    errors: list[str] = []
    barrier = asyncio.Barrier(clients)
    started = time.monotonic()
    stop = started + seconds
    await asyncio.gather(
        *(
            _client(n, port, tls, user, password, stop, counts, errors, seed, barrier)
            for n in range(clients)
        )
    )
    return Result(seconds, counts, errors)
