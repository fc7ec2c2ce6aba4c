"""A concurrent IMAP stress tool with a model of the mailbox, after Dovecot's imaptest.

It follows imaptest's default profile, so that its rates compare with what
imaptest prints for other servers. Each of N clients loops over sessions on
one shared mailbox:

    connect, LOGIN
    LIST "" * (50%), STATUS (MESSAGES UNSEEN RECENT) (50%), SELECT    pipelined
    FETCH of up to 100 random messages with 1 to 4 random items (UID,
      FLAGS, ENVELOPE, INTERNALDATE, BODY, BODYSTRUCTURE, RFC822.SIZE,
      BODY.PEEK[HEADER.FIELDS (...)]),
    FETCH of one message's header, body, text or first part (again: 30%),
    STORE [+-]FLAGS[.SILENT] of random flags and $Label keywords (50%),
    STORE +FLAGS[.SILENT] \\Deleted on some messages, EXPUNGE,
    APPEND of the next message of the source when the mailbox holds
      fewer than 30 (again: 5%)                                          pipelined
    LOGOUT

Every answer is checked against the client's view (sequence numbers → UIDs
and flags) and against what is known of each message: EXISTS never shrinks,
EXPUNGE and FETCH numbers stay in range and never arrive during FETCH, STORE
or SEARCH, UIDs never change and grow with sequence numbers, a keyword is
announced by FLAGS before it is used, \\Recent belongs to one session, a
non-silent STORE answers with the flags asked for, LOGOUT says BYE, nothing
is answered BAD. What a UID holds (envelope, structure, sizes, sections)
must never change, and for the messages the tool appended (known by their
Message-ID) every section must be byte for byte the original. At the end,
several sessions select the mailbox at once and must see the same thing.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import ssl
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.imapmodel import _NUMBERED, Shared, View
from bench.mailsource import MailSource, generate, read_mbox
from mss.testing.imapclient import RawIMAP, Reply

STATES = ("LOGIN", "LIST", "STATUS", "SELECT", "FETCH", "FETCH2", "STORE", "DELETE", "EXPUNGE",
          "APPEND", "LOGOUT")  # fmt: skip
FETCH_FIELDS = ("UID", "FLAGS", "ENVELOPE", "INTERNALDATE", "BODY", "BODYSTRUCTURE", "RFC822.SIZE")
HEADER_FIELDS = ("From", "To", "Cc", "Subject", "References", "In-Reply-To", "Message-ID",
                 "Delivered-To")  # fmt: skip
FETCH2_FIELDS = ("BODY.PEEK[HEADER]", "RFC822.HEADER", "BODY.PEEK[]", "BODY.PEEK[1]",
                 "BODY.PEEK[TEXT]")  # fmt: skip
SYSTEM_FLAGS = ("\\Seen", "\\Answered", "\\Flagged", "\\Draft")
KEYWORDS = tuple(f"$Label{i}" for i in range(1, 6))
_FLAGS_ITEM = re.compile(rb"FLAGS \(([^)]*)\)")


@dataclass
class Options:
    host: str = "localhost"
    port: int = 993
    tls: ssl.SSLContext | None = None
    starttls: bool = False  # STARTTLS on a clear port instead of implicit TLS
    user: str = ""
    password: str = ""
    mailbox: str = "INBOX"
    clients: int = 10
    seconds: float = 10.0
    seed: int = 1
    target: int = 30  # imaptest's msgs=30: keep the mailbox around this size
    source: MailSource | None = None


@dataclass
class Result:
    seconds: float
    counts: Counter[str]
    errors: list[str]
    sessions: int = 0

    def rates(self) -> dict[str, float]:
        return {name: round(self.counts[name] / self.seconds, 1) for name in STATES}

    def table(self) -> str:
        head = " ".join(f"{name[:4].capitalize():>6}" for name in STATES)
        counts = " ".join(f"{self.counts[name]:>6}" for name in STATES)
        rates = " ".join(f"{self.counts[name] / self.seconds:>6.1f}" for name in STATES)
        return f"{head}\n{counts}  (commands)\n{rates}  (per second)"


class Client:
    def __init__(self, number: int, options: Options, shared: Shared, stop: float) -> None:
        self.number = number
        self.options = options
        self.shared = shared
        self.stop = stop
        self.rng = random.Random(options.seed * 1000 + number)
        self.capabilities: set[str] = set()

    async def run(self) -> None:
        while time.monotonic() < self.stop:
            try:
                await self.session()
            except (ConnectionError, asyncio.IncompleteReadError, TimeoutError, ssl.SSLError) as e:
                self.shared.fail(f"client {self.number}", f"connection lost: {e!r}")
                await asyncio.sleep(0.1)

    async def connect(self) -> RawIMAP:
        options = self.options
        if options.starttls:
            client = await RawIMAP.connect(options.port, None, host=options.host)
            reply = await client.command("STARTTLS")
            if not reply.ok:
                raise ConnectionError(f"STARTTLS refused: {reply.tagged!r}")
            await client.start_tls(options.tls)
        else:
            client = await RawIMAP.connect(options.port, options.tls, host=options.host)
        match = re.search(rb"\[CAPABILITY ([^\]]*)\]", client.greeting)
        self.capabilities = set(match.group(1).decode().upper().split()) if match else set()
        return client

    async def session(self) -> None:
        self.shared.sessions += 1
        session = self.shared.sessions
        view = View(self.shared, session, f"client {self.number} session {session}")
        client = await self.connect()
        try:
            await self._session(client, view)
        finally:
            await client.close()

    async def _send(self, client: RawIMAP, view: View, batch: list[tuple[str, str]]) -> list[Reply]:
        replies = await client.pipeline([text for _, text in batch])
        for (state, text), reply in zip(batch, replies, strict=True):
            view.apply(reply, text)
            if reply.ok:
                self.shared.counts[state] += 1
                if state in ("STORE", "DELETE"):
                    self._check_store(view, text, reply)
            elif state not in ("FETCH", "FETCH2", "STORE", "DELETE"):
                view.fail(f"{text[:60]}: {reply.tagged[:120]!r}")
        return replies

    async def _session(self, client: RawIMAP, view: View) -> None:
        rng, options = self.rng, self.options
        login = f'LOGIN "{options.user}" "{options.password}"'
        (reply,) = await self._send(client, view, [("LOGIN", login)])
        if not reply.ok:
            raise ConnectionError(f"login refused: {reply.tagged!r}")
        match = re.search(rb"\[CAPABILITY ([^\]]*)\]", reply.tagged)
        if match:
            self.capabilities = set(match.group(1).decode().upper().split())
        box = options.mailbox
        batch = []
        if rng.random() < 0.5:
            batch.append(("LIST", 'LIST "" *'))
        if rng.random() < 0.5:
            batch.append(("STATUS", f'STATUS "{box}" (MESSAGES UNSEEN RECENT)'))
        condstore = " (CONDSTORE)" if "CONDSTORE" in self.capabilities else ""
        batch.append(("SELECT", f'SELECT "{box}"{condstore}'))
        replies = await self._send(client, view, batch)
        if not replies[-1].ok:
            raise ConnectionError(f"SELECT refused: {replies[-1].tagged!r}")
        view.selected = True
        await self._send(client, view, self._selected_batch(view))
        (bye,) = await self._send(client, view, [("LOGOUT", "LOGOUT")])
        if not bye.untagged("BYE"):
            view.fail("LOGOUT without BYE")

    def _selected_batch(self, view: View) -> list[tuple[str, str]]:
        rng, msgs = self.rng, len(view.uids)
        batch: list[tuple[str, str]] = []
        if msgs:
            batch.append(("FETCH", self._fetch_command(msgs)))
            while True:
                n = rng.randint(1, msgs)
                batch.append(("FETCH2", f"FETCH {n} (UID {rng.choice(FETCH2_FIELDS)})"))
                if rng.random() >= 0.3:
                    break
            if rng.random() < 0.5:
                count = rng.randrange(max(1, msgs if msgs < 10 else min(msgs // 5, 50)))
                if count:
                    mode = rng.choice(["+", "-", ""])
                    silent = ".SILENT" if rng.random() < 0.5 else ""
                    flags = " ".join(self._random_flags())
                    seqs = _seq_set(self._random_seqs(msgs, count))
                    batch.append(("STORE", f"STORE {seqs} {mode}FLAGS{silent} ({flags})"))
            target = self.options.target
            count = rng.randrange(msgs - target) if msgs > target + 5 else rng.randrange(5)
            if count:
                silent = ".SILENT" if rng.random() < 0.5 else ""
                seqs = _seq_set(self._random_seqs(msgs, count))
                batch.append(("DELETE", f"STORE {seqs} +FLAGS{silent} (\\Deleted)"))
        batch.append(("EXPUNGE", "EXPUNGE"))
        if msgs < self.options.target:
            while True:
                batch.append(("APPEND", self._append_command()))
                if rng.random() >= 0.05:
                    break
        return batch

    def _random_seqs(self, msgs: int, count: int) -> list[int]:
        return sorted({self.rng.randint(1, msgs) for _ in range(count)})

    def _random_flags(self) -> list[str]:
        rng = self.rng
        flags = [f for f in SYSTEM_FLAGS if rng.random() < 0.3]
        flags += [k for k in KEYWORDS if rng.random() < 0.2]
        return flags or [rng.choice(SYSTEM_FLAGS + KEYWORDS)]

    def _fetch_command(self, msgs: int) -> str:
        rng = self.rng
        seqs = _seq_set(self._random_seqs(msgs, min(msgs, 100)))
        items = []
        for _ in range(rng.randint(1, 4)):
            if rng.random() < 0.75:
                items.append(rng.choice(FETCH_FIELDS))
            else:
                names = [rng.choice(HEADER_FIELDS) for _ in range(rng.randint(1, 4))]
                items.append(f"BODY.PEEK[HEADER.FIELDS ({' '.join(names)})]")
        return f"FETCH {seqs} ({' '.join(items)})"

    def _append_command(self) -> str:
        source = self.shared.source
        _, raw = source.next()
        flags = f" ({' '.join(self._random_flags())})" if self.rng.random() < 0.5 else ""
        minute = self.rng.randrange(60)
        date = f' "22-Nov-2026 10:{minute:02d}:00 +0100"' if self.rng.random() < 0.5 else ""
        return f'APPEND "{self.options.mailbox}"{flags}{date} {{{len(raw)}+}}\r\n' + raw.decode()

    def _check_store(self, view: View, command: str, reply: Reply) -> None:
        """A non-silent STORE answers each message it touched with flags as asked.

        Only the first FETCH of a message counts: another session may change the
        flags again before the command ends, and the server then tells that too.
        """
        _, seqs, how, flag_list = command.split(" ", 3)
        if ".SILENT" in how:
            return
        asked = set(flag_list.strip("()").split())
        first: dict[int, frozenset[str]] = {}
        for line in reply.lines:
            match = _NUMBERED.match(line)
            if match is None or match.group(2).upper() != b"FETCH":
                continue
            seq = int(match.group(1))
            found = _FLAGS_ITEM.search(match.group(3))
            if seq not in first and found is not None:
                first[seq] = frozenset(found.group(1).decode().split()) - {"\\Recent"}
        for seq in _parse_seq_set(seqs):
            flags = first.get(seq)
            if flags is None:
                continue  # expunged by another session meanwhile (RFC 2180 §4.2)
            wrong = (
                (how.startswith("+") and not asked <= flags)
                or (how.startswith("-") and bool(asked & flags))
                or (how.startswith("FLAGS") and asked != flags)
            )
            if wrong:
                view.fail(f"{command}: message {seq} has {sorted(flags)} after STORE")


def _seq_set(numbers: list[int]) -> str:
    parts: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], 0]:
        if n == prev + 1:
            prev = n
            continue
        parts.append(str(start) if start == prev else f"{start}:{prev}")
        start = prev = n
    return ",".join(parts)


def _parse_seq_set(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition(":")
        out.extend(range(int(first), int(last or first) + 1))
    return out


async def _checkpoint(options: Options, shared: Shared, sessions: int = 3) -> None:
    """Several sessions select the mailbox at once: they must all see the same messages."""
    seen: list[list[tuple[int, frozenset[str] | None]]] = []
    for n in range(sessions):
        client = Client(-1 - n, options, shared, 0.0)
        view = View(shared, -1 - n, f"checkpoint {n}")
        connection = await client.connect()
        try:
            await client._send(connection, view, [
                ("LOGIN", f'LOGIN "{options.user}" "{options.password}"'),
                ("SELECT", f'SELECT "{options.mailbox}"'),
            ])  # fmt: skip
            if view.uids:
                command = "FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE)"
                reply = await connection.command(command)
                view.apply(reply, command)
            if 0 in view.uids:
                view.fail("FETCH 1:* left messages without their UID")
            seen.append(list(zip(view.uids, view.flags, strict=True)))
        finally:
            await connection.close()
    for n, other in enumerate(seen[1:], 1):
        if other != seen[0]:
            shared.fail(f"checkpoint {n}", "sees another mailbox than checkpoint 0")


async def stress(options: Options) -> Result:
    source = options.source or MailSource(generate(), run=f"{options.seed}-{time.time_ns()}")
    shared = Shared(source)
    started = time.monotonic()
    stop = started + options.seconds
    clients = [Client(n, options, shared, stop) for n in range(options.clients)]
    await asyncio.gather(*(c.run() for c in clients))
    elapsed = time.monotonic() - started
    await _checkpoint(options, shared)
    return Result(elapsed, shared.counts, shared.errors, shared.sessions)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=2993)
    parser.add_argument("--tls", choices=["implicit", "starttls", "none"], default="implicit")
    parser.add_argument("--cafile", type=Path, help="CA to trust (default: the system's)")
    parser.add_argument("--insecure", action="store_true", help="accept any certificate")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--mailbox", default="INBOX")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mbox", type=Path, help="append messages from this mbox file")


def main(args: argparse.Namespace) -> int:
    tls: ssl.SSLContext | None = None
    if args.tls != "none":
        tls = ssl.create_default_context(cafile=str(args.cafile) if args.cafile else None)
        if args.insecure:
            tls.check_hostname = False
            tls.verify_mode = ssl.CERT_NONE
    templates = read_mbox(args.mbox) if args.mbox else generate()
    options = Options(
        host=args.host, port=args.port, tls=tls, starttls=args.tls == "starttls",
        user=args.user, password=args.password, mailbox=args.mailbox, clients=args.clients,
        seconds=args.seconds, seed=args.seed,
        source=MailSource(templates, run=f"{args.seed}-{time.time_ns()}"),
    )  # fmt: skip
    result = asyncio.run(stress(options))
    print(result.table())
    print(f"{result.sessions} sessions, {len(result.errors)} errors")
    for error in result.errors[:30]:
        print(f"  {error}")
    return 1 if result.errors else 0
