"""Signed webhooks (mss/notify/webhooks.py) against a real receiver on loopback.

The receiver checks every call with the `standardwebhooks` package, an implementation
of the Standard Webhooks spec independent of ours, and drops an id it has already
processed; the signer is also checked against the spec libraries' known answer and,
for any secret, id and body, against that package's own signer.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError as TheirVerificationError

from mss.notify.base import ChannelError
from mss.notify.webhooks import (
    WebhookSender,
    WebhookVerificationError,
    new_secret,
    sign,
    verify,
)

from .notifying import http_receiver

BODY = json.dumps({"type": "mailbox.new_message", "data": {"id": "evt_1"}}).encode()
OLD, NEW = new_secret(), new_secret()

# The known answer of the spec's libraries (standard-webhooks/standard-webhooks,
# libraries/python/tests/test_webhooks.py, test_sign_function); the spec's own example
# does not give its secret.
KAT_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
KAT_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
KAT_TIMESTAMP = 1614265330
KAT_BODY = b'{"test": 2432232314}'
KAT_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


class Receiver:
    """An APP mailbox owner's endpoint: `/hook/{name}` knows the secret `secrets[name]`,
    verifies each call with the standardwebhooks package, and processes each
    `webhook-id` once (a repeat is acknowledged and dropped); answers `status`, after
    `delay` seconds."""

    def __init__(self, secrets: dict[str, str]) -> None:
        self.webhooks = {name: Webhook(secret) for name, secret in secrets.items()}
        self.processed: list[tuple[str, dict[str, object]]] = []
        self.refused: list[str] = []
        self.repeats = 0
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.status = 204
        self.delay = 0.0
        self.base = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = dict(request.headers)
        self.requests.append((headers, body))
        await asyncio.sleep(self.delay)
        try:
            payload = self.webhooks[request.match_info["name"]].verify(body, headers)
        except TheirVerificationError as exc:
            self.refused.append(str(exc))
            return web.Response(status=401)
        return self._process(headers["webhook-id"], payload)

    def _process(self, msg_id: str, payload: dict[str, object]) -> web.Response:
        if any(seen == msg_id for seen, _ in self.processed):
            self.repeats += 1
            return web.Response(status=200)
        self.processed.append((msg_id, payload))
        return web.Response(status=self.status)

    def url(self, name: str) -> str:
        return f"{self.base}/hook/{name}"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hooks = Receiver({"new": NEW, "old": OLD, "other": new_secret()})
    async with http_receiver({"/hook/{name}": hooks.handle}) as hooks.base:
        yield hooks


@pytest.fixture
async def sender() -> AsyncIterator[WebhookSender]:
    async with WebhookSender(timeout=5.0) as webhooks:
        yield webhooks


async def test_receiver_verifies_the_call_with_an_independent_implementation(
    receiver: Receiver, sender: WebhookSender
) -> None:
    await sender.send(receiver.url("new"), "msg_0001", BODY, [NEW])

    assert receiver.refused == []
    assert receiver.processed == [("msg_0001", json.loads(BODY))]
    [(headers, body)] = receiver.requests
    assert body == BODY
    assert headers["Content-Type"] == "application/json"
    assert headers["webhook-id"] == "msg_0001"
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 5


@pytest.mark.parametrize("knows", ["new", "old"])
async def test_during_a_rotation_a_receiver_knowing_either_secret_accepts(
    receiver: Receiver, sender: WebhookSender, knows: str
) -> None:
    await sender.send(receiver.url(knows), "msg_0002", BODY, [OLD, NEW])

    assert receiver.refused == []
    assert [msg_id for msg_id, _ in receiver.processed] == ["msg_0002"]
    [(headers, _)] = receiver.requests
    assert len(headers["webhook-signature"].split(" ")) == 2


async def test_a_receiver_knowing_neither_secret_refuses_for_good(
    receiver: Receiver, sender: WebhookSender
) -> None:
    with pytest.raises(ChannelError) as caught:
        await sender.send(receiver.url("other"), "msg_0003", BODY, [OLD, NEW])
    assert caught.value.permanent  # 401: the receiver will never take this signature
    assert receiver.refused == ["No matching signature found"]


async def test_a_replayed_call_is_dropped_by_the_receiver(
    receiver: Receiver, sender: WebhookSender
) -> None:
    await sender.send(receiver.url("new"), "msg_0004", BODY, [NEW])
    [(headers, body)] = receiver.requests

    async with httpx.AsyncClient() as attacker:  # the same call, recorded and sent again
        replay = await attacker.post(receiver.url("new"), content=body, headers=headers)

    assert replay.status_code == 200
    assert receiver.repeats == 1
    assert len(receiver.processed) == 1


async def test_a_stale_timestamp_is_refused_by_the_receiver(receiver: Receiver) -> None:
    async with WebhookSender(timeout=5.0, clock=lambda: time.time() - 600) as late:
        with pytest.raises(ChannelError) as caught:
            await late.send(receiver.url("new"), "msg_0005", BODY, [NEW])
    assert caught.value.permanent
    assert receiver.refused == ["Message timestamp too old"]
    assert receiver.processed == []


@pytest.mark.parametrize("status", [200, 201, 202, 204])
async def test_any_2xx_is_success(receiver: Receiver, sender: WebhookSender, status: int) -> None:
    receiver.status = status
    await sender.send(receiver.url("new"), "msg_0006", BODY, [NEW])


async def test_410_gone_is_permanent(receiver: Receiver, sender: WebhookSender) -> None:
    receiver.status = 410
    with pytest.raises(ChannelError) as caught:
        await sender.send(receiver.url("new"), "msg_0007", BODY, [NEW])
    assert caught.value.permanent
    assert "410" in caught.value.reason


# spec, "Delivery success and failure": redirects are not followed; 408, 429 and server
# errors are worth another try, other client errors are not
@pytest.mark.parametrize(
    ("status", "permanent"),
    [
        *[(301, True), (400, True), (403, True), (404, True), (413, True)],
        *[(408, False), (429, False), (500, False), (502, False), (503, False), (504, False)],
    ],
)
async def test_other_failures_are_permanent_for_client_errors_temporary_otherwise(
    receiver: Receiver, sender: WebhookSender, status: int, permanent: bool
) -> None:
    receiver.status = status
    with pytest.raises(ChannelError) as caught:
        await sender.send(receiver.url("new"), "msg_0008", BODY, [NEW])
    assert caught.value.permanent is permanent
    assert str(status) in caught.value.reason


async def test_a_receiver_that_does_not_answer_in_time_is_temporary(receiver: Receiver) -> None:
    receiver.delay = 5.0
    started = time.monotonic()
    async with WebhookSender(timeout=0.2) as impatient:
        with pytest.raises(ChannelError) as caught:
            await impatient.send(receiver.url("new"), "msg_0010", BODY, [NEW])
    assert not caught.value.permanent
    assert "0.2" in caught.value.reason
    assert time.monotonic() - started < 3  # not the receiver's 5 s


async def test_an_unreachable_receiver_is_temporary(sender: WebhookSender) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ChannelError) as caught:
        await sender.send(f"http://127.0.0.1:{port}/hook", "msg_0011", BODY, [NEW])
    assert not caught.value.permanent


@pytest.mark.parametrize("url", ["not a url", "ftp://hooks.example/x"])
async def test_a_url_that_is_not_http_is_permanent(sender: WebhookSender, url: str) -> None:
    with pytest.raises(ChannelError) as caught:
        await sender.send(url, "msg_0012", BODY, [NEW])
    assert caught.value.permanent


@pytest.mark.parametrize("secrets", [[], ["not-a-secret"], ["whsec_c2hvcnQ="]])
async def test_no_or_malformed_secret_is_permanent_and_sends_nothing(
    receiver: Receiver, sender: WebhookSender, secrets: list[str]
) -> None:
    with pytest.raises(ChannelError) as caught:
        await sender.send(receiver.url("new"), "msg_0013", BODY, secrets)
    assert caught.value.permanent
    assert receiver.requests == []


# the signer, on its own


def test_signer_gives_the_spec_libraries_known_answer() -> None:
    assert sign([KAT_SECRET], KAT_ID, KAT_TIMESTAMP, KAT_BODY) == KAT_SIGNATURE


def test_signer_gives_one_signature_per_secret_space_separated() -> None:
    both = sign([KAT_SECRET, NEW], KAT_ID, KAT_TIMESTAMP, KAT_BODY).split(" ")
    assert both[0] == KAT_SIGNATURE
    assert both[1] == sign([NEW], KAT_ID, KAT_TIMESTAMP, KAT_BODY)
    assert both[1].startswith("v1,")


@given(
    key=st.binary(min_size=24, max_size=64),
    msg_id=st.text(st.characters(codec="ascii", exclude_characters="."), min_size=1),
    timestamp=st.integers(min_value=0, max_value=2**33),
    body=st.binary(),
)
def test_signer_agrees_with_the_standardwebhooks_package(
    key: bytes, msg_id: str, timestamp: int, body: bytes
) -> None:
    secret = "whsec_" + base64.b64encode(key).decode()
    theirs = Webhook(secret).sign(msg_id, datetime.fromtimestamp(timestamp, UTC), body)
    assert sign([secret], msg_id, timestamp, body) == theirs


def test_an_id_with_a_full_stop_is_refused() -> None:
    with pytest.raises(ValueError, match="full stop"):
        sign([NEW], "msg.1", KAT_TIMESTAMP, BODY)


def test_new_secrets_are_random_whsec_of_32_bytes() -> None:
    first, second = new_secret(), new_secret()
    assert first != second
    assert first.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"))) == 32


# the receivers' helper


def kat_headers(timestamp: int = KAT_TIMESTAMP, signature: str = KAT_SIGNATURE) -> dict[str, str]:
    return {
        "Webhook-Id": KAT_ID,
        "Webhook-Timestamp": str(timestamp),
        "Webhook-Signature": signature,
    }


def test_verify_accepts_the_known_answer_and_returns_the_id() -> None:
    assert verify([KAT_SECRET], kat_headers(), KAT_BODY, now=KAT_TIMESTAMP + 10) == KAT_ID


def test_verify_accepts_a_rotation_from_either_side() -> None:
    headers = kat_headers(signature=sign([OLD, NEW], KAT_ID, KAT_TIMESTAMP, KAT_BODY))
    for known in ([OLD], [NEW], [new_secret(), NEW]):
        assert verify(known, headers, KAT_BODY, now=KAT_TIMESTAMP) == KAT_ID


@pytest.mark.parametrize(
    ("now", "why"), [(KAT_TIMESTAMP + 301, "too old"), (KAT_TIMESTAMP - 301, "future")]
)
def test_verify_refuses_a_timestamp_out_of_tolerance(now: int, why: str) -> None:
    with pytest.raises(WebhookVerificationError, match=why):
        verify([KAT_SECRET], kat_headers(), KAT_BODY, now=now)


def test_verify_refuses_a_changed_body_a_wrong_secret_or_a_missing_header() -> None:
    with pytest.raises(WebhookVerificationError, match="no signature"):
        verify([KAT_SECRET], kat_headers(), KAT_BODY + b" ", now=KAT_TIMESTAMP)
    with pytest.raises(WebhookVerificationError, match="no signature"):
        verify([NEW], kat_headers(), KAT_BODY, now=KAT_TIMESTAMP)
    headers = kat_headers()
    del headers["Webhook-Signature"]
    with pytest.raises(WebhookVerificationError, match="missing"):
        verify([KAT_SECRET], headers, KAT_BODY, now=KAT_TIMESTAMP)


def test_verify_agrees_with_the_standardwebhooks_package_on_a_live_call() -> None:
    now = int(time.time())
    headers = kat_headers(now, sign([NEW], KAT_ID, now, BODY))
    assert Webhook(NEW).verify(BODY, headers) == json.loads(BODY)
    assert verify([NEW], headers, BODY) == KAT_ID
