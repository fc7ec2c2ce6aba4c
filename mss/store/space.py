"""The patient space's sessions: created at login, found by the cookie's token (only its
SHA-256 is stored), kept alive by use until the idle or the absolute timeout, ended by
logout or revocation (the devices list)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from mss.store.sql import Conn, RawStatement, Tx

_COLUMNS = (
    "id, account, ins, representative, csrf, created, last_seen, expires, user_agent, address"
)
_INSERT = RawStatement(f"INSERT INTO space_session ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)")
_GET = RawStatement(f"SELECT {_COLUMNS} FROM space_session WHERE id = ?")
_TOUCH = RawStatement("UPDATE space_session SET last_seen = ? WHERE id = ?")
_SWITCH = RawStatement("UPDATE space_session SET ins = ?, representative = ? WHERE id = ?")
_DELETE = RawStatement("DELETE FROM space_session WHERE id = ?")
_DELETE_OF = RawStatement("DELETE FROM space_session WHERE id = ? AND account = ?")
_DELETE_ALL = RawStatement("DELETE FROM space_session WHERE account = ?")
_DELETE_SHOWING = RawStatement("DELETE FROM space_session WHERE account = ? OR ins = ?")
_OF = RawStatement(
    f"SELECT {_COLUMNS} FROM space_session WHERE account = ? AND expires > ?"
    " ORDER BY last_seen DESC"
)
_PURGE = RawStatement("DELETE FROM space_session WHERE expires <= ? OR last_seen <= ?")


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: str
    account: str
    ins: str
    representative: bool
    csrf: str
    created: int
    last_seen: int
    expires: int
    user_agent: str
    address: str


@dataclass(frozen=True, slots=True)
class NewSession:
    """What the login hands the browser (the token) and the row it made."""

    token: str
    record: SessionRecord


def session_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_session(
    tx: Tx, *, account: str, ins: str, representative: bool, now: int, lifetime: int,
    user_agent: str = "", address: str = "",
) -> NewSession:  # fmt: skip
    """A fresh session (a new token at every login: no fixation)."""
    token = secrets.token_urlsafe(32)
    record = SessionRecord(
        session_id(token), account, ins, representative, secrets.token_urlsafe(32), now, now,
        now + lifetime, user_agent[:200], address[:45],
    )  # fmt: skip
    _INSERT.run(tx.conn, *_values(record))
    return NewSession(token, record)


def _values(r: SessionRecord) -> tuple[object, ...]:
    return (r.id, r.account, r.ins, r.representative, r.csrf, r.created, r.last_seen, r.expires,
            r.user_agent, r.address)  # fmt: skip


def _record(row: tuple[object, ...] | None) -> SessionRecord | None:
    if row is None:
        return None
    values = list(row)
    values[3] = bool(values[3])
    return SessionRecord(*values)  # type: ignore[arg-type]


def find_session(conn: Conn, token: str, now: int, idle: int) -> SessionRecord | None:
    """The live session of this token, or None (unknown, idle too long, past its end)."""
    found = _record(_GET.first(conn, session_id(token)))
    if found is None or found.expires <= now or found.last_seen + idle <= now:
        return None
    return found


def touch_session(tx: Tx, sid: str, now: int) -> None:
    _TOUCH.run(tx.conn, now, sid)


def switch_session(tx: Tx, sid: str, ins: str, representative: bool) -> None:
    """Whose space the session shows (a representative choosing)."""
    _SWITCH.run(tx.conn, ins, representative, sid)


def end_session(tx: Tx, sid: str) -> None:
    _DELETE.run(tx.conn, sid)


def revoke_session(tx: Tx, account: str, sid: str) -> bool:
    """End one of `account`'s sessions (a device); False if it is not theirs."""
    return _DELETE_OF.run(tx.conn, sid, account) > 0


def end_sessions_of(tx: Tx, account: str) -> int:
    """End every session of `account` (a new password, a disabled account)."""
    return _DELETE_ALL.run(tx.conn, account)


def end_sessions_about(tx: Tx, account: str, ins: str) -> int:
    """End every session of the patient's `account` and every session showing `ins`
    (their representatives'): the operator disabled the account or closed the profile."""
    return _DELETE_SHOWING.run(tx.conn, account, ins)


def sessions_of(conn: Conn, account: str, now: int) -> list[SessionRecord]:
    return [r for row in _OF.all(conn, account, now) if (r := _record(tuple(row)))]


def purge_sessions(tx: Tx, now: int, idle: int) -> int:
    return _PURGE.run(tx.conn, now, now - idle)
