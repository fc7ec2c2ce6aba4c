"""The stress tool's model of the mailbox: what each client knows and checks.

`Shared` is what every client learns (UIDVALIDITY, what each UID holds); `View`
is one session's idea of the selected mailbox (sequence numbers → UIDs, flags,
keywords announced), which every untagged answer must agree with.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench.imapwire import WireError, fetch_items, parse_values, render
from bench.mailsource import MailSource
from mss.testing.imapclient import Reply

_NUMBERED = re.compile(rb"\* (\d+) ([A-Za-z]+)(.*)", re.DOTALL)
_WORD = re.compile(rb"\* ([A-Za-z]+)(.*)", re.DOTALL)
_CODE = re.compile(rb"\[([A-Z-]+)(?: ([^\]]*))?\]")
_STATUS = re.compile(rb"\(([^)]*)\)")
_ERROR_LIMIT = 200


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
