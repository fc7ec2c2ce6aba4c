"""The patient space's account secrets and guards: one-time codes (only their hash is
kept; single use; five tries at most), TOTP secrets (a time step is accepted once), known
devices (for the `new_device` notice) and the login throttle, kept here so that every
worker process shares it.

Every check that must hold under parallel requests is one atomic statement (an UPDATE
with its condition, its row count read back), so two requests cannot both pass it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from mss.store.notifications import add_notification
from mss.store.space import purge_sessions
from mss.store.sql import Conn, RawStatement, Tx

MAX_CODE_ATTEMPTS = 5
ACTIVATION_LIFETIME = 30 * 86400  # a letter may take days: an activation code lasts 30
ACTIVATION_DIGITS = 8

# --- one-time codes ---------------------------------------------------------------------------

_CODE_INSERT = RawStatement(
    "INSERT INTO space_code (id, ins, purpose, method, code_hash, created, expires, attempts,"
    " used) VALUES (?,?,?,?,?,?,?,0,?)"
)
_CODE_KILL = RawStatement(
    "UPDATE space_code SET used = ? WHERE ins = ? AND purpose = ? AND used = ?"
)
_CODE_LATEST = RawStatement(
    "SELECT id, ins, purpose, method, code_hash, expires, attempts FROM space_code"
    " WHERE ins = ? AND purpose = ? AND used = ? ORDER BY created DESC LIMIT 1"
)
_CODE_GET = RawStatement(
    "SELECT id, ins, purpose, method, code_hash, expires, attempts FROM space_code"
    " WHERE id = ? AND used = ?"
)
_CODE_TRY = RawStatement(
    "UPDATE space_code SET attempts = attempts + 1"
    " WHERE id = ? AND used = ? AND attempts < ? AND expires > ?"
)
_CODE_USE = RawStatement("UPDATE space_code SET used = ? WHERE id = ? AND used = ?")
_CODE_PURGE = RawStatement("DELETE FROM space_code WHERE expires <= ? OR used = ?")


@dataclass(frozen=True, slots=True)
class CodeRecord:
    id: str
    ins: str
    purpose: str
    method: str
    code_hash: str
    expires: int
    attempts: int


@dataclass(frozen=True, slots=True)
class IssuedCode:
    """What was issued: the code to send (empty for a TOTP login) and the pending token
    the browser keeps between the two steps of a login."""

    code: str
    token: str


def _hash(row_id: str, code: str) -> str:
    return hashlib.sha256(f"{row_id}:{code}".encode()).hexdigest()


def new_code(digits: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(digits))


def issue_code(
    tx: Tx, ins: str, purpose: str, *, method: str, now: int, lifetime: int, digits: int = 6
) -> IssuedCode:
    """A new code for `ins` and `purpose`; any earlier one of that purpose dies."""
    _CODE_KILL.run(tx.conn, True, ins, purpose, False)
    token = secrets.token_urlsafe(32)
    row_id = hashlib.sha256(token.encode()).hexdigest()
    code = "" if method == "totp" else new_code(digits)
    stored = _hash(row_id, code) if code else ""
    _CODE_INSERT.run(tx.conn, row_id, ins, purpose, method, stored, now, now + lifetime, False)
    return IssuedCode(code, token)


def issue_activation(tx: Tx, ins: str, now: int) -> str:
    """A new activation code for `ins`, sent by the notifications (`activation_code`,
    the code in the payload) in this transaction; returned for the operator to print."""
    issued = issue_code(tx, ins, "activation", method="print", now=now,
                        lifetime=ACTIVATION_LIFETIME, digits=ACTIVATION_DIGITS)  # fmt: skip
    add_notification(tx, "activation_code", ins, {"code": issued.code})
    return issued.code


def pending_code(conn: Conn, token: str, now: int) -> CodeRecord | None:
    """The live code row of a pending token (the second step of a login)."""
    row = _CODE_GET.first(conn, hashlib.sha256(token.encode()).hexdigest(), False)
    found = None if row is None else CodeRecord(*row)
    if found is None or found.expires <= now or found.attempts >= MAX_CODE_ATTEMPTS:
        return None
    return found


def latest_code(conn: Conn, ins: str, purpose: str) -> CodeRecord | None:
    row = _CODE_LATEST.first(conn, ins, purpose, False)
    return None if row is None else CodeRecord(*row)


def count_attempt(tx: Tx, row_id: str, now: int) -> bool:
    """Count one try of this code; False if it is dead (used, expired, tried 5 times)."""
    return _CODE_TRY.run(tx.conn, row_id, False, MAX_CODE_ATTEMPTS, now) == 1


def consume(tx: Tx, row_id: str) -> bool:
    """Use the code once: False if another request used it first."""
    return _CODE_USE.run(tx.conn, True, row_id, False) == 1


def try_code(tx: Tx, record: CodeRecord, code: str, now: int) -> bool:
    """Count the try, compare the hash, and use the code if it matches (single use)."""
    return check_code(tx, record, code, now) and consume(tx, record.id)


def check_code(tx: Tx, record: CodeRecord, code: str, now: int, *, counted: bool = True) -> bool:
    """Compare the hash, the try counted against the code's five unless not `counted`
    (then the caller's throttle bounds the guesses); the code is not used yet."""
    if counted and not count_attempt(tx, record.id, now):
        return False
    return bool(record.code_hash) and matches(record, code)


def matches(record: CodeRecord, code: str) -> bool:
    return secrets.compare_digest(record.code_hash, _hash(record.id, code.strip()))


def purge_codes(tx: Tx, now: int) -> int:
    return _CODE_PURGE.run(tx.conn, now, True)


# --- TOTP -------------------------------------------------------------------------------------

_TOTP_GET = RawStatement(
    "SELECT secret, confirmed, last_step, pending_secret FROM space_totp WHERE ins = ?"
)
_TOTP_PEND = RawStatement(
    "UPDATE space_totp SET pending_secret = ? WHERE ins = ? AND confirmed = ?"
)
_TOTP_SWAP = RawStatement(
    "UPDATE space_totp SET secret = pending_secret, pending_secret = NULL, last_step = ?"
    " WHERE ins = ? AND pending_secret = ?"
)
_TOTP_DELETE = RawStatement("DELETE FROM space_totp WHERE ins = ?")
_TOTP_INSERT = RawStatement(
    "INSERT INTO space_totp (ins, secret, confirmed, last_step, pending_secret)"
    " VALUES (?, ?, ?, 0, NULL)"
)
_TOTP_STEP = RawStatement(
    "UPDATE space_totp SET last_step = ?, confirmed = ? WHERE ins = ? AND last_step < ?"
)


@dataclass(frozen=True, slots=True)
class TotpRecord:
    secret: str
    confirmed: bool
    last_step: int
    pending: str | None = None  # a new secret started while `secret` is in use


def get_totp(conn: Conn, ins: str) -> TotpRecord | None:
    row = _TOTP_GET.first(conn, ins)
    return None if row is None else TotpRecord(row[0], bool(row[1]), int(row[2]), row[3])


def start_totp(tx: Tx, ins: str, secret: str) -> None:
    """A new secret, not in use until a first code confirms it: a confirmed one stays in
    service until then (the new one waits beside it); an unconfirmed one is replaced."""
    if _TOTP_PEND.run(tx.conn, secret, ins, True) == 1:
        return
    _TOTP_DELETE.run(tx.conn, ins)
    _TOTP_INSERT.run(tx.conn, ins, secret, False)


def confirm_pending_totp(tx: Tx, ins: str, secret: str, step: int) -> bool:
    """The pending secret replaces the one in service (its time step `step` used)."""
    return _TOTP_SWAP.run(tx.conn, step, ins, secret) == 1


def use_totp_step(tx: Tx, ins: str, step: int) -> bool:
    """Accept the time step `step` once (and confirm the enrolment); False for a replay."""
    return _TOTP_STEP.run(tx.conn, step, True, ins, step) == 1


def remove_totp(tx: Tx, ins: str) -> None:
    _TOTP_DELETE.run(tx.conn, ins)


# --- known devices ----------------------------------------------------------------------------

_DEVICE_GET = RawStatement("SELECT ins FROM space_device WHERE id = ?")
_DEVICE_COUNT = RawStatement("SELECT COUNT(*) FROM space_device WHERE ins = ?")
_DEVICE_INSERT = RawStatement(
    "INSERT INTO space_device (id, ins, created, last_seen) VALUES (?, ?, ?, ?)"
)
_DEVICE_TOUCH = RawStatement("UPDATE space_device SET last_seen = ? WHERE id = ?")


def device_id(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


def is_known_device(conn: Conn, ins: str, cookie: str | None) -> bool:
    return bool(cookie) and _DEVICE_GET.scalar(conn, device_id(cookie or "")) == ins


def remember_device(tx: Tx, ins: str, cookie: str | None, now: int) -> tuple[str, bool]:
    """(the device cookie to keep, whether it is new while the patient had others)."""
    if cookie and _DEVICE_GET.scalar(tx.conn, device_id(cookie)) == ins:
        _DEVICE_TOUCH.run(tx.conn, now, device_id(cookie))
        return cookie, False
    had_others = int(_DEVICE_COUNT.scalar(tx.conn, ins) or 0) > 0
    fresh = secrets.token_urlsafe(32)
    _DEVICE_INSERT.run(tx.conn, device_id(fresh), ins, now, now)
    return fresh, had_others


# --- the login throttle -----------------------------------------------------------------------

FREE_FAILURES = 3  # an account's failures before the back-off starts
BACKOFF_BASE = 5  # seconds, doubled at each further failure
BACKOFF_MAX = 900
ACCOUNT_MEMORY = 86400  # an account's failures are forgotten a day after the first
IP_LIMIT = 50  # failed logins of one IP address in IP_WINDOW: then it is slowed down
IP_WINDOW = 900

_THROTTLE_ENSURE = RawStatement(
    "INSERT INTO space_throttle (key, failures, since, blocked_until) VALUES (?, 0, ?, 0)"
    " ON CONFLICT (key) DO NOTHING"
)
_THROTTLE_FORGET = RawStatement(
    "UPDATE space_throttle SET failures = 0, since = ?, blocked_until = 0"
    " WHERE key = ? AND since <= ?"
)
_THROTTLE_CHARGE = RawStatement(
    "UPDATE space_throttle SET failures = failures + 1 WHERE key = ? AND blocked_until <= ?"
    " AND failures < ? RETURNING failures"
)
_THROTTLE_ADD = RawStatement(
    "UPDATE space_throttle SET failures = failures + 1 WHERE key = ? RETURNING failures"
)
_THROTTLE_BLOCK = RawStatement("UPDATE space_throttle SET blocked_until = ? WHERE key = ?")
_THROTTLE_WAIT = RawStatement("SELECT blocked_until, since FROM space_throttle WHERE key = ?")
_THROTTLE_READ = RawStatement("SELECT failures, since FROM space_throttle WHERE key = ?")
_THROTTLE_RESET = RawStatement(
    "UPDATE space_throttle SET failures = 0, blocked_until = 0 WHERE key = ?"
)
_THROTTLE_REFUND = RawStatement(
    "UPDATE space_throttle SET failures = failures - 1 WHERE key = ? AND failures > 0"
)
_THROTTLE_PURGE = RawStatement("DELETE FROM space_throttle WHERE since <= ? AND blocked_until <= ?")


def account_key(ins: str, device: str | None = None) -> str:
    """An account's throttle; a device it already used has its own (a stranger's guesses
    do not lock the patient out of their usual browser)."""
    return f"account:{ins}" if not device else f"account:{ins}:{device_id(device)[:32]}"


def ip_key(address: str) -> str:
    return f"ip:{address}"


def backoff(failures: int) -> int:
    """Seconds an account waits after its `failures`-th failure in a row."""
    if failures < FREE_FAILURES:
        return 0
    return int(min(BACKOFF_BASE * 2 ** (failures - FREE_FAILURES), BACKOFF_MAX))


def admit(tx: Tx, account: str, ip: str | None, now: int) -> int:
    """Count this attempt as a failure BEFORE the password is checked (so parallel
    attempts cannot all pass), then 0 if it may go on, else the seconds to wait.
    The IP's failures are counted too (`ip` None: a device this account already used),
    never to refuse: a shared address (a hospital's NAT) is slowed, not locked out."""
    wait = charge(tx, account, now, ACCOUNT_MEMORY, 10**9)
    if not wait and ip is not None:
        charge(tx, ip, now, IP_WINDOW, 10**9)
    return wait


def failed(tx: Tx, account: str, now: int) -> None:
    """A second-step code (or TOTP) tried: a failure of the account, as a wrong password
    is (counted even while it is held back; the code has its own five tries), undone by
    `succeeded`. The account's next login waits its back-off."""
    if delay := backoff(count(tx, account, now, ACCOUNT_MEMORY)):
        _THROTTLE_BLOCK.run(tx.conn, now + delay, account)


def count(tx: Tx, key: str, now: int, memory: int) -> int:
    """One failure counted on `key`, whatever its count: its failures in its `memory`."""
    _THROTTLE_ENSURE.run(tx.conn, key, now)
    _THROTTLE_FORGET.run(tx.conn, now, key, now - memory)
    return int(_THROTTLE_ADD.scalar(tx.conn, key) or 0)


def refund(tx: Tx, key: str) -> None:
    """A failure charged before the check was none (a right password)."""
    _THROTTLE_REFUND.run(tx.conn, key)


def failures_of(conn: Conn, key: str, now: int, memory: int) -> int:
    """The failures of `key` in its `memory` (read only)."""
    row = _THROTTLE_READ.first(conn, key)
    return 0 if row is None or int(row[1]) <= now - memory else int(row[0])


def ip_slowed(conn: Conn, ip: str, now: int) -> bool:
    """The address failed IP_LIMIT times in IP_WINDOW: its attempts are slowed down."""
    row = _THROTTLE_READ.first(conn, ip)
    return row is not None and int(row[0]) >= IP_LIMIT and int(row[1]) > now - IP_WINDOW


def charge(tx: Tx, key: str, now: int, memory: int, limit: int) -> int:
    """One failure counted on `key` before the check, if it has fewer than `limit` in its
    `memory` (one conditional UPDATE: parallel charges cannot all pass): 0, or the
    seconds to wait. The mail doors' throttle (`login_throttle`) counts the same way."""
    _THROTTLE_ENSURE.run(tx.conn, key, now)
    _THROTTLE_FORGET.run(tx.conn, now, key, now - memory)
    row = _THROTTLE_CHARGE.first(tx.conn, key, now, limit)
    if row is None:
        blocked_until, since = _THROTTLE_WAIT.first(tx.conn, key)
        end = int(blocked_until) if int(blocked_until) > now else int(since) + memory
        return max(end - now, 1)
    if key.startswith("account:") and (delay := backoff(int(row[0]))):
        _THROTTLE_BLOCK.run(tx.conn, now + delay, key)
    return 0


def right_password(tx: Tx, account: str, ip: str | None) -> None:
    """A right password: its attempt was no failure (refunded), but the account starts
    afresh only once the second step succeeds (its wrong codes count)."""
    _THROTTLE_REFUND.run(tx.conn, account)
    if ip is not None:
        _THROTTLE_REFUND.run(tx.conn, ip)


def succeeded(tx: Tx, account: str, ip: str | None) -> None:
    """A login done (or a password asked again, right): the account starts afresh, and
    the IP is not charged for it."""
    _THROTTLE_RESET.run(tx.conn, account)
    if ip is not None:
        _THROTTLE_REFUND.run(tx.conn, ip)


# --- codes by the code channel: issued per hour, guessed per day -------------------------------

CODES_PER_HOUR = 5  # login codes sent to one patient in an hour
CODE_FAILURES = 10  # wrong reset / activation codes of one identifier in a day
CODE_IP_FAILURES = 30  # wrong reset / activation codes from one address in an hour
HOUR = 3600


def code_issue(tx: Tx, ins: str, now: int) -> int:
    """One more code sent to `ins`: 0, or the seconds until the hour's quota allows it."""
    return charge(tx, f"issued:{ins}", now, HOUR, CODES_PER_HOUR)


def admit_code(tx: Tx, ins: str, ip: str, now: int) -> int:
    """A reset or activation code tried for `ins` from `ip`: counted as a failure before
    the check (cumulative across codes: a new code does not start afresh); 0, or the
    seconds to wait. The identifier's count is kept for any identifier, known or not."""
    if wait := charge(tx, f"codes:{ins}", now, ACCOUNT_MEMORY, CODE_FAILURES):
        return wait
    if wait := charge(tx, f"codes-ip:{ip}", now, HOUR, CODE_IP_FAILURES):
        _THROTTLE_REFUND.run(tx.conn, f"codes:{ins}")
    return wait


def code_right(tx: Tx, ins: str, ip: str) -> None:
    """A right code: its try was no failure."""
    _THROTTLE_REFUND.run(tx.conn, f"codes:{ins}")
    _THROTTLE_REFUND.run(tx.conn, f"codes-ip:{ip}")


def codes_held(conn: Conn, ins: str, now: int) -> int:
    """Seconds until `ins` may be sent a reset code again (its day of wrong codes)."""
    row = _THROTTLE_READ.first(conn, f"codes:{ins}")
    if row is None or int(row[0]) < CODE_FAILURES or int(row[1]) <= now - ACCOUNT_MEMORY:
        return 0
    return int(row[1]) + ACCOUNT_MEMORY - now


def purge_throttle(tx: Tx, now: int) -> int:
    return _THROTTLE_PURGE.run(tx.conn, now - ACCOUNT_MEMORY, now)


def purge_space(tx: Tx, now: int, idle: int) -> int:
    """Forget what is over: dead codes, quiet throttle rows, ended sessions."""
    return purge_codes(tx, now) + purge_throttle(tx, now) + purge_sessions(tx, now, idle)
