"""The Web Push channel (mss/notify/push.py) against a real push service on loopback.

The service in the test plays the push service's part: it checks the VAPID token
(RFC 8292: an ES256 JWT whose `aud` is the endpoint's origin and `sub` the operator's
contact, verified with PyJWT against the public key), and decrypts the body with the
subscription's private key and auth secret, as the browser would (RFC 8291, with
http_ece): the plaintext is the notice's id and nothing else.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import http_ece
import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mss.notify.base import Channel, ChannelError, ChannelName, Notice
from mss.notify.push import PushChannel, generate_vapid_keys

from .notifying import http_receiver

SUBJECT = "mailto:exploitation@mss.example"
LOCATION = "/message/4b1d"
# unique strings: none of them may leave in a push
SECRET_TEXTS = (
    "Dr-Sender-Unique-9a1",
    "Subject-Unique-Cardiology-77c",
    "Title-Unique-Biopsy-3e2",
    "https://space-unique.example/espace/",
    "new_document",
    "1801275123456",
)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def point(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


@dataclass
class Browser:
    """What a browser keeps for a subscription: a P-256 key pair and a 16-byte secret."""

    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    def subscription(self, endpoint: str) -> dict[str, str]:
        return {"endpoint": endpoint, "p256dh": b64url(point(self.key)), "auth": b64url(self.auth)}

    def decrypt(self, body: bytes) -> bytes:
        # RFC 8291 §3.4: the sender's public key and the salt travel in the body's header
        plain: bytes = http_ece.decrypt(
            body, private_key=self.key, auth_secret=self.auth, version="aes128gcm"
        )
        return plain


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class PushService:
    """A push service on loopback: records each request and answers `status`, after
    waiting for `release` if `hold` is set (to make the sender time out)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.status = 201
        self.hold = False
        self.release = asyncio.Event()
        self.base = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append(Received(request.path, dict(request.headers), body))
        if self.hold:
            await asyncio.wait_for(self.release.wait(), 10)
        return web.Response(status=self.status, headers={"Location": LOCATION})

    def endpoint(self, token: str = "sub-0001") -> str:
        return f"{self.base}/push/{token}"


@pytest.fixture
async def service() -> AsyncIterator[PushService]:
    push = PushService()
    async with http_receiver({"/push/{token}": push.handle}) as push.base:
        yield push
        push.release.set()


@pytest.fixture(scope="module")
def vapid() -> tuple[str, str]:
    return generate_vapid_keys()


def make_notice(subscription: dict[str, str]) -> Notice:
    return Notice(
        id="ntc_7Q2mX9",
        ins="1801275123456",
        event="new_document",
        channel=ChannelName.PUSH,
        destination="push-sub-42",
        subject="Subject-Unique-Cardiology-77c de Dr-Sender-Unique-9a1",
        text="Title-Unique-Biopsy-3e2 https://space-unique.example/espace/",
        link="https://space-unique.example/espace/",
        extra=subscription,
    )


def channel(vapid: tuple[str, str], timeout: float = 5.0) -> PushChannel:
    return PushChannel(vapid[0], SUBJECT, timeout, private_networks=True)


def verify_vapid(authorization: str, public_key: str, origin: str) -> dict[str, Any]:
    """RFC 8292 §3: `vapid t=<JWT>, k=<public key>`; the JWT signed ES256 by that key."""
    scheme, _, params = authorization.partition(" ")
    assert scheme.lower() == "vapid"
    fields = dict(part.strip().split("=", 1) for part in params.split(","))
    assert fields["k"] == public_key
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(fields["k"]))
    claims: dict[str, Any] = jwt.decode(
        fields["t"], key, algorithms=["ES256"], audience=origin, options={"require": ["exp"]}
    )
    return claims


async def test_push_carries_only_the_notice_id_encrypted_for_the_subscription(
    service: PushService, vapid: tuple[str, str]
) -> None:
    browser = Browser()
    notice = make_notice(browser.subscription(service.endpoint()))

    location = await channel(vapid).send(notice)

    assert location == LOCATION
    [got] = service.received
    assert got.path == "/push/sub-0001"
    plaintext = browser.decrypt(got.body)
    assert plaintext == b'{"id": "ntc_7Q2mX9"}'
    assert json.loads(plaintext) == {"id": notice.id}
    for text in SECRET_TEXTS:
        assert text.encode() not in plaintext
        assert text.encode() not in got.body
        assert all(text not in value for value in got.headers.values())


async def test_push_is_signed_with_vapid_for_the_endpoint_origin(
    service: PushService, vapid: tuple[str, str]
) -> None:
    await channel(vapid).send(make_notice(Browser().subscription(service.endpoint())))

    [got] = service.received
    claims = verify_vapid(got.headers["Authorization"], vapid[1], service.base)
    assert claims["sub"] == SUBJECT
    assert claims["aud"] == service.base
    assert time.time() < claims["exp"] <= time.time() + 24 * 3600  # RFC 8292 §2


async def test_push_headers_say_aes128gcm_one_day_and_normal_urgency(
    service: PushService, vapid: tuple[str, str]
) -> None:
    await channel(vapid).send(make_notice(Browser().subscription(service.endpoint())))

    [got] = service.received
    headers = {name.lower(): value for name, value in got.headers.items()}
    assert headers["content-encoding"] == "aes128gcm"  # RFC 8291 §4
    assert headers["ttl"] == "86400"
    assert headers["urgency"] == "normal"


async def test_push_accepts_a_pem_vapid_key(service: PushService) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    push = PushChannel(pem, SUBJECT, 5.0, private_networks=True)
    browser = Browser()

    await push.send(make_notice(browser.subscription(service.endpoint())))

    [got] = service.received
    assert push.public_key == b64url(point(key))
    verify_vapid(got.headers["Authorization"], push.public_key, service.base)
    assert browser.decrypt(got.body) == b'{"id": "ntc_7Q2mX9"}'


@pytest.mark.parametrize("status", [404, 410])
async def test_gone_subscription_is_a_permanent_error_saying_so(
    service: PushService, vapid: tuple[str, str], status: int
) -> None:
    service.status = status
    endpoint = service.endpoint("capability-token-xyz")
    with pytest.raises(ChannelError) as caught:
        await channel(vapid).send(make_notice(Browser().subscription(endpoint)))
    assert caught.value.permanent
    assert "gone" in caught.value.reason
    assert "capability-token-xyz" not in caught.value.reason  # the endpoint's path is secret


# RFC 8030 §8.3: a client error will not change by itself; throttling and server errors may
@pytest.mark.parametrize(
    ("status", "permanent"),
    [(400, True), (403, True), (413, True), (408, False), (429, False), (500, False), (503, False)],
)
async def test_refused_push_is_permanent_for_client_errors_temporary_otherwise(
    service: PushService, vapid: tuple[str, str], status: int, permanent: bool
) -> None:
    service.status = status
    with pytest.raises(ChannelError) as caught:
        await channel(vapid).send(make_notice(Browser().subscription(service.endpoint())))
    assert caught.value.permanent is permanent
    assert str(status) in caught.value.reason


async def test_push_service_that_does_not_answer_is_a_temporary_error(
    service: PushService, vapid: tuple[str, str]
) -> None:
    service.hold = True
    started = time.monotonic()
    with pytest.raises(ChannelError) as caught:
        await channel(vapid, timeout=0.3).send(
            make_notice(Browser().subscription(service.endpoint()))
        )
    assert not caught.value.permanent
    assert "0.3" in caught.value.reason
    assert time.monotonic() - started < 3


async def test_unreachable_push_service_is_a_temporary_error(vapid: tuple[str, str]) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}/push/x"
    with pytest.raises(ChannelError) as caught:
        await channel(vapid).send(make_notice(Browser().subscription(endpoint)))
    assert not caught.value.permanent


async def test_subscription_without_keys_is_a_permanent_error(vapid: tuple[str, str]) -> None:
    with pytest.raises(ChannelError) as caught:
        await channel(vapid).send(make_notice({"endpoint": "http://127.0.0.1:9/push/x"}))
    assert caught.value.permanent
    assert "p256dh" in caught.value.reason and "auth" in caught.value.reason


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("p256dh", b64url(b"\x04" + b"\x01" * 64)),  # not a point of P-256
        ("p256dh", "!!!"),
        ("auth", b64url(b"\x01" * 8)),  # RFC 8291 §3.2: 16 octets
        ("endpoint", "not a url"),
        ("endpoint", "ftp://push.example/x"),
    ],
)
async def test_malformed_subscription_is_a_permanent_error_and_sends_nothing(
    service: PushService, vapid: tuple[str, str], key: str, value: str
) -> None:
    subscription = Browser().subscription(service.endpoint())
    subscription[key] = value
    with pytest.raises(ChannelError) as caught:
        await channel(vapid).send(make_notice(subscription))
    assert caught.value.permanent
    assert "delete it" in caught.value.reason
    assert service.received == []


def test_generated_vapid_keys_are_a_pair(vapid: tuple[str, str]) -> None:
    private, public = vapid
    assert len(b64url_decode(private)) == 32
    assert len(b64url_decode(public)) == 65 and b64url_decode(public)[0] == 4
    assert channel(vapid).public_key == public


def test_bad_vapid_key_or_subject_is_refused_at_construction(vapid: tuple[str, str]) -> None:
    with pytest.raises(ValueError, match="VAPID private key"):
        PushChannel("not a key", SUBJECT, 5.0)
    with pytest.raises(ValueError, match="VAPID subject"):
        PushChannel(vapid[0], "exploitation@mss.example", 5.0)


def test_push_channel_is_a_channel_named_push(vapid: tuple[str, str]) -> None:
    push: Channel = channel(vapid)
    assert push.name is ChannelName.PUSH
    assert vapid[0] not in repr(push)
