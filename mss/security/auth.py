"""Who is logging in: passwords, bearer tokens, client certificates; with throttling.

SMTP and IMAP share one `LoginService`. It never reads the database itself:
the accounts come from a `CredentialSource` passed in by `app`.

Passwords are Argon2id hashes (memory-hard), checked on a thread. A successful
check is remembered for a few minutes as an HMAC of the password under a key
that lives only in this process, so a mail client that logs in every minute
does not pay the hash each time; a changed hash or a wrong password falls back
to the full check.

Failed logins are throttled per address and per client IP with a sliding
window: past the limit, further attempts are refused without checking
anything until the window has moved on.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Protocol

from mss.security.passwords import verify_password
from mss.security.pki import CertIdentity
from mss.security.tokens import BearerValidator, TokenError

Clock = Callable[[], float]


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


class LoginThrottle:
    """Sliding-window counters of failed logins per address and per client IP."""

    def __init__(
        self,
        *,
        per_address: int = 5,
        per_ip: int = 20,
        window: float = 900.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self._limits = {"a": per_address, "i": per_ip}
        self._window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        now = self._clock()
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and now - failures[0] > self._window:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    def blocked(self, address: str | None, ip: str | None) -> bool:
        keys = [("a", address), ("i", ip)]
        return any(
            value is not None and len(self._recent(f"{kind}:{value}")) >= self._limits[kind]
            for kind, value in keys
        )

    def failure(self, address: str | None, ip: str | None) -> None:
        now = self._clock()
        for kind, value in (("a", address), ("i", ip)):
            if value is not None:
                self._failures.setdefault(f"{kind}:{value}", deque()).append(now)

    def success(self, address: str) -> None:
        self._failures.pop(f"a:{address}", None)


class LoginService:
    def __init__(
        self,
        source: CredentialSource,
        *,
        throttle: LoginThrottle | None = None,
        bearer: BearerValidator | None = None,
        cache_seconds: float = 600.0,
        failure_delay: float = 0.5,
        clock: Clock = time.monotonic,
    ) -> None:
        self._source = source
        self.throttle = throttle or LoginThrottle(clock=clock)
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

    @property
    def bearer_enabled(self) -> bool:
        return self._bearer is not None

    def _digest(self, password: str) -> bytes:
        return hmac.new(self._key, password.encode(), hashlib.sha256).digest()

    async def _refuse(self, address: str | None, ip: str | None, reason: str) -> LoginResult:
        self.throttle.failure(address, ip)
        await asyncio.sleep(self._failure_delay)  # slows guessing, blocks nobody else
        return LoginResult(None, reason=reason)

    @staticmethod
    def _identity(creds: Credentials, method: str) -> LoginIdentity:
        return LoginIdentity(
            creds.address, creds.kind, creds.national_id, method, creds.display_name
        )

    async def with_password(
        self, address: str, password: str, ip: str | None, kinds: Collection[str]
    ) -> LoginResult:
        address = address.strip().lower()
        if self.throttle.blocked(address, ip):
            return LoginResult(None, throttled=True, reason="throttled")
        creds = await self._source.by_address(address)
        if creds is None or creds.disabled or creds.kind not in kinds or not creds.password_hash:
            return await self._refuse(address, ip, "unknown, disabled or not allowed here")
        if not await self._password_matches(creds, password):
            return await self._refuse(address, ip, "wrong password")
        self.throttle.success(address)
        return LoginResult(self._identity(creds, "password"))

    async def _password_matches(self, creds: Credentials, password: str) -> bool:
        assert creds.password_hash is not None
        digest = self._digest(password)
        cached = self._verified.get(creds.address)
        now = self._clock()
        if (
            cached is not None
            and cached[0] == creds.password_hash
            and cached[2] > now
            and hmac.compare_digest(cached[1], digest)
        ):
            return True
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
            self._verified[creds.address] = (creds.password_hash, digest, now + self._cache_seconds)
        return ok

    async def with_bearer(
        self, user: str, token: str, ip: str | None, kinds: Collection[str]
    ) -> LoginResult:
        user = user.strip().lower()
        if self._bearer is None:
            return LoginResult(None, reason="bearer tokens are not configured")
        if self.throttle.blocked(user or None, ip):
            return LoginResult(None, throttled=True, reason="throttled")
        try:
            claims = await asyncio.to_thread(self._bearer.validate, token)
        except TokenError as exc:
            return await self._refuse(user or None, ip, f"token refused: {exc}")
        creds = await self._source.by_address(user) if user else None
        if creds is None and claims.address:
            creds = await self._source.by_address(claims.address)
        if creds is None or creds.disabled or creds.kind not in kinds:
            return await self._refuse(user or None, ip, "no such account")
        owns = claims.address == creds.address or (
            claims.national_id is not None and claims.national_id == creds.national_id
        )
        if not owns:
            return await self._refuse(user or None, ip, "the token names another person")
        self.throttle.success(creds.address)
        return LoginResult(self._identity(creds, "bearer"))

    async def with_certificate(
        self, identity: CertIdentity | None, authzid: str, ip: str | None, kinds: Collection[str]
    ) -> LoginResult:
        """EXTERNAL: the verified client certificate names the account (see pki.identity_of)."""
        if identity is None:
            return LoginResult(None, reason="no verified client certificate")
        candidates: list[Credentials] = []
        if identity.kind == "applicative" and identity.address:
            found = await self._source.by_address(identity.address)
            candidates = [found] if found is not None else []
        elif identity.kind == "professional" and identity.national_id:
            candidates = await self._source.by_national_id(identity.national_id)
        wanted = authzid.strip().lower()
        usable = [
            c
            for c in candidates
            if not c.disabled and c.kind in kinds and (not wanted or c.address == wanted)
        ]
        if len(usable) != 1:
            reason = "certificate names no usable account" if not usable else "say which account"
            return await self._refuse(wanted or None, ip, reason)
        return LoginResult(self._identity(usable[0], "certificate"))
