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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.imapwire import WireError, fetch_items, parse_values, render
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
_NUMBERED = re.compile(rb"\* (\d+) ([A-Za-z]+)(.*)", re.DOTALL)
_WORD = re.compile(rb"\* ([A-Za-z]+)(.*)", re.DOTALL)
_CODE = re.compile(rb"\[([A-Z-]+)(?: ([^\]]*))?\]")
_STATUS = re.compile(rb"\(([^)]*)\)")
_FLAGS_ITEM = re.compile(rb"FLAGS \(([^)]*)\)")
_ERROR_LIMIT = 200


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


@dataclass
class Shared:
    """What every client learns: the mailbox's UIDVALIDITY, each UID's contents."""

    source: MailSource
    uidvalidity: int | None = None
    facts: dict[int, dict[str, Any]] = field(default_factory=dict)
    recent_holder: dict[int, int] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    sessions: int = 0

    def fail(self, who: str, text: str) -> None:
        if len(self.errors) < _ERROR_LIMIT:
            self.errors.append(f"{who}: {text}")


def _header_end(raw: bytes) -> int:
    end = raw.find(b"\r\n\r\n")
    return len(raw) if end < 0 else end + 4


def expected_header_fields(raw: bytes, names: list[str]) -> bytes:
    """RFC 3501 §6.4.5 HEADER.FIELDS: the matching header lines, in order, and a blank line."""
    wanted = {n.lower() for n in names}
    head = raw[: _header_end(raw)]
    out: list[bytes] = []
    keep = False
    for line in head.split(b"\r\n")[:-2]:
        if line[:1] in (b" ", b"\t"):
            if keep:
                out.append(line)
            continue
        keep = line.split(b":", 1)[0].strip().decode("latin-1").lower() in wanted
        if keep:
            out.append(line)
    return b"".join(x + b"\r\n" for x in out) + b"\r\n"


def _message_id_of(raw: bytes) -> str | None:
    match = re.search(rb"^Message-ID:\s*(<[^>\r\n]*>)", raw[: _header_end(raw)], re.I | re.M)
    return match.group(1).decode() if match else None


class View:
    """One session's idea of the selected mailbox."""

    def __init__(self, shared: Shared, session: int, who: str) -> None:
        self.shared = shared
        self.session = session
        self.who = who
        self.uids: list[int] = []  # 0: not known yet
        self.flags: list[frozenset[str] | None] = []
        self.keywords: set[str] = set()
        self.selected = False

    def fail(self, text: str) -> None:
        self.shared.fail(self.who, text)

    # --- untagged responses -----------------------------------------------------------------

    def apply(self, reply: Reply, command: str) -> None:
        kind = command.split(" ", 1)[0].upper()
        for line in reply.lines:
            if line.startswith(b"+"):
                continue
            numbered = _NUMBERED.match(line)
            if numbered is not None:
                self._numbered(int(numbered.group(1)), numbered.group(2).upper(),
                               numbered.group(3), kind, command)  # fmt: skip
                continue
            word = _WORD.match(line)
            if word is None:
                self.fail(f"{command[:60]}: unparsable line {line[:80]!r}")
                continue
            self._word(word.group(1).upper(), word.group(2), kind, command)
        if reply.status == "BAD":
            self.fail(f"{command[:80]}: BAD {reply.tagged[:120]!r}")

    def _numbered(self, number: int, kind: bytes, rest: bytes, cmd: str, command: str) -> None:
        if kind == b"EXISTS":
            if number < len(self.uids):
                self.fail(f"{cmd}: message count dropped {len(self.uids)} -> {number}")
                del self.uids[number:], self.flags[number:]
            self.uids.extend([0] * (number - len(self.uids)))
            self.flags.extend([None] * (number - len(self.flags)))
        elif kind == b"RECENT":
            if number > len(self.uids):
                self.fail(f"{cmd}: RECENT {number} > EXISTS {len(self.uids)}")
        elif kind == b"EXPUNGE":
            if cmd in ("FETCH", "STORE", "SEARCH"):
                self.fail(f"{cmd}: EXPUNGE {number} sent during {cmd}")
            if not 1 <= number <= len(self.uids):
                self.fail(f"{cmd}: EXPUNGE {number} with {len(self.uids)} messages")
                return
            uid = self.uids.pop(number - 1)
            self.flags.pop(number - 1)
            if uid:
                self.shared.recent_holder.pop(uid, None)
        elif kind == b"FETCH":
            if not 1 <= number <= len(self.uids):
                self.fail(f"{cmd}: FETCH {number} with {len(self.uids)} messages")
                return
            try:
                values = parse_values(rest)
                if len(values) != 1 or not isinstance(values[0], list):
                    raise WireError("FETCH data is not one list")
                items = fetch_items(values[0])
            except WireError as exc:
                self.fail(f"{command[:60]}: broken FETCH {number}: {exc}")
                return
            self._fetch(number, items, command)
        else:
            self.fail(f"{cmd}: unknown response {number} {kind!r}")

    def _word(self, word: bytes, rest: bytes, cmd: str, command: str) -> None:
        if word == b"FLAGS":
            try:
                values = parse_values(rest)
            except WireError:
                values = []
            if len(values) != 1 or not isinstance(values[0], list):
                self.fail(f"{cmd}: broken FLAGS {rest[:80]!r}")
                return
            self.keywords = {v.decode() for v in values[0] if not v.startswith(b"\\")}
        elif word in (b"OK", b"NO"):
            code = _CODE.search(rest)
            if code is None:
                return
            name, value = code.group(1), code.group(2) or b""
            if name == b"PERMANENTFLAGS":
                for flag in value.strip(b"()").split():
                    if not flag.startswith(b"\\") and flag.decode() not in self.keywords:
                        self.fail(f"{cmd}: PERMANENTFLAGS keyword {flag!r} not in FLAGS")
            elif name == b"UIDVALIDITY":
                known = self.shared.uidvalidity
                if known is not None and known != int(value):
                    self.fail(f"{cmd}: UIDVALIDITY changed {known} -> {int(value)}")
                self.shared.uidvalidity = int(value)
        elif word == b"BAD":
            self.fail(f"{cmd}: untagged BAD {rest[:80]!r}")
        elif word == b"BYE":
            if cmd != "LOGOUT":
                self.fail(f"{cmd}: unexpected BYE{rest[:80]!r}")
        elif word == b"STATUS":
            self._status(rest, cmd)
        # LIST, SEARCH, CAPABILITY, ENABLED...: nothing to check against the model

    def _status(self, rest: bytes, cmd: str) -> None:
        match = _STATUS.search(rest)
        if match is None:
            self.fail(f"{cmd}: broken STATUS {rest[:80]!r}")
            return
        words = match.group(1).split()
        values = {words[i].upper(): int(words[i + 1]) for i in range(0, len(words) - 1, 2)}
        messages = values.get(b"MESSAGES", 0)
        for name in (b"UNSEEN", b"RECENT"):
            if values.get(name, 0) > messages:
                self.fail(f"STATUS: {name.decode()} {values[name]} > MESSAGES {messages}")

    def _fetch(self, seq: int, items: dict[str, Any], command: str) -> None:
        index = seq - 1
        uid_value = items.get("UID")
        if uid_value is not None:
            uid = int(uid_value)
            known = self.uids[index]
            if known and known != uid:
                self.fail(f"{command[:60]}: UID changed for sequence {seq}: {known} -> {uid}")
            self.uids[index] = uid
            before = next((u for u in reversed(self.uids[:index]) if u), 0)
            after = next((u for u in self.uids[index + 1 :] if u), None)
            if before >= uid or (after is not None and after <= uid):
                self.fail(f"{command[:60]}: UID {uid} out of order at {seq}")
        uid = self.uids[index]
        flags = items.get("FLAGS")
        if flags is not None:
            if not isinstance(flags, list):
                self.fail(f"{command[:60]}: FLAGS is not a list")
            else:
                self._flags(index, uid, flags, command)
        if uid:
            self._facts(uid, items, command)

    def _flags(self, index: int, uid: int, flags: list[Any], command: str) -> None:
        names = {f.decode() for f in flags}
        for name in names:
            if not name.startswith("\\") and name not in self.keywords:
                self.fail(f"{command[:60]}: keyword {name} used without being in FLAGS")
                self.keywords.add(name)
        if "\\Recent" in names and uid:
            holder = self.shared.recent_holder.setdefault(uid, self.session)
            if holder != self.session:
                self.fail(f"UID {uid} is \\Recent in two sessions ({holder}, {self.session})")
        self.flags[index] = frozenset(names - {"\\Recent"})

    def _facts(self, uid: int, items: dict[str, Any], command: str) -> None:
        facts = self.shared.facts.setdefault(uid, {})
        for name, value in items.items():
            if name in ("UID", "FLAGS", "MODSEQ") or _placeholder(name, value):
                continue  # RFC 2180 §4.1.3: NIL answers for a message expunged meanwhile
            canonical = render(value) if isinstance(value, list) else value
            if name == "ENVELOPE" and isinstance(value, list) and len(value) == 10:
                message_id = value[9].decode() if isinstance(value[9], bytes) else None
                self._learn_message_id(uid, facts, message_id)
            elif name in ("BODY[]", "BODY[HEADER]", "RFC822.HEADER", "RFC822") and value:
                self._learn_message_id(uid, facts, _message_id_of(value))
            old = facts.get(name)
            if old is None:
                facts[name] = canonical
            elif old != canonical:
                self.fail(f"UID {uid}: {name} changed {_short(old)} -> {_short(canonical)}")
        self._against_source(uid, items, facts)

    def _learn_message_id(self, uid: int, facts: dict[str, Any], message_id: str | None) -> None:
        if message_id is None:
            return
        known = facts.get("message-id")
        if known is not None and known != message_id:
            self.fail(f"UID {uid}: Message-ID changed {known} -> {message_id}")
        facts["message-id"] = message_id

    def _against_source(self, uid: int, items: dict[str, Any], facts: dict[str, Any]) -> None:
        raw = self.shared.source.by_message_id.get(facts.get("message-id") or "")
        if raw is None:
            return
        end = _header_end(raw)
        for name, value in items.items():
            if _placeholder(name, value):
                continue
            expected: Any = None
            if name == "RFC822.SIZE":
                expected, value = len(raw), int(value)
            elif name in ("BODY[]", "RFC822"):
                expected = raw
            elif name in ("BODY[HEADER]", "RFC822.HEADER"):
                expected = raw[:end]
            elif name in ("BODY[TEXT]", "RFC822.TEXT"):
                expected = raw[end:]
            elif name.startswith("BODY[HEADER.FIELDS ("):
                fields = name[len("BODY[HEADER.FIELDS (") :].split(")")[0].split()
                expected = expected_header_fields(raw, fields)
            if expected is not None and value != expected:
                self.fail(f"UID {uid} {name}: {_short(value)} but appended {_short(expected)}")


_NIL_BODY = [b"text", b"plain", None, None, None, b"7bit", b"0", b"0"]


def _placeholder(name: str, value: Any) -> bool:
    """What a server may answer for a message another session expunged (as imaptest allows)."""
    if value is None:
        return True
    if name == "RFC822.SIZE":
        return bool(value == b"0")
    if name == "ENVELOPE":
        return isinstance(value, list) and all(v is None for v in value)
    if name in ("BODY", "BODYSTRUCTURE"):
        return isinstance(value, list) and [v.lower() if isinstance(v, bytes) else v
                                            for v in value[:8]] == _NIL_BODY  # fmt: skip
    if name == "INTERNALDATE":
        return bool(value.startswith(b"01-Jan-1970"))
    return False


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 90 else text[:87] + "..."


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
