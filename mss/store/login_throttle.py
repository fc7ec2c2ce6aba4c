"""The login throttle of the mail doors (SMTP submission, IMAP, the DMP API's Basic):
failed logins counted in the store, so that every worker process and every server on
the database shares one budget. It counts as the patient space does (the same table,
`space_throttle`, and its counters: `space_accounts.charge`), under keys of its own.

The rules, and why:
- An attempt is charged BEFORE its password is checked, by one conditional UPDATE per
  counter (`failures < limit`, read back): parallel attempts cannot all pass the check
  that comes before any failure is recorded. A right password refunds its charge.
- Per account and client address (`per_pair`, 5 in 15 minutes): past it, that account
  from that address is refused without any check until the window ends. This is the
  guesser's budget.
- Per account from anywhere (`per_account`, 30 in 15 minutes): past it, the account is
  refused from every address, except from the addresses it logged in from in the last
  `known_for` (30 days). A distributed guesser can thus shut an account out of new
  places for a window at a time, never out of its usual ones (the practice, the
  hospital): the lockout denial of service that a per-account lock invites is bounded.
- Per client address (`per_ip`, 20 in 15 minutes): counted, never a reason to refuse a
  right password (a hospital's NAT puts every professional behind one address). Past
  it, the address is slowed: each of its attempts waits (`ip_delay`, doubling with
  every further `per_ip` failures, at most `ip_delay_max`) and its wrong passwords are
  answered "throttled"; a right password for an account not itself throttled logs in.
- A client address is an IPv4 address, or the /64 network of an IPv6 one (what one
  host is given, and moves within at will): `client`.
- A refused attempt is not counted: nothing was checked. Simultaneous identical attempts
  (a mail client opening its connections at once) are one attempt: the login service
  charges them once.
- Windows are fixed, from a counter's first failure; `purge_logins` deletes the
  counters whose window is over and the addresses no longer known.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from mss.store.space_accounts import charge, count, failures_of, refund
from mss.store.sql import Conn, RawStatement, Tx

PREFIX = "login:"
_KNOWN_SET = RawStatement(
    "INSERT INTO space_throttle (key, failures, since, blocked_until) VALUES (?, 0, ?, ?)"
    " ON CONFLICT (key) DO UPDATE SET blocked_until = excluded.blocked_until"
)
_KNOWN_UNTIL = RawStatement("SELECT blocked_until FROM space_throttle WHERE key = ?")
# the keys from "login:" to "login;" (the next character): the primary key's index serves
_PURGE = RawStatement(
    "DELETE FROM space_throttle WHERE key >= ? AND key < ? AND since <= ? AND blocked_until <= ?"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class LoginLimits:
    per_pair: int = 5
    per_account: int = 30
    per_ip: int = 20
    window: int = 900
    known_for: int = 30 * 86400
    ip_delay: float = 1.0
    ip_delay_max: float = 8.0


@dataclass(frozen=True, slots=True)
class Admission:
    """The throttle's answer before a check: `wait` > 0, refused (`rule` says which)
    and nothing is to be checked; else `delay` seconds to wait first (a slowed address),
    and `account_charged` for the refund of a right password."""

    wait: int = 0
    rule: str = ""
    delay: float = 0.0
    account_charged: bool = False


def _name(account: str) -> str:
    return account.strip().lower()[:200]  # the key column holds 300 characters


def client(ip: str | None) -> str:
    """The client address as counted: an IPv4 address (mapped in IPv6 or not), or the
    /64 network of an IPv6 one (a single host is given a /64: RFC 7421, and it changes
    its address within it at will, RFC 8981)."""
    try:
        address = ipaddress.ip_address((ip or "").split("%", 1)[0])
    except ValueError:
        return (ip or "-")[:64]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(getattr(address, "ipv4_mapped", None) or address)


def pair_key(account: str, ip: str | None) -> str:
    return f"{PREFIX}pair:{_name(account)}|{client(ip)}"


def account_key(account: str) -> str:
    return f"{PREFIX}account:{_name(account)}"


def ip_key(ip: str) -> str:
    return f"{PREFIX}ip:{client(ip)}"


def known_key(account: str, ip: str | None) -> str:
    return f"{PREFIX}known:{_name(account)}|{client(ip)}"


def ip_delay(failures: int, limits: LoginLimits) -> float:
    """Seconds an attempt from an address with `failures` in its window waits."""
    if failures <= limits.per_ip:
        return 0.0
    doublings = (failures - limits.per_ip - 1) // limits.per_ip
    return float(min(limits.ip_delay * 2**doublings, limits.ip_delay_max))


def is_known(conn: Conn, account: str, ip: str | None, now: int) -> bool:
    """The account logged in from this address in the last `known_for`."""
    until = _KNOWN_UNTIL.scalar(conn, known_key(account, ip))
    return until is not None and int(until) > now


def admit(tx: Tx, account: str | None, ip: str | None, now: int, limits: LoginLimits) -> Admission:
    """Charge this attempt as a failure on its counters before anything is checked."""
    charged = False
    if account:
        window = limits.window
        if wait := charge(tx, pair_key(account, ip), now, window, limits.per_pair):
            return Admission(wait, "account from this address")
        if not is_known(tx.conn, account, ip, now):
            if wait := charge(tx, account_key(account), now, window, limits.per_account):
                refund(tx, pair_key(account, ip))
                return Admission(wait, "account")
            charged = True
    failures = count(tx, ip_key(ip), now, limits.window) if ip else 0
    return Admission(delay=ip_delay(failures, limits), account_charged=charged)


def succeeded(
    tx: Tx, account: str | None, ip: str | None, admission: Admission, now: int,
    limits: LoginLimits,
) -> None:  # fmt: skip
    """A right password (or token): its charges refunded (the failures before it stay
    until their window ends: a guesser sharing the address gains nothing from the
    owner's logins), and the address known to the account from now on."""
    if account:  # the rows in the order `admit` locks them: pair, account, address
        refund(tx, pair_key(account, ip))
        if admission.account_charged:
            refund(tx, account_key(account))
    if ip:
        refund(tx, ip_key(ip))
    if account:
        _KNOWN_SET.run(tx.conn, known_key(account, ip), now, now + limits.known_for)


def held(conn: Conn, account: str, ip: str | None, now: int, limits: LoginLimits) -> bool:
    """Would `admit` refuse this account from this address now (read only)?"""
    if failures_of(conn, pair_key(account, ip), now, limits.window) >= limits.per_pair:
        return True
    return failures_of(
        conn, account_key(account), now, limits.window
    ) >= limits.per_account and not is_known(conn, account, ip, now)


def purge_logins(tx: Tx, now: int, limits: LoginLimits) -> int:
    """Forget the counters whose window is over, and the addresses known no longer."""
    return _PURGE.run(tx.conn, PREFIX, PREFIX[:-1] + ";", now - limits.window, now)
