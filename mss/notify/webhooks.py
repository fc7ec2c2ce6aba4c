"""Signed webhooks, the Standard Webhooks way (standardwebhooks.com, spec 1.0.0): the
per-mailbox call that tells an applicative (APP) mailbox's software that mail arrived.

Every call is a POST of a JSON body with three headers:
    webhook-id         the idempotency id, the same at every attempt of one event
    webhook-timestamp  the attempt's time, integer seconds since the epoch
    webhook-signature  "v1,<base64 HMAC-SHA256 of '{id}.{timestamp}.{body}'>", once per
                       secret, space-separated (several secrets during a rotation)
Secrets are shown as the spec serialises them: "whsec_" + base64 of 24 to 64 random
bytes (`new_secret`).

For the owner of an APP mailbox (the receiving side): check a call with
`verify(secrets, headers, body)` or any Standard Webhooks library, on the raw body
bytes as received (not re-serialised JSON). `verify` refuses a call whose timestamp is
more than `tolerance` seconds (default 5 minutes) from your clock, so that a recorded
call cannot be replayed later; within that window drop a `webhook-id` you have already
processed (keep the ids of the last 5 minutes): a call is sent at least once, and may
be sent again after a time-out. Answer 2xx once the event is safely recorded; 410 Gone
asks us to stop calling that URL.

The sender's view of the answers (spec, "Delivery success and failure"): 2xx sent; 410
and any other 3xx/4xx but 408/429 are permanent (redirects are not followed: fix the
URL); 408, 429, 5xx, time-outs and connection errors are temporary (the outbox retries
with backoff).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping, Sequence
from secrets import token_bytes

import httpx

from mss.errors import MssError
from mss.notify.base import ChannelError

SECRET_PREFIX = "whsec_"  # noqa: S105 (the spec's prefix, not a secret)
SECRET_BYTES = 32  # spec: "at least 24 bytes (192 bits, 512 maximum)"
MIN_SECRET_BYTES, MAX_SECRET_BYTES = 24, 64
SIGNATURE_VERSION = "v1"  # spec: the identifier of HMAC-SHA256 signatures
DEFAULT_TOLERANCE = 300  # seconds; spec: "within some allowable tolerance" (5 minutes)
TEMPORARY = frozenset({408, 429})  # spec: 429 asks to throttle, 408 to try again


class WebhookVerificationError(MssError):
    """A webhook call `verify` refuses; says why, never a secret."""


def new_secret() -> str:
    """A new signing secret, "whsec_" + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(token_bytes(SECRET_BYTES)).decode()


def _key(secret: str) -> bytes:
    """The HMAC key of a "whsec_<base64>" secret; `ValueError` (without the secret) if
    it is not one."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f'a webhook secret starts with "{SECRET_PREFIX}"')
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:  # padding is optional, as in the spec's libraries
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        raise ValueError("a webhook secret is whsec_ followed by base64") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(f"a webhook secret holds {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes")
    return key


def _signed_content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    # spec, "Signature scheme": the id and the timestamp must not contain a full stop
    if not msg_id or "." in msg_id:
        raise ValueError("a webhook id is not empty and has no full stop")
    return f"{msg_id}.{timestamp}.".encode() + body


def _signature(key: bytes, content: bytes) -> str:
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def sign(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: one "v1,<base64>" per secret, space-separated.
    `ValueError` if there is no secret, a malformed one, or a full stop in the id."""
    if not secrets:
        raise ValueError("no webhook secret to sign with")
    content = _signed_content(msg_id, timestamp, body)
    return " ".join(_signature(_key(secret), content) for secret in secrets)


def verify(
    secrets: Sequence[str],
    headers: Mapping[str, str],
    body: bytes,
    tolerance: int = DEFAULT_TOLERANCE,
    *,
    now: float | None = None,
) -> str:
    """Check a call received (the receiving side, see the module's text) and return its
    `webhook-id`. `secrets`: the ones you accept (old and new during a rotation);
    `headers`: the request's (any case); `body`: the raw bytes; `now`: your clock, by
    default `time.time()`. Raises `WebhookVerificationError`."""
    fields = {name.lower(): value for name, value in headers.items()}
    msg_id, stamp, signatures = (
        fields.get(f"webhook-{n}") for n in ("id", "timestamp", "signature")
    )
    if not (msg_id and stamp and signatures):
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    timestamp = _fresh_timestamp(stamp, tolerance, time.time() if now is None else now)
    try:
        expected = sign(secrets, msg_id, timestamp, body).split(" ")
    except ValueError as exc:
        raise WebhookVerificationError(str(exc)) from None
    if not _any_matches(expected, signatures.split(" ")):
        raise WebhookVerificationError("no signature matches a secret")
    return msg_id


def _fresh_timestamp(stamp: str, tolerance: int, now: float) -> int:
    """spec, "Verifying signatures": a timestamp far from now is a replay (or a clock
    gone wrong): refused either way."""
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not an integer") from None
    if timestamp < now - tolerance:
        raise WebhookVerificationError("webhook-timestamp is too old (a replay?)")
    if timestamp > now + tolerance:
        raise WebhookVerificationError("webhook-timestamp is in the future")
    return timestamp


def _any_matches(expected: Sequence[str], received: Sequence[str]) -> bool:
    """Constant-time comparison of every pair (spec: "use a constant time comparison")."""
    matches = [
        hmac.compare_digest(mine.encode(), theirs.encode())
        for mine in expected
        for theirs in received
    ]
    return any(matches)


class WebhookSender:
    """POSTs signed webhook calls; one connection pool, closed by `aclose()` (or use it
    as an async context manager). `timeout`: seconds for a whole call (the spec suggests
    15 to 30); `clock`: seconds since the epoch, for `webhook-timestamp`."""

    def __init__(self, timeout: float, *, clock: Callable[[], float] = time.time) -> None:
        self._timeout = timeout
        self._clock = clock
        self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)

    def __repr__(self) -> str:
        return f"WebhookSender(timeout={self._timeout})"

    async def __aenter__(self) -> WebhookSender:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, url: str, msg_id: str, body: bytes, secrets: Sequence[str]) -> None:
        """POST `body` (JSON) to `url`, signed with every one of `secrets`. Raises
        `ChannelError` (permanent or not, see the module's text), nothing else on purpose.
        The same `msg_id` at every attempt; the timestamp is the attempt's."""
        headers = self._headers(msg_id, body, secrets)
        try:
            response = await self._client.post(url, content=body, headers=headers)
        except httpx.TimeoutException:
            raise ChannelError(
                f"the webhook did not answer within {self._timeout} s", permanent=False
            ) from None
        except (httpx.InvalidURL, httpx.UnsupportedProtocol):
            raise ChannelError("the webhook URL is not an http(s) URL", permanent=True) from None
        except httpx.HTTPError as exc:
            raise ChannelError(
                f"cannot reach the webhook: {type(exc).__name__}", permanent=False
            ) from None
        _check_answer(response.status_code)

    def _headers(self, msg_id: str, body: bytes, secrets: Sequence[str]) -> dict[str, str]:
        timestamp = int(self._clock())
        try:
            signature = sign(secrets, msg_id, timestamp, body)
        except ValueError as exc:
            raise ChannelError(f"cannot sign the webhook: {exc}", permanent=True) from None
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature,
            "content-type": "application/json",
        }


def _check_answer(status: int) -> None:
    """spec, "Delivery success and failure": 2xx is success; the rest fails, 410 and
    the client errors for good, 408/429 and server errors for now."""
    if 200 <= status < 300:
        return
    if status == 410:
        raise ChannelError("the webhook answered 410 Gone: stop calling it", permanent=True)
    permanent = 300 <= status < 500 and status not in TEMPORARY
    raise ChannelError(f"the webhook answered HTTP {status}", permanent=permanent)
