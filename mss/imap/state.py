"""An IMAP session: state, one `do_<command>` per command (RFC 3501 and extensions).

The preconditions (authenticated? a mailbox selected?) are checked once, from
the `COMMANDS` table, before dispatch. Each command reads and writes the store
(FETCH and SEARCH are queries; every change bumps the mailbox's modseq) and
appends its responses to the output; `ImapError` renders as NO or BAD with a
response code. The session's view of the selected mailbox (the UIDs behind the
message sequence numbers) changes only when the client may be told: new
messages and flag changes at any command's end, expunges only where RFC 3501
§7.4.1 allows them (never during FETCH, STORE or SEARCH).
"""

from __future__ import annotations

import asyncio
import bisect
import datetime as dt
import json
import logging
from array import array
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from sqlalchemy import Connection

from mss import __version__
from mss.core import sasl
from mss.core.mime import Envelope, Part
from mss.errors import MssError
from mss.imap import responses as r
from mss.imap import search as imap_search
from mss.imap.parsing.commands import Command
from mss.imap.parsing.fetch import FetchAtt
from mss.imap.parsing.search import SearchKey
from mss.imap.parsing.tokens import SeqRange, SequenceSet
from mss.imap.parsing.utf7 import MailboxNameError, decode, encode
from mss.security.auth import LoginIdentity, LoginResult, LoginService
from mss.security.pki import CertIdentity
from mss.store.accounts import get_account
from mss.store.api import Store
from mss.store.blobs import read_blob
from mss.store.folders import (
    DELIMITER,
    MailboxError,
    MailboxInfo,
    claim_recent,
    create_mailbox,
    data_version,
    delete_mailbox,
    get_mailbox,
    holds_more_than,
    list_mailboxes,
    mailbox_by_id,
    mailbox_marks,
    mailbox_status,
    normalize_name,
    rename_mailbox,
    set_subscribed,
)
from mss.store.mailboxes import INBOX, Target
from mss.store.messages import (
    FlagState,
    all_rows,
    copy_messages,
    deleted_uids,
    expunge_uids,
    expunged_since,
    flag_changes,
    flag_names,
    flag_rows,
    new_uids,
    parse_flags,
    rows_for,
    store_flags,
    uids_of,
)
from mss.store.models import message_table

log = logging.getLogger(__name__)
msg = message_table.c

SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
IDLE_LIMIT = 2 * 3600.0
# Reads bounded by these sizes run on the event loop (SQLite: microseconds);
# larger ones go to a reader thread so that no session stalls the others.
SMALL_MAILBOX = 5000  # messages: SELECT, STATUS, FETCH FLAGS of everything
SMALL_READ = (
    500  # messages: FETCH rows, SEARCH  # RFC 2177 §3: clients re-issue IDLE every 29 minutes
)


class State(Enum):
    NOT_AUTHENTICATED = 1
    AUTHENTICATED = 2
    SELECTED = 3
    LOGOUT = 4


class ImapError(Exception):
    """A refusal: `NO` or `BAD` with an optional response code (RFC 5530)."""

    def __init__(self, text: str, *, status: str = "NO", code: str | None = None) -> None:
        super().__init__(text)
        self.status = status
        self.code = code
        self.text = text

    def render(self, tag: str) -> bytes:
        code = f"[{self.code}] " if self.code else ""
        return f"{tag} {self.status} {code}{self.text}\r\n".encode()


def bad(text: str) -> ImapError:
    return ImapError(text, status="BAD")


class Channel(Protocol):
    """What a session needs of its connection (the server provides it)."""

    tls: bool
    peer_ip: str | None
    peer_certificate: CertIdentity | None

    async def write(self, data: bytes) -> None: ...

    async def read_line(self) -> bytes | None: ...

    async def start_tls(self) -> None: ...


@dataclass(frozen=True, kw_only=True)
class ImapConfig:
    hostname: str
    allow_patients: bool = False
    max_message_size: int = 25 * 1024 * 1024
    idle_limit: float = IDLE_LIMIT


class MailboxBus:
    """Which sessions watch which mailbox; wakes them after a commit (or a NOTIFY).

    It also lets sessions that ask the same question at the same time (what
    changed in mailbox M since modseq X?) share one query: a new message to a
    mailbox watched by thousands of IDLE sessions costs one read, not thousands.
    """

    def __init__(self) -> None:
        self._watchers: dict[int, set[Session]] = {}
        self._inflight: dict[tuple[int, ...], asyncio.Future[Any]] = {}
        # Bumped at every change of a mailbox: a read may only be shared by sessions
        # woken by the same change (one started earlier may miss a later change).
        self._generation: dict[int, int] = {}
        # (HIGHESTMODSEQ, UIDNEXT) last known of each mailbox (see `poll`)
        self._marks: dict[int, tuple[int, int]] = {}

    def generation(self, mailbox_id: int) -> int:
        return self._generation.get(mailbox_id, 0)

    async def shared(self, key: tuple[int, ...], read: Callable[[], Any]) -> Any:
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await read()
            future.set_result(result)
            return result
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()
            raise
        finally:
            del self._inflight[key]

    def watch(self, mailbox_id: int, session: Session) -> None:
        self._watchers.setdefault(mailbox_id, set()).add(session)

    def unwatch(self, mailbox_id: int, session: Session) -> None:
        watchers = self._watchers.get(mailbox_id)
        if watchers is not None:
            watchers.discard(session)
            if not watchers:
                del self._watchers[mailbox_id]

    def changed(self, mailbox_ids: Collection[int] | None) -> None:
        """Wake the sessions watching these mailboxes (None: every mailbox)."""
        for mailbox_id in list(self._watchers) if mailbox_ids is None else mailbox_ids:
            self._generation[mailbox_id] = self._generation.get(mailbox_id, 0) + 1
            for session in self._watchers.get(mailbox_id, ()):
                session.poke()

    def committed(self, marks: dict[int, tuple[int, int]]) -> None:
        """This process committed changes: (HIGHESTMODSEQ, UIDNEXT) of each mailbox."""
        for mailbox_id, mark in marks.items():
            if mark[0] or mark[1]:
                self._marks[mailbox_id] = mark
            else:
                self._marks.pop(mailbox_id, None)  # deleted or renamed
        self.changed(marks)

    async def poll(self, store: Store, interval: float = 0.1) -> None:
        """Other processes' changes on SQLite (several workers): look for them every
        `interval` seconds, only when a commit happened since (PRAGMA data_version),
        and only in the mailboxes this process's sessions watch."""
        seen: list[int | None] = [None]

        def look(conn: Connection, boxes: list[int]) -> dict[int, tuple[int, int]] | None:
            version = data_version(conn)
            if version == seen[0]:
                return None
            seen[0] = version
            return mailbox_marks(conn, boxes)

        while True:
            await asyncio.sleep(interval)
            boxes = sorted(self._watchers)
            if not boxes:
                continue
            try:
                marks = await store.read_fast(lambda c, boxes=boxes: look(c, boxes))  # type: ignore[misc]
            except MssError:
                log.exception("IMAP change poll failed")
                continue
            if marks is None:
                continue
            moved = [b for b in boxes if marks.get(b) != self._marks.get(b)]
            self._marks.update(marks)
            if moved:
                self.changed(moved)

    @property
    def sessions(self) -> int:
        return sum(len(s) for s in self._watchers.values())


@dataclass
class Selected:
    info: MailboxInfo
    readonly: bool
    uids: array[int]
    modseq: int  # changes up to this modseq are known to the client
    last_uid: int  # largest UID the client has been told of
    recent: set[int] = field(default_factory=set)
    keywords: set[str] = field(default_factory=set)  # announced to the client in FLAGS
    pending_expunges: set[int] = field(default_factory=set)
    own_changes: dict[int, int] = field(default_factory=dict)  # uid -> modseq set by us

    def seq_of(self, uid: int) -> int | None:
        index = bisect.bisect_left(self.uids, uid)
        if index < len(self.uids) and self.uids[index] == uid:
            return index + 1
        return None


# command -> (states it is allowed in)
_ANY = frozenset({State.NOT_AUTHENTICATED, State.AUTHENTICATED, State.SELECTED})
_AUTH = frozenset({State.AUTHENTICATED, State.SELECTED})
_SEL = frozenset({State.SELECTED})
COMMANDS: dict[str, frozenset[State]] = {
    "CAPABILITY": _ANY,
    "NOOP": _ANY,
    "LOGOUT": _ANY,
    "ID": _ANY,
    "STARTTLS": frozenset({State.NOT_AUTHENTICATED}),
    "AUTHENTICATE": frozenset({State.NOT_AUTHENTICATED}),
    "LOGIN": frozenset({State.NOT_AUTHENTICATED}),
    "ENABLE": _AUTH,
    "SELECT": _AUTH,
    "EXAMINE": _AUTH,
    "CREATE": _AUTH,
    "DELETE": _AUTH,
    "RENAME": _AUTH,
    "SUBSCRIBE": _AUTH,
    "UNSUBSCRIBE": _AUTH,
    "LIST": _AUTH,
    "LSUB": _AUTH,
    "STATUS": _AUTH,
    "APPEND": _AUTH,
    "NAMESPACE": _AUTH,
    "IDLE": _AUTH,
    "CHECK": _SEL,
    "CLOSE": _SEL,
    "UNSELECT": _SEL,
    "EXPUNGE": _SEL,
    "SEARCH": _SEL,
    "FETCH": _SEL,
    "STORE": _SEL,
    "COPY": _SEL,
    "MOVE": _SEL,
    "UID FETCH": _SEL,
    "UID SEARCH": _SEL,
    "UID STORE": _SEL,
    "UID COPY": _SEL,
    "UID MOVE": _SEL,
    "UID EXPUNGE": _SEL,
}
# RFC 3501 §7.4.1: no EXPUNGE response while answering these.
NO_EXPUNGE_RESPONSES = frozenset({"FETCH", "STORE", "SEARCH"})
BODY_COLUMNS = (msg.blob_id, msg.body_structure)


def _seq_set(ranges: SequenceSet, largest: int) -> list[tuple[int, int]]:
    out = []
    for rng in ranges:
        start = largest if rng.start is None else rng.start
        end = largest if rng.end is None else rng.end
        out.append((min(start, end), max(start, end)))
    return out


def _compress(numbers: Sequence[int]) -> str:
    """1,2,3,5 → "1:3,5" (a sequence set)."""
    parts: list[str] = []
    start = prev = None
    for n in numbers:
        if start is None:
            start = prev = n
        elif n == prev + 1:  # type: ignore[operator]
            prev = n
        else:
            parts.append(f"{start}:{prev}" if start != prev else str(start))
            start = prev = n
    if start is not None:
        parts.append(f"{start}:{prev}" if start != prev else str(start))
    return ",".join(parts)


class Session:
    def __init__(
        self,
        channel: Channel,
        store: Store,
        logins: LoginService,
        bus: MailboxBus,
        config: ImapConfig,
    ) -> None:
        self.channel = channel
        self.store = store
        self.logins = logins
        self.bus = bus
        self.config = config
        self.state = State.NOT_AUTHENTICATED
        self.identity: LoginIdentity | None = None
        self.account_id: int | None = None
        self.selected: Selected | None = None
        self.condstore = False
        self._out: list[bytes] = []
        self._poked = asyncio.Event()
        self._changed = False

    async def _read(self, fn: Callable[[Connection], Any], *, small: bool) -> Any:
        """Small reads run on the event loop (SQLite), big ones on a reader thread."""
        return await (self.store.read_fast(fn) if small else self.store.read(fn))

    # --- output -------------------------------------------------------------------------------

    def untagged(self, data: bytes | str) -> None:
        self._out.append(b"* " + (data.encode() if isinstance(data, str) else data) + b"\r\n")

    async def flush(self) -> None:
        if self._out:
            data = b"".join(self._out)
            self._out.clear()
            await self.channel.write(data)

    def close(self) -> None:
        """The connection is gone: stop watching the mailbox."""
        self._deselect()

    def poke(self) -> None:
        """Another session (or a delivery) changed the selected mailbox."""
        self._changed = True
        self._poked.set()

    # --- capabilities and greeting --------------------------------------------------------

    def capabilities(self) -> str:
        caps = ["IMAP4rev1", "SASL-IR", "ID", "ENABLE", "IDLE", "LITERAL+", "NAMESPACE"]
        if self.state is State.NOT_AUTHENTICATED:
            if not self.channel.tls:
                caps += ["STARTTLS", "LOGINDISABLED"]
            else:
                caps.append("AUTH=PLAIN")
                if self.logins.bearer_enabled:
                    caps += ["AUTH=XOAUTH2", "AUTH=OAUTHBEARER"]
                if self.channel.peer_certificate is not None:
                    caps.append("AUTH=EXTERNAL")
        else:
            caps += [
                "UIDPLUS",
                "MOVE",
                "SPECIAL-USE",
                "CREATE-SPECIAL-USE",
                "CHILDREN",
                "UNSELECT",
                "BINARY",
                "CONDSTORE",
                "ESEARCH",
                "WITHIN",
                "LIST-EXTENDED",
            ]
        return " ".join(caps)

    def greeting(self) -> bytes:
        caps, host = self.capabilities(), self.config.hostname
        return f"* OK [CAPABILITY {caps}] {host} mss IMAP4rev1 ready\r\n".encode()

    # --- dispatch --------------------------------------------------------------------------

    async def run(self, command: Command) -> None:
        allowed = COMMANDS.get(command.name)
        handler = getattr(self, "do_" + command.name.replace(" ", "_"), None)
        try:
            if allowed is None or handler is None:
                raise bad(f"unknown command {command.name}")
            if self.state not in allowed:
                raise bad(self._wrong_state(command.name))
            ok = await handler(command)
            if self.state is State.SELECTED and command.name not in ("LOGOUT", "IDLE"):
                await self.sync(expunges=command.name not in NO_EXPUNGE_RESPONSES)
            self._out.append(f"{command.tag} OK {ok or command.name + ' completed'}\r\n".encode())
        except _AlreadyAnswered:
            return
        except ImapError as exc:
            self._out.append(exc.render(command.tag))
        except MailboxError as exc:
            self._out.append(ImapError(str(exc), code=exc.code).render(command.tag))
        except Exception:  # a bug must not cost the connection: log it, answer NO
            log.exception("IMAP %s failed", command.name)
            self._out.append(
                ImapError("Erreur temporaire du serveur (server error)", code="SERVERBUG").render(
                    command.tag
                )
            )
        await self.flush()

    def _wrong_state(self, name: str) -> str:
        if self.state is State.NOT_AUTHENTICATED:
            return f"{name} needs authentication first"
        if COMMANDS[name] == _SEL:
            return f"{name} needs a selected mailbox"
        return f"{name} is not allowed now"

    # --- any state ----------------------------------------------------------------------

    async def do_CAPABILITY(self, command: Command) -> None:
        self.untagged("CAPABILITY " + self.capabilities())

    async def do_NOOP(self, command: Command) -> None:
        return None

    async def do_LOGOUT(self, command: Command) -> str:
        self.untagged("BYE mss IMAP4rev1 server logging out")
        self._deselect()
        self.state = State.LOGOUT
        return "LOGOUT completed"

    async def do_ID(self, command: Command) -> None:
        self.untagged(f'ID ("name" "mss" "version" "{__version__}" "vendor" "mss")')

    async def do_ENABLE(self, command: Command) -> None:
        enabled = []
        for capability in command.args["capabilities"]:
            if capability == "CONDSTORE":
                self.condstore = True
                enabled.append(capability)
        self.untagged("ENABLED" + "".join(f" {c}" for c in enabled))

    # --- not authenticated ----------------------------------------------------------------

    async def do_STARTTLS(self, command: Command) -> None:
        if self.channel.tls:
            raise bad("TLS is already active")
        self._out.append(f"{command.tag} OK Begin TLS negotiation now\r\n".encode())
        await self.flush()
        await self.channel.start_tls()
        raise _AlreadyAnswered

    def _kinds(self) -> tuple[str, ...]:
        base = ("professional", "applicative")
        return (*base, "patient") if self.config.allow_patients else base

    async def _login(self, result: LoginResult) -> str:
        if result.throttled:
            raise ImapError(
                "Trop d'échecs, réessayez plus tard (too many failures)", code="UNAVAILABLE"
            )
        if result.identity is None:
            raise ImapError(
                "Identifiants invalides (authentication failed)", code="AUTHENTICATIONFAILED"
            )
        account = await self.store.read_fast(lambda c: get_account(c, result.identity.address))  # type: ignore[union-attr]
        if account is None:
            raise ImapError(
                "Identifiants invalides (authentication failed)", code="AUTHENTICATIONFAILED"
            )
        self.identity = result.identity
        self.account_id = account.id
        self.state = State.AUTHENTICATED
        return f"[CAPABILITY {self.capabilities()}] Logged in"

    async def do_LOGIN(self, command: Command) -> str:
        if not self.channel.tls:
            raise ImapError("LOGIN only over TLS (use STARTTLS)", code="PRIVACYREQUIRED")
        result = await self.logins.with_password(
            command.args["user"], command.args["password"], self.channel.peer_ip, self._kinds()
        )
        return await self._login(result)

    async def do_AUTHENTICATE(self, command: Command) -> str:
        mechanism = command.args["mechanism"]
        if not self.channel.tls:
            raise ImapError("Authentication only over TLS (use STARTTLS)", code="PRIVACYREQUIRED")
        if mechanism not in ("PLAIN", "XOAUTH2", "OAUTHBEARER", "EXTERNAL"):
            raise ImapError(f"mechanism {mechanism} is not supported", code="CANNOT")
        if mechanism in ("XOAUTH2", "OAUTHBEARER") and not self.logins.bearer_enabled:
            raise ImapError(f"mechanism {mechanism} is not configured", code="CANNOT")
        raw = await self._sasl_response(command.args["initial"])
        ip, kinds = self.channel.peer_ip, self._kinds()
        try:
            if mechanism == "PLAIN":
                creds = sasl.parse_plain(raw)
                if creds.authzid and creds.authzid.lower() != creds.authcid.lower():
                    raise ImapError("authorization identity refused", code="AUTHORIZATIONFAILED")
                result = await self.logins.with_password(creds.authcid, creds.password, ip, kinds)
            elif mechanism == "EXTERNAL":
                result = await self.logins.with_certificate(
                    self.channel.peer_certificate, sasl.parse_external(raw), ip, kinds
                )
            else:
                parse = sasl.parse_xoauth2 if mechanism == "XOAUTH2" else sasl.parse_oauthbearer
                bearer = parse(raw)
                result = await self.logins.with_bearer(bearer.user, bearer.token, ip, kinds)
                if not result.ok and not result.throttled:
                    await self._sasl_error_challenge()
        except sasl.SaslError as exc:
            raise bad(f"malformed {mechanism} data: {exc}") from None
        return await self._login(result)

    async def _sasl_response(self, initial: str | None) -> bytes:
        if initial is not None:
            if initial == "=":
                return b""
            try:
                return sasl.decode_base64(initial)
            except sasl.SaslError:
                raise bad("initial response is not base64") from None
        await self.channel.write(b"+ \r\n")
        line = await self.channel.read_line()
        if line is None:
            raise bad("connection closed during authentication")
        if line.strip() == b"*":
            raise bad("authentication cancelled")
        try:
            return sasl.decode_base64(line.strip())
        except sasl.SaslError:
            raise bad("response is not base64") from None

    async def _sasl_error_challenge(self) -> None:
        """RFC 7628 §3.2.2: an error challenge; the client answers with an empty line."""
        import base64

        await self.channel.write(
            b"+ " + base64.b64encode(b'{"status":"401","schemes":"bearer"}') + b"\r\n"
        )
        await self.channel.read_line()

    # --- authenticated: mailboxes ---------------------------------------------------------

    @staticmethod
    def _name(raw: str) -> str:
        try:
            return decode(raw)
        except MailboxNameError as exc:
            raise bad(str(exc)) from None

    def _account(self) -> int:
        assert self.account_id is not None
        return self.account_id

    async def _mailbox(self, raw: str, *, code: str = "NONEXISTENT") -> MailboxInfo:
        name = self._name(raw)
        box = await self.store.read_fast(lambda c: get_mailbox(c, self._account(), name))
        if box is None:
            raise ImapError("Boîte inexistante (no such mailbox)", code=code)
        return box

    async def do_SELECT(self, command: Command) -> str:
        return await self._select(command, readonly=False)

    async def do_EXAMINE(self, command: Command) -> str:
        return await self._select(command, readonly=True)

    async def _select(self, command: Command, *, readonly: bool) -> str:
        self._deselect()
        if command.args.get("condstore"):
            self.condstore = True
        box = await self._mailbox(command.args["mailbox"])
        recent_range = (0, 0)
        if not readonly:
            recent_range = await self.store.write(lambda tx: claim_recent(tx, box.id))

        def load(conn: Connection) -> tuple[MailboxInfo | None, array[int], Any]:
            current = mailbox_by_id(conn, box.id)
            if current is None:
                return None, array("I"), None
            return current, uids_of(conn, box.id), mailbox_status(conn, current)

        big = await self.store.read_fast(lambda c: holds_more_than(c, box.id, SMALL_MAILBOX))
        current, uids, status = await self._read(load, small=not big)
        if current is None:
            raise ImapError("Boîte inexistante (no such mailbox)", code="NONEXISTENT")
        first, uidnext = recent_range
        recent = (
            {u for u in uids[bisect.bisect_left(uids, first) :] if u < uidnext} if first else set()
        )
        self.selected = Selected(
            current,
            readonly,
            uids,
            current.highestmodseq,
            (uids[-1] if uids else 0),
            recent,
        )
        self.selected.keywords.update(current.keywords)
        self.bus.watch(current.id, self)
        self._changed = False
        self._announce_flags()
        self.untagged(f"{len(uids)} EXISTS")
        self.untagged(f"{len(recent)} RECENT")
        if status.first_unseen_uid is not None:
            seq = self.selected.seq_of(status.first_unseen_uid)
            if seq is not None:
                self.untagged(f"OK [UNSEEN {seq}] First unseen")
        self.untagged(f"OK [UIDVALIDITY {current.uidvalidity}] UIDs valid")
        self.untagged(f"OK [UIDNEXT {current.uidnext}] Predicted next UID")
        self.untagged(f"OK [HIGHESTMODSEQ {current.highestmodseq}] Highest")
        self.state = State.SELECTED
        return f"[{'READ-ONLY' if readonly else 'READ-WRITE'}] {command.name} completed"

    def _deselect(self) -> None:
        if self.selected is not None:
            self.bus.unwatch(self.selected.info.id, self)
            self.selected = None
        if self.state is State.SELECTED:
            self.state = State.AUTHENTICATED

    async def do_CREATE(self, command: Command) -> None:
        name = self._name(command.args["mailbox"]).rstrip(DELIMITER)
        uses = [
            u
            for u in command.args["use"]
            if u.lower()
            in ("\\sent", "\\drafts", "\\trash", "\\junk", "\\archive", "\\all", "\\flagged")
        ]
        if len(uses) != len(command.args["use"]):
            raise ImapError("unknown special use", code="USEATTR")

        def create(tx: Any) -> None:
            parts = name.split(DELIMITER)
            for depth in range(1, len(parts)):  # missing parents are created too
                parent = DELIMITER.join(parts[:depth])
                if get_mailbox(tx.conn, self._account(), parent) is None:
                    create_mailbox(tx, self._account(), parent)
            create_mailbox(tx, self._account(), name, uses[0] if uses else None)

        await self.store.write(create)

    async def do_DELETE(self, command: Command) -> None:
        name = self._name(command.args["mailbox"])
        if self.selected is not None and self.selected.info.name == name:
            self._deselect()
        await self.store.write(lambda tx: delete_mailbox(tx, self._account(), name))

    async def do_RENAME(self, command: Command) -> None:
        old, new = self._name(command.args["mailbox"]), self._name(command.args["new"])
        await self.store.write(lambda tx: rename_mailbox(tx, self._account(), old, new))

    async def do_SUBSCRIBE(self, command: Command) -> None:
        name = self._name(command.args["mailbox"])
        await self.store.write(lambda tx: set_subscribed(tx, self._account(), name, True))

    async def do_UNSUBSCRIBE(self, command: Command) -> None:
        name = self._name(command.args["mailbox"])
        await self.store.write(lambda tx: set_subscribed(tx, self._account(), name, False))

    async def do_NAMESPACE(self, command: Command) -> None:
        self.untagged(f'NAMESPACE (("" "{DELIMITER}")) NIL NIL')

    async def do_LIST(self, command: Command) -> None:
        await self._list(command, lsub=False)

    async def do_LSUB(self, command: Command) -> None:
        await self._list(command, lsub=True)

    async def _list(self, command: Command, *, lsub: bool) -> None:
        args = command.args
        reference = self._name(args["reference"])
        patterns = [self._name(p) for p in args["patterns"]]
        keyword = "LSUB" if lsub else "LIST"
        if patterns == [""]:
            self.untagged(f'{keyword} (\\Noselect) "{DELIMITER}" ""')
            return
        boxes = await self.store.read_fast(lambda c: list_mailboxes(c, self._account()))
        names = {b.name: b for b in boxes}
        subscribed_only = "SUBSCRIBED" in args["selection"]
        special_only = "SPECIAL-USE" in args["selection"]
        want_special = "SPECIAL-USE" in args["return"] or not args["return"]
        candidates = set(names)
        for name in names:  # implied parents of deeper names (shown \Noselect)
            parts = name.split(DELIMITER)
            candidates.update(DELIMITER.join(parts[:i]) for i in range(1, len(parts)))
        matchers = [_matcher(normalize_name(reference + p)) for p in patterns]
        for name in sorted(candidates, key=lambda n: (n != INBOX, n)):
            if not any(m(name) for m in matchers):
                continue
            box = names.get(name)
            if (lsub or subscribed_only) and (box is None or not box.subscribed):
                continue
            if special_only and (box is None or not box.special_use):
                continue
            attributes = []
            if box is None:
                attributes.append("\\Noselect")  # an implied parent of deeper names
            has_children = any(other.startswith(name + DELIMITER) for other in names)
            if not lsub:
                attributes.append("\\HasChildren" if has_children else "\\HasNoChildren")
                if subscribed_only and box is not None:
                    attributes.append("\\Subscribed")
            if box is not None and box.special_use and want_special:
                attributes.append(box.special_use)
            self.untagged(
                f'{keyword} ({" ".join(attributes)}) "{DELIMITER}" '.encode()
                + r.astring(encode(name))
            )

    async def do_STATUS(self, command: Command) -> None:
        box = await self._mailbox(command.args["mailbox"])
        status = await self._read(
            lambda c: mailbox_status(c, box), small=box.uidnext <= SMALL_MAILBOX
        )
        values = {
            "MESSAGES": status.messages,
            "RECENT": status.recent,
            "UIDNEXT": box.uidnext,
            "UIDVALIDITY": box.uidvalidity,
            "UNSEEN": status.unseen,
            "HIGHESTMODSEQ": box.highestmodseq,
            "SIZE": status.size,
        }
        items = " ".join(f"{item} {values[item]}" for item in command.args["items"])
        self.untagged(b"STATUS " + r.astring(encode(box.name)) + f" ({items})".encode())

    async def do_APPEND(self, command: Command) -> str:
        args = command.args
        box = await self._mailbox(args["mailbox"], code="TRYCREATE")
        message: bytes = args["message"]
        if len(message) > self.config.max_message_size:
            raise ImapError("Message trop volumineux (message too big)", code="TOOBIG")
        bits, keywords = parse_flags(args["flags"])
        date: dt.datetime | None = args["date"]
        when = int(date.timestamp()) if date else None
        target = Target(box.id, bits, " ".join(sorted(keywords)) or None)
        delivered = await self.store.deliver(message, [target], internal_date=when)
        uid = delivered.copies[0].uid
        return f"[APPENDUID {box.uidvalidity} {uid}] APPEND completed"

    async def do_IDLE(self, command: Command) -> None:
        await self.channel.write(b"+ idling\r\n")
        if self.selected is not None:
            await self.sync(expunges=True)
            await self.flush()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.idle_limit
        reader = asyncio.ensure_future(self.channel.read_line())
        try:
            while True:
                self._poked.clear()
                waiter = asyncio.ensure_future(self._poked.wait())
                remaining = deadline - loop.time()
                done, _ = await asyncio.wait(
                    {reader, waiter},
                    timeout=max(0.0, remaining),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                waiter.cancel()
                if reader in done:
                    line = reader.result()
                    if line is None:
                        raise ConnectionResetError("closed during IDLE")
                    if line.strip().upper() != b"DONE":
                        raise bad("expected DONE")
                    return
                if not done:
                    self.untagged("BYE IDLE for too long")
                    await self.flush()
                    raise ConnectionResetError("IDLE limit")
                if self.selected is not None:
                    await self.sync(expunges=True)
                    await self.flush()
        finally:
            if not reader.done():
                reader.cancel()

    # --- selected ------------------------------------------------------------------------------

    def _sel(self) -> Selected:
        assert self.selected is not None
        return self.selected

    async def do_CHECK(self, command: Command) -> None:
        return None

    async def do_CLOSE(self, command: Command) -> None:
        sel = self._sel()
        if not sel.readonly:
            await self.store.write(
                lambda tx: expunge_uids(tx, sel.info.id, deleted_uids(tx.conn, sel.info.id))
            )
        self._deselect()

    async def do_UNSELECT(self, command: Command) -> None:
        self._deselect()

    async def do_EXPUNGE(self, command: Command) -> None:
        await self._expunge(None)

    async def do_UID_EXPUNGE(self, command: Command) -> None:
        uids = self._uids_of_uid_set(command.args["sequence"])
        await self._expunge(uids)

    async def _expunge(self, among: list[int] | None) -> None:
        sel = self._sel()
        if sel.readonly:
            raise ImapError("La boîte est en lecture seule (read-only)", code="READ-ONLY")
        removed = await self.store.write(
            lambda tx: expunge_uids(tx, sel.info.id, deleted_uids(tx.conn, sel.info.id, among))
        )
        sel.pending_expunges.update(removed)
        self._announce_expunges()

    # sequence sets --------------------------------------------------------------------------

    def _uids_of_seq_set(self, ranges: SequenceSet) -> list[int]:
        sel = self._sel()
        count = len(sel.uids)
        uids: set[int] = set()
        for start, end in _seq_set(ranges, count):
            if count == 0 or end > count:
                raise bad("Invalid message sequence number")
            uids.update(sel.uids[start - 1 : end])
        return sorted(uids)

    def _uids_of_uid_set(self, ranges: SequenceSet) -> list[int]:
        sel = self._sel()
        largest = sel.uids[-1] if sel.uids else 0
        out: set[int] = set()
        for start, end in _seq_set(ranges, largest):
            lo = bisect.bisect_left(sel.uids, start)
            hi = bisect.bisect_right(sel.uids, end)
            out.update(sel.uids[lo:hi])
        return sorted(out)

    def _resolve(self, command: Command) -> list[int]:
        if command.name.startswith("UID "):
            return self._uids_of_uid_set(command.args["sequence"])
        return self._uids_of_seq_set(command.args["sequence"])

    # FETCH ------------------------------------------------------------------------------------

    async def do_FETCH(self, command: Command) -> None:
        await self._fetch(command, by_uid=False)

    async def do_UID_FETCH(self, command: Command) -> None:
        await self._fetch(command, by_uid=True)

    async def _fetch(self, command: Command, *, by_uid: bool) -> None:
        sel = self._sel()
        atts: list[FetchAtt] = list(command.args["atts"])
        changed_since = command.args["changed_since"]
        names = {a.name for a in atts}
        if by_uid and "UID" not in names:
            atts.insert(0, FetchAtt("UID"))
        if changed_since is not None or "MODSEQ" in names:
            self.condstore = True
            if "MODSEQ" not in names:
                atts.append(FetchAtt("MODSEQ"))
        uids = self._resolve(command)
        if not uids:
            return
        if {a.name for a in atts} <= {"UID", "FLAGS", "MODSEQ"}:
            await self._fetch_flags(atts, uids, changed_since)
            return
        sets_seen = (
            not sel.readonly and any(a.section is not None and not a.peek for a in atts)
        ) or (not sel.readonly and names & {"RFC822", "RFC822.TEXT"})
        columns = self._columns(atts)
        newly_seen: set[int] = set()
        if sets_seen:
            result = await self.store.write(
                lambda tx: store_flags(tx, sel.info.id, uids, "add", ["\\Seen"])
            )
            for state in result.changed:
                sel.own_changes[state.uid] = state.modseq
                newly_seen.add(state.uid)
        if newly_seen and "FLAGS" not in names:
            atts.append(FetchAtt("FLAGS"))  # RFC 3501 §6.4.5: tell the client \Seen was set

        def load(conn: Connection) -> Any:
            if len(uids) == len(sel.uids) and changed_since is None:
                return {row[0]: row for row in all_rows(conn, sel.info.id, columns)}
            return rows_for(conn, sel.info.id, uids, columns)

        rows = await self._read(load, small=len(uids) <= SMALL_READ)
        blob_cache: dict[int, bytes] = {}
        column_index = {c.key: i + 1 for i, c in enumerate(columns)}
        for uid in uids:
            row = rows.get(uid)
            if row is None:
                continue  # expunged by another session, not announced yet
            if changed_since is not None and row[column_index["modseq"]] <= changed_since:
                continue
            seq = sel.seq_of(uid)
            if seq is None:
                continue
            wanted = (
                atts
                if uid in newly_seen or "FLAGS" in names
                else [a for a in atts if a.name != "FLAGS"]
            )
            items = await self._fetch_items(wanted, uid, row, column_index, blob_cache)
            self._out.append(b"* %d FETCH (" % seq + b" ".join(items) + b")\r\n")
            if len(self._out) >= 256:
                await self.flush()

    async def _fetch_flags(
        self, atts: list[FetchAtt], uids: list[int], changed_since: int | None
    ) -> None:
        """FETCH of UID, FLAGS, MODSEQ only (what clients sync with): one query, tight loop."""
        sel = self._sel()
        everything = len(uids) == len(sel.uids)
        rows = await self._read(
            lambda c: flag_rows(c, sel.info.id, None if everything else uids),
            small=len(uids) <= SMALL_MAILBOX,
        )
        names = [a.name for a in atts]
        recent = sel.recent
        rendered: dict[tuple[int, str | None, bool], bytes] = {}
        out = self._out
        seq_of = sel.seq_of
        for uid, bits, keywords, modseq in rows:
            if changed_since is not None and modseq <= changed_since:
                continue
            seq = seq_of(uid)
            if seq is None:
                continue
            items = []
            for name in names:
                if name == "UID":
                    items.append(b"UID %d" % uid)
                elif name == "FLAGS":
                    key = (bits, keywords, uid in recent)
                    text = rendered.get(key)
                    if text is None:
                        text = rendered[key] = b"FLAGS " + self._flag_list(uid, bits, keywords)
                    items.append(text)
                else:
                    items.append(b"MODSEQ (%d)" % modseq)
            out.append(b"* %d FETCH (%s)\r\n" % (seq, b" ".join(items)))
            if len(out) >= 4096:
                await self.flush()

    @staticmethod
    def _columns(atts: list[FetchAtt]) -> list[Any]:
        wanted: dict[str, Any] = {
            "flags": msg.flags,
            "keywords": msg.keywords,
            "modseq": msg.modseq,
        }
        for att in atts:
            if att.name == "INTERNALDATE":
                wanted["internal_date"] = msg.internal_date
            elif att.name == "RFC822.SIZE":
                wanted["size"] = msg.size
            elif att.name == "ENVELOPE":
                wanted["envelope"] = msg.envelope
            elif (
                att.name in ("BODY", "BODYSTRUCTURE")
                or att.section is not None
                or att.name.startswith("RFC822")
            ):
                wanted["body_structure"] = msg.body_structure
                if att.name != "BODYSTRUCTURE" and not (att.name == "BODY" and att.section is None):
                    wanted["blob_id"] = msg.blob_id
        return list(wanted.values())

    def _flag_list(self, uid: int, bits: int, keywords: str | None) -> bytes:
        sel = self._sel()
        names = flag_names(bits, keywords)
        if keywords and not sel.keywords.issuperset(keywords.split()):
            # RFC 3501 §7.2.6: a keyword is in FLAGS before any message shows it
            sel.keywords.update(keywords.split())
            self._announce_flags()
        if uid in sel.recent:
            names.append("\\Recent")
        return r.flags(names)

    def _announce_flags(self) -> None:
        sel = self._sel()
        names = [*SYSTEM_FLAGS, *sorted(sel.keywords)]
        self.untagged(b"FLAGS " + r.flags(names))
        permanent = b"()" if sel.readonly else r.flags([*names, "\\*"])
        self.untagged(b"OK [PERMANENTFLAGS " + permanent + b"] Flags permitted")

    async def _fetch_items(
        self, atts: list[FetchAtt], uid: int, row: Any, col: dict[str, int], blobs: dict[int, bytes]
    ) -> list[bytes]:
        items: list[bytes] = []
        structure: Part | None = None
        raw: bytes | None = None
        for att in atts:
            name = att.name
            if name == "UID":
                items.append(b"UID %d" % uid)
            elif name == "FLAGS":
                items.append(
                    b"FLAGS " + self._flag_list(uid, row[col["flags"]], row[col["keywords"]])
                )
            elif name == "MODSEQ":
                items.append(b"MODSEQ (%d)" % row[col["modseq"]])
            elif name == "INTERNALDATE":
                items.append(b"INTERNALDATE " + r.internal_date(row[col["internal_date"]]))
            elif name == "RFC822.SIZE":
                items.append(b"RFC822.SIZE %d" % row[col["size"]])
            elif name == "ENVELOPE":
                items.append(
                    b"ENVELOPE " + r.envelope(Envelope.from_json(json.loads(row[col["envelope"]])))
                )
            else:
                if structure is None:
                    structure = Part.from_json(json.loads(row[col["body_structure"]]))
                if name in ("BODY", "BODYSTRUCTURE") and att.section is None:
                    items.append(
                        name.encode()
                        + b" "
                        + r.body_structure(structure, extensible=name == "BODYSTRUCTURE")
                    )
                    continue
                if raw is None:
                    raw = await self._blob(row[col["blob_id"]], blobs)
                items.append(self._body_item(att, raw, structure))
        return items

    async def _blob(self, blob_id: int, cache: dict[int, bytes]) -> bytes:
        data = cache.get(blob_id)
        if data is None:
            data = await self.store.read_fast(lambda c: read_blob(c, self.store.cipher, blob_id))
            cache.clear()
            cache[blob_id] = data
        return data

    def _body_item(self, att: FetchAtt, raw: bytes, structure: Part) -> bytes:
        name = att.name
        if name == "RFC822":
            return b"RFC822 " + r.literal(raw)
        if name == "RFC822.HEADER":
            return b"RFC822.HEADER " + r.literal(raw[: structure.body_start])
        if name == "RFC822.TEXT":
            return b"RFC822.TEXT " + r.literal(raw[structure.body_start :])
        assert att.section is not None
        try:
            if name == "BODY":
                data = r.section_bytes(raw, structure, att.section)
            else:
                part = r.find_part(structure, att.section.part) if att.section.part else structure
                if part.is_multipart or part.is_message:
                    data = r.section_bytes(raw, structure, att.section)
                else:
                    data = r.decode_part(raw, part)
        except r.SectionError:
            if name.startswith("BINARY"):
                raise ImapError("cannot decode this part", code="UNKNOWN-CTE") from None
            return att.label().encode() + b" NIL"
        if name == "BINARY.SIZE":
            return f"BINARY.SIZE[{att.section.label()}] {len(data)}".encode()
        data = r.partial(data, att.partial)
        if name == "BINARY" and b"\0" in data:
            return att.label().encode() + b" ~" + r.literal(data)
        return att.label().encode() + b" " + r.literal(data)

    # STORE ----------------------------------------------------------------------------------

    async def do_STORE(self, command: Command) -> str | None:
        return await self._store(command)

    async def do_UID_STORE(self, command: Command) -> str | None:
        return await self._store(command)

    async def _store(self, command: Command) -> str | None:
        sel = self._sel()
        if sel.readonly:
            raise ImapError("La boîte est en lecture seule (read-only)", code="READ-ONLY")
        args = command.args
        uids = self._resolve(command)
        if args["unchanged_since"] is not None:
            self.condstore = True
        if not uids:
            return None
        result = await self.store.write(
            lambda tx: store_flags(
                tx, sel.info.id, uids, args["mode"], args["flags"], args["unchanged_since"]
            )
        )
        for state in result.changed:
            sel.own_changes[state.uid] = state.modseq
        if not args["silent"] or self.condstore:
            states = sorted(
                result.changed + ([] if args["silent"] else result.unchanged), key=lambda s: s.uid
            )
            for state in states:
                self._flag_response(
                    state, by_uid=command.name.startswith("UID "), silent=args["silent"]
                )
        if result.modified:
            numbers = (
                result.modified
                if command.name.startswith("UID ")
                else [s for s in (sel.seq_of(u) for u in result.modified) if s is not None]
            )
            return f"[MODIFIED {_compress(sorted(numbers))}] Conditional STORE failed"
        return None

    def _flag_response(self, state: FlagState, *, by_uid: bool, silent: bool = False) -> None:
        seq = self._sel().seq_of(state.uid)
        if seq is None:
            return
        items = []
        if not silent:
            items.append(b"FLAGS " + self._flag_list(state.uid, state.flags, state.keywords))
        if by_uid:
            items.append(b"UID %d" % state.uid)
        if self.condstore:
            items.append(b"MODSEQ (%d)" % state.modseq)
        if items:
            self._out.append(b"* %d FETCH (" % seq + b" ".join(items) + b")\r\n")

    # COPY and MOVE ----------------------------------------------------------------------------

    async def do_COPY(self, command: Command) -> str:
        return await self._copy(command, move=False)

    async def do_UID_COPY(self, command: Command) -> str:
        return await self._copy(command, move=False)

    async def do_MOVE(self, command: Command) -> str:
        return await self._copy(command, move=True)

    async def do_UID_MOVE(self, command: Command) -> str:
        return await self._copy(command, move=True)

    async def _copy(self, command: Command, *, move: bool) -> str:
        sel = self._sel()
        if move and sel.readonly:
            raise ImapError("La boîte est en lecture seule (read-only)", code="READ-ONLY")
        target = await self._mailbox(command.args["mailbox"], code="TRYCREATE")
        uids = self._resolve(command)

        def job(tx: Any) -> list[tuple[int, int]]:
            pairs = copy_messages(tx, sel.info.id, uids, target.id)
            if move:
                expunge_uids(tx, sel.info.id, [source for source, _ in pairs])
            return pairs

        pairs = await self.store.write(job) if uids else []
        name = "MOVE" if move else "COPY"
        if not pairs:
            return f"{name} completed"
        sources, targets = _compress([p[0] for p in pairs]), _compress([p[1] for p in pairs])
        code = f"COPYUID {target.uidvalidity} {sources} {targets}"
        if move:
            # RFC 6851 §4.3: COPYUID in an untagged OK, then the EXPUNGEs
            self.untagged(f"OK [{code}] Moved")
            sel.pending_expunges.update(p[0] for p in pairs)
            self._announce_expunges()
            return f"{name} completed"
        return f"[{code}] {name} completed"

    # SEARCH -----------------------------------------------------------------------------------

    async def do_SEARCH(self, command: Command) -> None:
        await self._search(command, by_uid=False)

    async def do_UID_SEARCH(self, command: Command) -> None:
        await self._search(command, by_uid=True)

    def _uid_keys(self, key: SearchKey) -> SearchKey:
        """Sequence numbers, RECENT, NEW, OLD become UID keys over the session's view."""
        sel = self._sel()
        kind = key.kind
        if kind == "SEQ":
            return SearchKey("UID", (_uid_ranges(self._uids_of_seq_set_lenient(key.args[0])),))
        if kind == "RECENT":
            return SearchKey("UID", (_uid_ranges(sorted(sel.recent)),))
        if kind == "NEW":
            recent = self._uid_keys(SearchKey("RECENT"))
            return SearchKey("AND", ((recent, SearchKey("FLAG", ("\\Seen", False))),))
        if kind == "OLD":
            return SearchKey("NOT", (self._uid_keys(SearchKey("RECENT")),))
        if kind == "AND":
            return SearchKey("AND", (tuple(self._uid_keys(k) for k in key.args[0]),))
        if kind == "OR":
            return SearchKey("OR", (self._uid_keys(key.args[0]), self._uid_keys(key.args[1])))
        if kind == "NOT":
            return SearchKey("NOT", (self._uid_keys(key.args[0]),))
        return key

    def _uids_of_seq_set_lenient(self, ranges: SequenceSet) -> list[int]:
        sel = self._sel()
        count = len(sel.uids)
        out: set[int] = set()
        for start, end in _seq_set(ranges, count):
            out.update(sel.uids[start - 1 : min(end, count)])
        return sorted(out)

    async def _search(self, command: Command, *, by_uid: bool) -> None:
        sel = self._sel()
        if "badcharset" in command.args:
            raise ImapError("charset not supported", code="BADCHARSET (US-ASCII UTF-8)")
        keys = [self._uid_keys(k) for k in command.args["keys"]]
        try:
            query = imap_search.prepare(keys, sel.uids[-1] if sel.uids else 0)
        except ValueError as exc:
            raise bad(str(exc)) from None
        view = list(sel.uids)
        cipher = self.store.cipher

        def body_text(conn: Connection) -> Callable[[int, str], str]:
            def read(blob_id: int, structure: str) -> str:
                raw = read_blob(conn, cipher, blob_id)
                return imap_search.searchable_body(raw, Part.from_json(json.loads(structure)))

            return read

        found = await self._read(
            lambda c: imap_search.run(c, sel.info.id, query, view, body_text(c)),
            small=len(view) <= SMALL_READ,
        )
        numbers = (
            [uid for uid, _ in found] if by_uid else [sel.seq_of(uid) or 0 for uid, _ in found]
        )
        numbers = [n for n in numbers if n]
        returns = command.args.get("return")
        if returns is not None:
            self._esearch(command.tag, returns, numbers, by_uid)
            return
        text = "SEARCH" + "".join(f" {n}" for n in numbers)
        if query.max_modseq and found:
            text += f" (MODSEQ {max(m for _, m in found)})"
        self.untagged(text)

    def _esearch(self, tag: str, returns: list[str], numbers: list[int], by_uid: bool) -> None:
        """RFC 4731 ESEARCH: MIN, MAX, COUNT, ALL (ALL when nothing is asked)."""
        wanted = returns or ["ALL"]
        parts = [f'(TAG "{tag}")'] + (["UID"] if by_uid else [])
        if numbers:
            if "MIN" in wanted:
                parts.append(f"MIN {min(numbers)}")
            if "MAX" in wanted:
                parts.append(f"MAX {max(numbers)}")
            if "ALL" in wanted:
                parts.append(f"ALL {_compress(sorted(numbers))}")
        if "COUNT" in wanted:
            parts.append(f"COUNT {len(numbers)}")
        self.untagged("ESEARCH " + " ".join(parts))

    # keeping the view in step ------------------------------------------------------------------

    async def sync(self, *, expunges: bool) -> None:
        """Tell the client what changed in the selected mailbox since it last heard."""
        sel = self.selected
        if sel is None:
            return
        if self._changed or sel.pending_expunges:
            await self._refresh(sel)
        if expunges:
            self._announce_expunges()

    async def _refresh(self, sel: Selected) -> None:
        self._changed = False
        box_id, known, last = sel.info.id, sel.modseq, sel.last_uid

        def changes(conn: Connection) -> Any:
            current = mailbox_by_id(conn, box_id)
            if current is None:
                return None, [], [], []
            if current.highestmodseq == known and current.uidnext == last + 1:
                return current, [], [], []
            return (
                current,
                new_uids(conn, box_id, last),
                flag_changes(conn, box_id, known, last + 1),
                expunged_since(conn, box_id, known),
            )

        key = (box_id, known, last, self.bus.generation(box_id))
        current, added, flagged, gone = await self.bus.shared(
            key, lambda: self.store.read_fast(changes)
        )
        if current is None:  # the mailbox was deleted under us
            self.untagged("BYE Mailbox deleted")
            return
        visible = set(sel.uids)
        sel.pending_expunges.update(u for u in gone if u in visible)
        for state in flagged:
            if state.uid in sel.pending_expunges:
                continue
            if sel.own_changes.get(state.uid) == state.modseq:
                continue
            self._flag_response(state, by_uid=True)
        sel.own_changes.clear()
        if added:
            if not sel.readonly and current.first_recent_uid <= added[-1]:
                first, uidnext = await self.store.write(lambda tx: claim_recent(tx, box_id))
                sel.recent.update(u for u in added if first <= u < uidnext)
            sel.uids.extend(added)
            sel.last_uid = added[-1]
            self.untagged(f"{len(sel.uids)} EXISTS")
            self.untagged(f"{len(sel.recent)} RECENT")
        sel.modseq = current.highestmodseq

    def _announce_expunges(self) -> None:
        sel = self.selected
        if sel is None or not sel.pending_expunges:
            return
        gone = sel.pending_expunges
        for uid in sorted(gone, reverse=True):  # descending: each number is still valid
            seq = sel.seq_of(uid)
            if seq is not None:
                self.untagged(f"{seq} EXPUNGE")
        sel.uids = array("I", (u for u in sel.uids if u not in gone))
        sel.recent.difference_update(gone)
        sel.pending_expunges = set()


class _AlreadyAnswered(Exception):
    """STARTTLS answered before switching: nothing more to send."""


def _uid_ranges(uids: Sequence[int]) -> tuple[SeqRange, ...]:
    if not uids:
        return (SeqRange(0, 0),)
    ranges: list[SeqRange] = []
    for uid in uids:
        if ranges and ranges[-1].end == uid - 1:
            ranges[-1] = SeqRange(ranges[-1].start, uid)
        else:
            ranges.append(SeqRange(uid, uid))
    return tuple(ranges)


def _matcher(pattern: str) -> Callable[[str], bool]:
    """LIST wildcards: `*` matches anything, `%` anything but the delimiter."""
    import re

    regex = "".join(
        ".*" if ch == "*" else f"[^{re.escape(DELIMITER)}]*" if ch == "%" else re.escape(ch)
        for ch in pattern
    )
    compiled = re.compile(regex + r"\Z")

    def match(name: str) -> bool:
        return bool(compiled.match(name))

    return match
