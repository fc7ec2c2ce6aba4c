"""Who is logging in: passwords, bearer tokens, client certificates; with throttling.

SMTP submission, IMAP and the DMP API's Basic share one `LoginService`. It never
reads the database itself: the accounts come from a `CredentialSource`, and the
failed logins are counted by a `LoginLedger`, both passed in by `app`.

Passwords are Argon2id hashes (memory-hard), checked on a thread. A successful
check is remembered for a few minutes as an HMAC of the password under a key
that lives only in this process, so a mail client that logs in every minute
does not pay the hash each time; a changed hash or a wrong password falls back
to the full check.

Throttling (the rules: `mss.store.login_throttle`): every attempt that is to be
checked is first charged as a failure in the store, shared by all the processes,
so parallel attempts cannot all pass; a right password refunds it. Refused: an
account guessed too often from one address, or from everywhere (but from the
addresses it logs in from). A client address that fails too often is slowed and
its failures answered as throttled, its right passwords still served. Every
failure is logged on one line: door, account as given, address, reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Protocol

from mss import metrics
from mss.security.passwords import hash_password, verify_password
from mss.security.pki import CertIdentity
from mss.security.tokens import BearerValidator, TokenError

Clock = Callable[[], float]
MAX_LOGGED_ACCOUNT = 100  # characters of the account name a refusal logs
# The class of a refusal's reason (the `reason` label of mss_login_failures_total): the
# first fragment found in it, in this order; "other" when none is.
REASON_CLASSES = (
    ("throttled", "throttled"), ("address slowed", "throttled"),
    ("unknown account", "unknown_account"), ("wrong password", "wrong_password"),
    ("disabled", "disabled"), ("cannot log in here", "wrong_kind"),
    ("without a password", "no_password"), ("one-time code", "one_time_code"),
    ("token", "token"), ("certificate", "certificate"), ("say which account", "certificate"),
)  # fmt: skip

log = logging.getLogger(__name__)
AttemptKey = tuple[str, str, tuple[str, ...], bytes]  # account, client address, kinds, HMAC


@dataclass(frozen=True, slots=True)
class Credentials:
    """What login needs to know of an account."""

    address: str
    kind: str  # professional, applicative, patient
    national_id: str | None
    disabled: bool
    password_hash: str | None = field(default=None, repr=False)
    display_name: str | None = None


class CredentialSource(Protocol):
    async def by_address(self, address: str) -> Credentials | None: ...

    async def by_national_id(self, national_id: str) -> list[Credentials]: ...


@dataclass(frozen=True, slots=True)
class LoginIdentity:
    """An authenticated account."""

    address: str
    kind: str
    national_id: str | None
    method: str  # password, bearer, certificate
    display_name: str | None = None


@dataclass(frozen=True, slots=True)
class LoginResult:
    identity: LoginIdentity | None
    throttled: bool = False
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.identity is not None


class LoginLedger(Protocol):
    """Where failed logins are counted: the store, shared by every process (the rules:
    `mss.store.login_throttle`). `admit` charges the attempt before its check."""

    async def admit(self, account: str | None, ip: str | None) -> Admission: ...

    async def succeeded(
        self, account: str | None, ip: str | None, admission: Admission
    ) -> None: ...

    async def held(self, account: str, ip: str | None) -> bool: ...


class Admission(Protocol):
    """The ledger's answer before a check: `wait` > 0, refused by `rule` and nothing to
    check; else wait `delay` seconds first (a slowed address, whose wrong passwords are
    answered as throttled). Given back to `succeeded` as it came."""

    @property
    def wait(self) -> int: ...

    @property
    def rule(self) -> str: ...

    @property
    def delay(self) -> float: ...


def log_refusal(door: str, account: str | None, ip: str | None, reason: str) -> None:
    """One line per failed login, the same on every door: never the password."""
    given = (account or "-")[:MAX_LOGGED_ACCOUNT]
    log.info("login refused: door=%s account=%r ip=%s reason=%s", door, given, ip or "-", reason)
    metrics.LOGIN_FAILURES.labels(door, reason_class(reason)).inc()


def reason_class(reason: str) -> str:
    """The few words a refusal's free text is counted under."""
    return next((name for fragment, name in REASON_CLASSES if fragment in reason), "other")


class LoginService:
    def __init__(
        self,
        source: CredentialSource,
        ledger: LoginLedger,
        *,
        bearer: BearerValidator | None = None,
        cache_seconds: float = 600.0,
        failure_delay: float = 0.5,
        clock: Clock = time.monotonic,
    ) -> None:
        self._source = source
        self._ledger = ledger
        self._bearer = bearer
        self._cache_seconds = cache_seconds
        self._failure_delay = failure_delay
        self._clock = clock
        self._key = secrets.token_bytes(32)
        self._verified: dict[str, tuple[str, bytes, float]] = {}
        # Each Argon2 check takes 19 MiB: bound how many run at once, and let
        # simultaneous logins with the same credentials share one check.
        self._hashing = asyncio.Semaphore(2)
        self._inflight: dict[tuple[str, bytes], asyncio.Future[bool]] = {}
        self._attempts: dict[AttemptKey, asyncio.Future[LoginResult]] = {}
        self._decoy: str | None = None  # the hash an unknown account's password is checked on

    @property
    def bearer_enabled(self) -> bool:
        return self._bearer is not None

    def _digest(self, password: str) -> bytes:
        return hmac.new(self._key, password.encode(), hashlib.sha256).digest()

    async def _refuse(self, reason: str, slowed: bool = False) -> LoginResult:
        """A failure: answered late (slows guessing, blocks nobody else); from a slowed
        address, answered as throttled."""
        await asyncio.sleep(self._failure_delay)
        if slowed:
            return LoginResult(None, throttled=True, reason=f"{reason} (address slowed)")
        return LoginResult(None, reason=reason)

    @staticmethod
    def _logged(door: str, given: str | None, ip: str | None, result: LoginResult) -> LoginResult:
        if not result.ok:
            log_refusal(door, given, ip, result.reason)
        return result

    async def _admit(self, account: str | None, ip: str | None) -> Admission | LoginResult:
        """The attempt charged before any check: its admission, or the throttled answer."""
        admission = await self._ledger.admit(account, ip)
        if admission.wait:
            why = f"throttled ({admission.rule}, {admission.wait} s)"
            return LoginResult(None, throttled=True, reason=why)
        if admission.delay:
            await asyncio.sleep(admission.delay)  # a slowed address
        return admission

    @staticmethod
    def _identity(creds: Credentials, method: str) -> LoginIdentity:
        return LoginIdentity(
            creds.address, creds.kind, creds.national_id, method, creds.display_name
        )

    @staticmethod
    def _unusable(creds: Credentials | None, kinds: Collection[str]) -> str:
        """Why this account cannot log in with a password here ("" if it can)."""
        if creds is None:
            return "unknown account"
        if creds.disabled:
            return "account disabled"
        if creds.kind not in kinds:
            return f"a {creds.kind} account cannot log in here"
        return "" if creds.password_hash else "account without a password"

    async def with_password(
        self, address: str, password: str, ip: str | None, kinds: Collection[str], *, door: str
    ) -> LoginResult:
        """Simultaneous identical attempts (a mail client opening its connections at once)
        are one attempt: charged once, checked once, each logged."""
        key = (address.strip().lower(), ip or "", tuple(kinds), self._digest(password))
        attempt = self._attempts.get(key)
        if attempt is None:
            attempt = asyncio.ensure_future(self._password_login(key[0], password, ip, kinds))
            self._attempts[key] = attempt
            attempt.add_done_callback(lambda done: self._attempt_over(key, done))
        return self._logged(door, address, ip, await asyncio.shield(attempt))

    def _attempt_over(self, key: AttemptKey, done: asyncio.Future[Any]) -> None:
        del self._attempts[key]
        if not done.cancelled():
            done.exception()  # retrieved: the waiters get it, nobody else logs it

    async def _password_login(
        self, address: str, password: str, ip: str | None, kinds: Collection[str]
    ) -> LoginResult:
        creds = await self._source.by_address(address)
        unusable = self._unusable(creds, kinds)
        if creds is not None and not unusable and self._cached(creds, password):
            # a right password this process checked lately: nothing to guess, no charge
            if await self._ledger.held(address, ip):
                return LoginResult(None, throttled=True, reason="throttled (account)")
            return LoginResult(self._identity(creds, "password"))
        admission = await self._admit(address, ip)
        if isinstance(admission, LoginResult):
            return admission
        if creds is None or unusable:  # the work of a check: no oracle of who exists
            await self._check_in_vain(password)
            return await self._refuse(unusable, bool(admission.delay))
        if not await self._password_matches(creds, password):
            return await self._refuse("wrong password", bool(admission.delay))
        await self._ledger.succeeded(address, ip, admission)
        return LoginResult(self._identity(creds, "password"))

    async def _check_in_vain(self, password: str) -> None:
        """A password checked against a hash of no account, as long as a real check."""
        if self._decoy is None:
            self._decoy = await asyncio.to_thread(hash_password, secrets.token_hex(16))
        async with self._hashing:
            await asyncio.to_thread(verify_password, self._decoy, password)

    def _cached(self, creds: Credentials, password: str) -> bool:
        cached = self._verified.get(creds.address)
        return (
            cached is not None
            and cached[0] == creds.password_hash
            and cached[2] > self._clock()
            and hmac.compare_digest(cached[1], self._digest(password))
        )

    async def _password_matches(self, creds: Credentials, password: str) -> bool:
        assert creds.password_hash is not None
        digest = self._digest(password)
        key = (creds.password_hash, digest)
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            async with self._hashing:
                ok = await asyncio.to_thread(verify_password, creds.password_hash, password)
            future.set_result(ok)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: the waiters get it, nobody else logs it
            raise
        finally:
            del self._inflight[key]
        if ok:
            expires = self._clock() + self._cache_seconds
            self._verified[creds.address] = (creds.password_hash, digest, expires)
        return ok

    async def with_bearer(
        self, user: str, token: str, ip: str | None, kinds: Collection[str], *, door: str
    ) -> LoginResult:
        result = await self._bearer_login(user.strip().lower(), token, ip, kinds)
        return self._logged(door, user, ip, result)

    async def _bearer_login(
        self, user: str, token: str, ip: str | None, kinds: Collection[str]
    ) -> LoginResult:
        if self._bearer is None:
            return LoginResult(None, reason="bearer tokens are not configured")
        admission = await self._admit(user or None, ip)
        if isinstance(admission, LoginResult):
            return admission
        slowed = bool(admission.delay)
        try:
            claims = self._bearer.validate_at_hand(token)  # no I/O: on the event loop
            if claims is None:  # the issuer's keys may have to be fetched
                claims = await asyncio.to_thread(self._bearer.validate, token)
        except TokenError as exc:
            return await self._refuse(f"token refused: {exc}", slowed)
        creds = await self._source.by_address(user) if user else None
        if creds is None and claims.address:
            creds = await self._source.by_address(claims.address)
        if creds is None or creds.disabled or creds.kind not in kinds:
            return await self._refuse("unknown account", slowed)
        owns = claims.address == creds.address or (
            claims.national_id is not None and claims.national_id == creds.national_id
        )
        if not owns:
            return await self._refuse("the token names another person", slowed)
        await self._ledger.succeeded(user or None, ip, admission)
        return LoginResult(self._identity(creds, "bearer"))

    async def with_certificate(
        self,
        identity: CertIdentity | None,
        authzid: str,
        ip: str | None,
        kinds: Collection[str],
        *,
        door: str,
    ) -> LoginResult:
        """EXTERNAL: the verified client certificate names the account (see pki.identity_of).
        Nothing can be guessed here: refusals are logged, not counted."""
        result = await self._certificate_login(identity, authzid.strip().lower(), kinds)
        return self._logged(door, authzid or None, ip, result)

    async def _certificate_login(
        self, identity: CertIdentity | None, wanted: str, kinds: Collection[str]
    ) -> LoginResult:
        if identity is None:
            return LoginResult(None, reason="no verified client certificate")
        candidates: list[Credentials] = []
        if identity.kind == "applicative" and identity.address:
            found = await self._source.by_address(identity.address)
            candidates = [found] if found is not None else []
        elif identity.kind == "professional" and identity.national_id:
            candidates = await self._source.by_national_id(identity.national_id)
        usable = [
            c
            for c in candidates
            if not c.disabled and c.kind in kinds and (not wanted or c.address == wanted)
        ]
        if len(usable) != 1:
            reason = "certificate names no usable account" if not usable else "say which account"
            return await self._refuse(reason)
        return LoginResult(self._identity(usable[0], "certificate"))
