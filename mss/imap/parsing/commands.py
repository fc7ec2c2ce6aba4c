"""IMAP command grammars (RFC 3501 §6, §9 and the extensions mss offers): pure.

`parse_command(bytes)` turns one complete command (literals inline, CRLF
stripped) into a `Command` with typed arguments, or raises `CommandError`
(with the tag when it could be read) for the server to answer BAD.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mss.imap.parsing.append import g_append
from mss.imap.parsing.fetch import fetch_atts
from mss.imap.parsing.notify import g_notify
from mss.imap.parsing.search import cancelupdate_args, search_args, sort_args, thread_args
from mss.imap.parsing.tokens import ParseError, Reader


class CommandError(ParseError):
    def __init__(self, tag: str | None, message: str) -> None:
        super().__init__(message)
        self.tag = tag


@dataclass(frozen=True, slots=True)
class Command:
    tag: str
    name: str  # upper case; UID commands are "UID FETCH" etc.
    args: dict[str, Any] = field(default_factory=dict)


# --- helpers ----------------------------------------------------------------------------

STATUS_ITEMS = frozenset(
    ["MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ", "SIZE",
     "DELETED", "DELETED-STORAGE"]  # RFC 9208 §4.3: what EXPUNGE would free
)  # fmt: skip


def _mailbox(reader: Reader) -> str:
    raw = reader.astring()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError("mailbox name is not UTF-8") from None


def _list_mailbox(reader: Reader) -> str:
    """list-mailbox: 1*(ATOM-CHAR / "%" / "*" / "]") / string."""
    if reader.peek() in (0x22, 0x7B):
        return reader.string().decode("utf-8", "replace")
    start = reader.pos
    data = reader.data
    while reader.pos < len(data) and data[reader.pos] > 0x20 and data[reader.pos] not in b'(){"\\':
        reader.pos += 1
    if reader.pos == start:
        raise ParseError("expected a mailbox pattern")
    return data[start : reader.pos].decode("utf-8", "replace")


# --- command grammars -----------------------------------------------------------------------

NO_ARGS = frozenset(
    [
        "CAPABILITY",
        "NOOP",
        "LOGOUT",
        "STARTTLS",
        "CHECK",
        "CLOSE",
        "EXPUNGE",
        "UNSELECT",
        "IDLE",
        "NAMESPACE",
    ]
)


def _args(name: str, reader: Reader) -> dict[str, Any]:
    parser = _GRAMMARS.get(name)
    if parser is None:
        raise ParseError(f"unknown command {name}")
    return parser(reader)


def _g_authenticate(r: Reader) -> dict[str, Any]:
    r.space()
    mechanism = r.atom().upper()
    initial = None
    if r.maybe(b" "):
        initial = r.atom(allow_bracket=True)  # base64, or "=" for an empty response
    return {"mechanism": mechanism, "initial": initial}


def _g_login(r: Reader) -> dict[str, Any]:
    r.space()
    user = r.astring()
    r.space()
    password = r.astring()
    return {
        "user": user.decode("utf-8", "replace"),
        "password": password.decode("utf-8", "replace"),
    }


def _g_select(r: Reader) -> dict[str, Any]:
    r.space()
    mailbox = _mailbox(r)
    params: dict[str, Any] = {}
    if r.maybe(b" ("):
        while not r.maybe(b")"):
            if params:
                r.space()
            word = r.atom().upper()
            if word == "CONDSTORE":
                params["condstore"] = True
            elif word == "QRESYNC":
                r.space()
                r.expect(b"(")
                uidvalidity = r.number(nonzero=True)
                r.space()
                modseq = r.number(wide=True)
                known = None
                if r.maybe(b" ") and not r.peek_is(b"("):
                    known = r.sequence_set()
                    r.maybe(b" ")
                if r.peek_is(b"("):  # sequence match data: ignored
                    depth = 0
                    while True:
                        if r.maybe(b"("):
                            depth += 1
                        elif r.maybe(b")"):
                            depth -= 1
                            if depth == 0:
                                break
                        else:
                            r.pos += 1
                r.expect(b")")
                params["qresync"] = (uidvalidity, modseq, known)
            else:
                raise ParseError(f"unknown SELECT parameter {word}")
    return {"mailbox": mailbox, **params}


def _g_mailbox(r: Reader) -> dict[str, Any]:
    r.space()
    return {"mailbox": _mailbox(r)}


def _g_quota_root(r: Reader) -> dict[str, Any]:
    """GETQUOTA and SETQUOTA (RFC 9208 §4): a quota root, SETQUOTA's list left unread."""
    r.space()
    root = r.astring().decode("utf-8", "replace")
    r.pos = len(r.data)  # SETQUOTA's resource list: refused whatever it says
    return {"root": root}


def _g_create(r: Reader) -> dict[str, Any]:
    r.space()
    args: dict[str, Any] = {"mailbox": _mailbox(r), "use": []}
    if r.maybe(b" (USE "):  # RFC 6154 §3 CREATE-SPECIAL-USE
        args["use"] = r.list_of("flag")
        r.expect(b")")
    return args


def _g_rename(r: Reader) -> dict[str, Any]:
    r.space()
    old = _mailbox(r)
    r.space()
    return {"mailbox": old, "new": _mailbox(r)}


# RFC 5258 §3 (and RFC 6154 SPECIAL-USE): what LIST may select by and return
LIST_SELECTION = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})
LIST_RETURN = frozenset({"SUBSCRIBED", "CHILDREN", "SPECIAL-USE"})


def _list_options(selection: list[str], returns: list[str]) -> None:
    unknown = [o for o in selection if o not in LIST_SELECTION]
    unknown += [o for o in returns if o not in LIST_RETURN]
    if unknown:
        raise ParseError(f"unknown LIST option {unknown[0]}")
    if "RECURSIVEMATCH" in selection and not set(selection) - {"RECURSIVEMATCH", "REMOTE"}:
        raise ParseError("RECURSIVEMATCH needs another selection option (RFC 5258 §3)")


def _g_list(r: Reader) -> dict[str, Any]:
    r.space()
    selection: list[str] = []
    if r.peek_is(b"("):
        selection = [s.upper() for s in r.list_of()]
        r.space()
    reference = r.astring().decode("utf-8", "replace")
    r.space()
    patterns: list[str] = []
    if r.maybe(b"("):
        while not r.maybe(b")"):
            if patterns:
                r.space()
            patterns.append(_list_mailbox(r))
    else:
        patterns.append(_list_mailbox(r))
    returns: list[str] = []
    if r.maybe_word(b" RETURN "):
        returns = [x.upper() for x in r.list_of()]
    _list_options(selection, returns)
    return {"reference": reference, "patterns": patterns, "selection": selection, "return": returns}


def _g_lsub(r: Reader) -> dict[str, Any]:
    r.space()
    reference = r.astring().decode("utf-8", "replace")
    r.space()
    return {
        "reference": reference,
        "patterns": [_list_mailbox(r)],
        "selection": ["SUBSCRIBED"],
        "return": [],
    }


def _g_status(r: Reader) -> dict[str, Any]:
    r.space()
    mailbox = _mailbox(r)
    r.space()
    items = [i.upper() for i in r.list_of()]
    unknown = [i for i in items if i not in STATUS_ITEMS]
    if unknown or not items:
        raise ParseError(f"unknown STATUS item {unknown[0] if unknown else '()'}")
    return {"mailbox": mailbox, "items": items}


def _g_append(r: Reader) -> dict[str, Any]:
    r.space()
    return g_append(r, _mailbox(r))


def _g_fetch(r: Reader) -> dict[str, Any]:
    r.space()
    sequence = r.sequence_set()
    r.space()
    atts = fetch_atts(r)
    changed_since = None
    vanished = False
    if r.maybe(b" ("):
        while not r.maybe(b")"):
            word = r.atom().upper()
            if word == "CHANGEDSINCE":
                r.space()
                changed_since = r.number(wide=True)
            elif word == "VANISHED":
                vanished = True
            else:
                raise ParseError(f"unknown FETCH modifier {word}")
            r.maybe(b" ")
    return {
        "sequence": sequence,
        "atts": atts,
        "changed_since": changed_since,
        "vanished": vanished,
    }


def _g_store(r: Reader) -> dict[str, Any]:
    r.space()
    sequence = r.sequence_set()
    r.space()
    unchanged_since = None
    if r.maybe(b"("):
        word = r.atom().upper()
        if word != "UNCHANGEDSINCE":
            raise ParseError(f"unknown STORE modifier {word}")
        r.space()
        unchanged_since = r.number(wide=True)
        r.expect(b")")
        r.space()
    item = r.atom().upper()
    mode = {"+": "add", "-": "remove"}.get(item[:1], "replace")
    base = item.lstrip("+-")
    if base not in ("FLAGS", "FLAGS.SILENT"):
        raise ParseError(f"unknown STORE item {item}")
    r.space()
    if r.peek_is(b"("):
        flags = r.list_of("flag")
    else:
        flags = [r.flag()]
        while r.maybe(b" "):
            flags.append(r.flag())
    return {
        "sequence": sequence,
        "mode": mode,
        "silent": base.endswith(".SILENT"),
        "flags": flags,
        "unchanged_since": unchanged_since,
    }


def _g_copy(r: Reader) -> dict[str, Any]:
    r.space()
    sequence = r.sequence_set()
    r.space()
    return {"sequence": sequence, "mailbox": _mailbox(r)}


def _g_expunge_uid(r: Reader) -> dict[str, Any]:
    r.space()
    return {"sequence": r.sequence_set()}


def _g_enable(r: Reader) -> dict[str, Any]:
    capabilities = []
    while r.maybe(b" "):
        capabilities.append(r.atom().upper())
    if not capabilities:
        raise ParseError("ENABLE needs a capability")
    return {"capabilities": capabilities}


def _g_id(r: Reader) -> dict[str, Any]:
    r.space()
    if r.maybe(b"NIL") or r.maybe(b"nil"):
        return {"params": None}
    r.expect(b"(")
    params: dict[str, str | None] = {}
    while not r.maybe(b")"):
        if params:
            r.space()
        key = r.string().decode("utf-8", "replace")
        r.space()
        value = r.nstring()
        params[key] = value.decode("utf-8", "replace") if value is not None else None
        if len(params) > 30:
            raise ParseError("too many ID parameters")
    return {"params": params}


_GRAMMARS: dict[str, Callable[[Reader], dict[str, Any]]] = {
    "AUTHENTICATE": _g_authenticate,
    "LOGIN": _g_login,
    "SELECT": _g_select,
    "EXAMINE": _g_select,
    "CREATE": _g_create,
    "DELETE": _g_mailbox,
    "RENAME": _g_rename,
    "SUBSCRIBE": _g_mailbox,
    "UNSUBSCRIBE": _g_mailbox,
    "LIST": _g_list,
    "LSUB": _g_lsub,
    "STATUS": _g_status,
    "APPEND": _g_append,
    "SEARCH": search_args,
    "SORT": sort_args,  # RFC 5256
    "THREAD": thread_args,
    "CANCELUPDATE": cancelupdate_args,  # RFC 5267 §4
    "FETCH": _g_fetch,
    "STORE": _g_store,
    "COPY": _g_copy,
    "MOVE": _g_copy,
    "ENABLE": _g_enable,
    "ID": _g_id,
    "NOTIFY": g_notify,
    "GETQUOTAROOT": _g_mailbox,  # RFC 9208 §4.3
    "GETQUOTA": _g_quota_root,
    "SETQUOTA": _g_quota_root,
    "UID EXPUNGE": _g_expunge_uid,
    **{name: (lambda r: {}) for name in NO_ARGS},
}
UID_COMMANDS = frozenset(["COPY", "MOVE", "FETCH", "SEARCH", "STORE", "EXPUNGE", "SORT", "THREAD"])


def parse_tag(reader: Reader) -> str:
    start = reader.pos
    data = reader.data
    while (
        reader.pos < len(data) and data[reader.pos] > 0x20 and data[reader.pos] not in b'(){%*"\\+'
    ):
        reader.pos += 1
    if reader.pos == start:
        raise CommandError(None, "missing tag")
    return data[start : reader.pos].decode("ascii", "replace")


def parse_command(line: bytes) -> Command:
    """One command, literals inline, without the final CRLF."""
    reader = Reader(line)
    tag = parse_tag(reader)
    try:
        reader.space()
        name = reader.atom().upper()
        if name == "UID":
            reader.space()
            sub = reader.atom().upper()
            if sub not in UID_COMMANDS:
                raise ParseError(f"UID {sub} is not a command")
            name = f"UID {sub}"
        grammar = name if name in _GRAMMARS else name.removeprefix("UID ")
        args = _args(grammar, reader)
        reader.end()
    except ParseError as exc:
        raise CommandError(tag, str(exc)) from None
    return Command(tag, name, args)
