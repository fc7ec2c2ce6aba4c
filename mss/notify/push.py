"""The Web Push channel of the notifications: an opaque id, encrypted for one browser.

The payload is the notice's idempotency id only, `{"id": "<notice id>"}`, never its
text (Mon espace santé's app does the same): the service worker fetches what to show
from the patient space once the patient is logged in, so a push service learns
nothing about the patient's health. The payload is encrypted for the subscription's
keys (RFC 8291, `aes128gcm` content coding of RFC 8188) and the request carries a VAPID
token signed with our key (RFC 8292), both done by pywebpush (with http_ece and
py_vapid). The notice's `extra` carries the subscription as the browser gave it:
`endpoint`, `p256dh` and `auth`.

A push service's answer (RFC 8030 §5, §8.3) maps onto the channel's errors: 201/202
sent; 404/410 the subscription is gone (the caller deletes it); 400, 413 and any other
4xx but 408/429 will never take this notice (permanent); 408, 429, 5xx, time-outs and
connection errors are temporary.

The endpoint is a URL a patient's browser gave: the space checked that its host was
public when it was subscribed (`mss.space.choices.check_endpoint`), and the sending
checks again, where it connects: no redirect is followed (a 3xx is a permanent
failure) and the connection goes only to a public address (`PublicResolver`; an IP
in the URL is checked before), whatever DNS answers now (DNS rebinding). A test
instance whose push services listen on the loopback turns this off
(`[notify] push_private_networks`).
"""

from __future__ import annotations

import base64
import json
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid, VapidException  # type: ignore[import-untyped]
from py_vapid.utils import b64urlencode  # type: ignore[import-untyped]
from pywebpush import WebPushException, webpush_async  # type: ignore[import-untyped]

from mss.core.netaddr import is_address, public
from mss.notify.base import ChannelError, ChannelName, Notice

TTL_SECONDS = 86_400  # RFC 8030 §5.2: kept one day for a browser that is offline
URGENCY = "normal"  # RFC 8030 §5.3: delivered at once unless the battery is low
ENCODING = "aes128gcm"  # RFC 8291 §4
VAPID_TOKEN_LIFETIME = 12 * 3600  # RFC 8292 §2: the `exp` claim is at most 24 hours ahead

GONE = frozenset({404, 410})  # RFC 8030 §7.3: the subscription expired or was removed
TEMPORARY = frozenset({408, 429})  # RFC 8030 §8.3 (429 Too Many Requests): try again later
SUBSCRIPTION_KEYS = ("endpoint", "p256dh", "auth")
AUTH_SECRET_BYTES = 16  # RFC 8291 §3.2
UNCOMPRESSED_POINT_BYTES = 65  # RFC 8291 §3.1 (X9.62 uncompressed form)


class NotPublic(OSError):
    """The push service's host resolves to an address that is not on the Internet."""


class PublicResolver(aiohttp.abc.AbstractResolver):
    """aiohttp's resolver, refusing a host any of whose addresses is not public: the
    connection is made to an address checked here, at sending (DNS rebinding)."""

    def __init__(self) -> None:
        self._resolver = aiohttp.DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[aiohttp.abc.ResolveResult]:
        found = await self._resolver.resolve(host, port, family)
        if not all(public(str(one["host"])) for one in found):
            raise NotPublic(f"{host} is not a public address")
        return found

    async def close(self) -> None:
        await self._resolver.close()


class _NoRedirects:
    """The session pywebpush posts with, never following a redirect."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    async def post(self, url: str, **kwargs: Any) -> aiohttp.ClientResponse:
        return await self._session.post(url, allow_redirects=False, **kwargs)


def generate_vapid_keys() -> tuple[str, str]:
    """A new VAPID key pair for `mss init`: (the private key as the base64url of its
    32 bytes, which `PushChannel` and py-vapid accept; the public key as the base64url
    of its uncompressed point, the `applicationServerKey` a browser subscribes with)."""
    private = ec.generate_private_key(ec.SECP256R1())
    raw = private.private_numbers().private_value.to_bytes(32, "big")
    return b64urlencode(raw), _public_b64url(private)


def _public_b64url(private: ec.EllipticCurvePrivateKey) -> str:
    point = private.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return str(b64urlencode(point))


def _load_vapid_key(private_key: str) -> Any:
    """A py-vapid signer from a PEM private key or the base64url raw form (or the
    base64 DER form) py-vapid reads; `ValueError` (naming no key material) if neither."""
    text = private_key.strip()
    try:
        if text.startswith("-----BEGIN"):
            return Vapid.from_pem(text.encode())
        return Vapid.from_string(private_key=text)
    except (ValueError, TypeError, VapidException) as exc:
        raise ValueError(
            f"the VAPID private key is neither PEM nor base64url ({type(exc).__name__})"
        ) from None


class PushChannel:
    """Sends a notice's id to one browser's push subscription (see the module's text).

    `vapid_private_key`: PEM or base64url raw (as `generate_vapid_keys` gives it);
    `vapid_subject`: the operator's contact, "mailto:…" or an https URL (RFC 8292 §2.1);
    `timeout`: seconds for the whole request; `private_networks`: push services may be
    on private addresses (the loopback of tests: never in production). Raises
    `ValueError` for a key or subject py-vapid refuses, at construction rather than at
    the first notice."""

    name = ChannelName.PUSH

    def __init__(
        self, vapid_private_key: str, vapid_subject: str, timeout: float,
        *, private_networks: bool = False,
    ) -> None:  # fmt: skip
        self._vapid = _load_vapid_key(vapid_private_key)
        self._subject = vapid_subject
        self._timeout = timeout
        self._private_networks = private_networks
        self._check_subject()

    def __repr__(self) -> str:
        return f"PushChannel(subject={self._subject!r}, timeout={self._timeout})"

    @property
    def public_key(self) -> str:
        """The base64url public key browsers subscribe with (`applicationServerKey`)."""
        return _public_b64url(self._vapid.private_key)

    def _check_subject(self) -> None:
        try:
            self._vapid.sign({"sub": self._subject, "aud": "https://push.example"})
        except VapidException:
            raise ValueError(
                f'the VAPID subject {self._subject!r} is not "mailto:…" nor an https URL'
            ) from None

    async def send(self, notice: Notice) -> str:
        """Push `{"id": notice.id}`; return the push service's `Location` ("" if none)."""
        subscription = _subscription(notice)
        if not self._private_networks:
            _check_literal(subscription["endpoint"])
        try:
            response = await self._post(subscription, _payload(notice))
        except (
            WebPushException,
            VapidException,
            TimeoutError,
            aiohttp.ClientError,
            ValueError,
        ) as exc:
            raise self._failure(exc, _origin(subscription["endpoint"])) from None
        return str(response.headers.get("Location", ""))

    def _failure(self, exc: Exception, origin: str) -> ChannelError:
        """The channel's error for what the request raised (the endpoint's path, a
        capability, is never part of the reason)."""
        if isinstance(exc, WebPushException):
            return _refusal(exc, origin)
        if isinstance(exc, TimeoutError):
            reason = f"the push service {origin} did not answer within {self._timeout} s"
            return ChannelError(reason, permanent=False)
        if isinstance(exc, VapidException):  # RFC 8292 §2: an `aud` py-vapid cannot sign
            return ChannelError(f"no VAPID token for {origin}: {exc}", permanent=True)
        if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, NotPublic):
            return ChannelError(f"the push service {origin} is not a public address: delete it",
                                permanent=True)  # fmt: skip
        if isinstance(exc, aiohttp.InvalidURL):
            return ChannelError("the push subscription's endpoint is not a URL", permanent=True)
        if isinstance(exc, aiohttp.ClientError):
            reason = f"cannot reach the push service {origin}: {type(exc).__name__}"
            return ChannelError(reason, permanent=False)
        # ValueError: base64 or a point of P-256 that pywebpush/http_ece could not use
        return ChannelError("the push subscription's keys are invalid: delete it", permanent=True)

    async def _post(self, subscription: dict[str, str], payload: str) -> Any:
        resolver = None if self._private_networks else PublicResolver()
        connector = aiohttp.TCPConnector(resolver=resolver)
        try:
            async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:
                return await webpush_async(
                    subscription_info=_subscription_info(subscription),
                    data=payload,
                    vapid_private_key=self._vapid,
                    vapid_claims=self._claims(subscription["endpoint"]),
                    content_encoding=ENCODING,
                    timeout=aiohttp.ClientTimeout(total=self._timeout),
                    ttl=TTL_SECONDS,
                    headers={"Urgency": URGENCY},
                    aiohttp_session=_NoRedirects(session),
                )
        finally:
            if resolver is not None:
                await resolver.close()

    def _claims(self, endpoint: str) -> dict[str, str | int]:
        # RFC 8292 §2: `aud` is the origin of the push resource; a new dict each time
        # (pywebpush fills it in place)
        return {
            "sub": self._subject,
            "aud": _origin(endpoint),
            "exp": int(time.time()) + VAPID_TOKEN_LIFETIME,
        }


def _payload(notice: Notice) -> str:
    """The notice's idempotency id, nothing else: no text, no link, no event name."""
    return json.dumps({"id": notice.id})


def _subscription(notice: Notice) -> dict[str, str]:
    """The subscription in `notice.extra`, its keys checked (a `ChannelError`, permanent,
    names what is wrong)."""
    missing = [key for key in SUBSCRIPTION_KEYS if not notice.extra.get(key)]
    if missing:
        raise ChannelError(
            f"the push subscription lacks {', '.join(missing)}: delete it", permanent=True
        )
    subscription = {key: notice.extra[key] for key in SUBSCRIPTION_KEYS}
    _check_endpoint(subscription["endpoint"])
    _check_keys(subscription)
    return subscription


def _check_endpoint(endpoint: str) -> None:
    """An http(s) URL with a host (pywebpush would take anything)."""
    try:
        parts = urlsplit(endpoint)
    except ValueError:
        parts = urlsplit("")
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ChannelError(
            "the push subscription's endpoint is not a URL: delete it", permanent=True
        )


def _check_literal(endpoint: str) -> None:
    """An endpoint whose host is an IP address (no name for `PublicResolver` to check):
    a public one only."""
    host = urlsplit(endpoint).hostname or ""
    if is_address(host) and not public(host):
        raise ChannelError(
            f"the push service {_origin(endpoint)} is not a public address: delete it",
            permanent=True,
        )


def keys_are_valid(p256dh: str, auth: str) -> bool:
    """RFC 8291 §3.2: what a browser's subscription must carry (checked when the patient's
    space stores one, and again at each sending)."""
    return _is_p256_point(p256dh) and _is_auth_secret(auth)


def _check_keys(subscription: dict[str, str]) -> None:
    """RFC 8291 §3.2: `p256dh` is a point of P-256 and `auth` a 16-octet secret, both
    base64url (pywebpush does not check them all)."""
    if not keys_are_valid(subscription["p256dh"], subscription["auth"]):
        raise ChannelError("the push subscription's keys are invalid: delete it", permanent=True)


def _is_p256_point(text: str) -> bool:
    """RFC 8291 §3.1: the uncompressed form of X9.62 (65 octets), on the curve."""
    try:
        raw = _b64url_decode(text)
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError:  # binascii.Error is one
        return False
    return len(raw) == UNCOMPRESSED_POINT_BYTES


def _is_auth_secret(text: str) -> bool:
    try:
        return len(_b64url_decode(text)) == AUTH_SECRET_BYTES
    except ValueError:
        return False


def _b64url_decode(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def _subscription_info(subscription: dict[str, str]) -> dict[str, Any]:
    """The shape of the browser's `PushSubscription.toJSON()`, which pywebpush takes."""
    keys = {"p256dh": subscription["p256dh"], "auth": subscription["auth"]}
    return {"endpoint": subscription["endpoint"], "keys": keys}


def _origin(endpoint: str) -> str:
    """scheme://host[:port] of the endpoint (its path is a capability: never logged)."""
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _refusal(exc: WebPushException, origin: str) -> ChannelError:
    """The channel's error for what pywebpush raised: a push service's answer above 202,
    or (no response) subscription keys it could not encrypt for."""
    if exc.response is None:
        return ChannelError(f"the push subscription is unusable: {exc.message}", permanent=True)
    status = int(exc.response.status)
    if status in GONE:
        return ChannelError(
            f"the push subscription is gone (HTTP {status} from {origin}): delete it",
            permanent=True,
        )
    permanent = 300 <= status < 500 and status not in TEMPORARY
    return ChannelError(f"the push service {origin} answered HTTP {status}", permanent=permanent)
