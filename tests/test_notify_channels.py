"""The other channels end to end, against real receivers on loopback: an SMS gateway
(the generic HTTP provider), a Web Push service that decrypts what it gets with the
browser's keys, an applicative mailbox's webhook receiver checking the signature with
the Standard Webhooks reference library; quiet hours, fallback, gone subscriptions."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import standardwebhooks
from aiohttp import web

from mss.notify.base import ChannelError
from mss.notify.push import generate_vapid_keys
from mss.notify.webhooks import new_secret
from mss.store import notify as notes
from mss.store import outbox
from mss.store.models import AccountKind
from mss.store.notifications import add_notification

from .harness import Running, message, running
from .notifying import Sink, http_receiver, notify_settings, until
from .test_notify import (  # fmt: skip
    EMAIL,
    INS,
    PATIENT,
    PRO,
    SECRET_SENDER,
    SECRET_SUBJECT,
    log_of,
)
from .test_notify_push import Browser

PHONE = "06 12 34 56 78"
APP = "logiciel.labo@pro.mssante.test"


class Receivers:
    """One aiohttp server: an SMS gateway, a push service, a webhook receiver."""

    def __init__(self) -> None:
        self.sms: list[dict[str, Any]] = []
        self.push: list[tuple[str, bytes]] = []
        self.hooks: list[tuple[dict[str, str], bytes]] = []
        self.sms_status = 200
        self.push_status = 201
        self.base = ""

    async def on_sms(self, request: web.Request) -> web.Response:
        self.sms.append(await request.json())
        return web.json_response({"id": f"gw-{len(self.sms)}"}, status=self.sms_status)

    async def on_push(self, request: web.Request) -> web.Response:
        self.push.append((request.path, await request.read()))
        return web.Response(status=self.push_status)

    async def on_hook(self, request: web.Request) -> web.Response:
        self.hooks.append((dict(request.headers), await request.read()))
        return web.Response(status=204)


@pytest.fixture
async def receivers() -> AsyncIterator[Receivers]:
    found = Receivers()
    posts = {"/sms": found.on_sms, "/push/{token}": found.on_push, "/hook": found.on_hook}
    async with http_receiver(posts) as found.base:
        yield found


def sms_settings(receivers: Receivers, smtp_port: int, **more: Any) -> dict[str, dict[str, Any]]:
    settings = notify_settings(smtp_port, **more)
    settings["notify"].update({
        "sms_provider": "http", "sms_url": f"{receivers.base}/sms", "sms_sender": "MSSANTE",
        "sms_body_template": '{"to": "${to}", "text": "${text}", "ref": "${id}"}',
        "sms_quiet_hours": more.get("sms_quiet_hours", ""),
    })  # fmt: skip
    return settings


async def subscribe(mss: Running, receivers: Receivers, browser: Browser) -> None:
    sub = browser.subscription(f"{receivers.base}/push/tok-1")
    now = int(time.time())
    await mss.store.write(lambda tx: notes.add_subscription(
        tx, INS, sub["endpoint"], sub["p256dh"], sub["auth"], now))  # fmt: skip


@pytest.fixture
async def sms_and_push(
    instance: Path, receivers: Receivers, sink: tuple[Sink, int]
) -> AsyncIterator[tuple[Running, Browser]]:
    async with running(instance, overrides=sms_settings(receivers, sink[1])) as mss:
        await mss.add_pro(PRO, name=SECRET_SENDER)
        browser = Browser()
        await subscribe(mss, receivers, browser)
        await mss.add_patient(INS, phone=PHONE)  # no e-mail: SMS stands in
        yield mss, browser


async def test_sms_and_push_carry_nothing_but_a_notice_and_an_id(
    sms_and_push: tuple[Running, Browser], receivers: Receivers
) -> None:
    mss, browser = sms_and_push
    await until(lambda: _at_least(receivers.sms, 1))  # « votre service … a été créé »
    await mss.submit(PRO, message(PRO, PATIENT, SECRET_SUBJECT), [PATIENT])
    await until(lambda: _at_least(receivers.sms, 2))
    await until(lambda: _at_least(receivers.push, 1))
    sms = receivers.sms[1]
    assert sms["to"] == "+33612345678"
    assert "nouveau message" in sms["text"] and "https://espace.test/" in sms["text"]
    await until(lambda: _at_least(receivers.push, 2))
    ids = [json.loads(browser.decrypt(body)) for _, body in receivers.push]
    pushed = {e.notice_id for e in await log_of(mss, "new_message") if e.channel == "push"}
    assert {"id": pushed.pop()} in ids  # an opaque id, nothing else
    plain = b"".join(browser.decrypt(body) for _, body in receivers.push)
    for secret in (SECRET_SUBJECT, SECRET_SENDER, PRO):
        assert secret not in json.dumps(receivers.sms) and secret.encode() not in plain
    assert sms["ref"] == next(e for e in await log_of(mss, "new_message")
                          if e.channel == "sms").notice_id  # fmt: skip


async def test_a_gone_push_subscription_is_removed(
    instance: Path, receivers: Receivers, sink: tuple[Sink, int]
) -> None:
    receivers.push_status = 410
    async with running(instance, overrides=sms_settings(receivers, sink[1])) as mss:
        await subscribe(mss, receivers, Browser())
        await mss.add_patient(INS, phone=PHONE)
        await until(lambda: _subscriptions(mss, 0))
        await until(lambda: _status(mss, "profile_created", "push", "failed"))
        [entry] = [e for e in await log_of(mss, "profile_created") if e.channel == "push"]
        assert "gone" in entry.detail


async def test_sms_wait_for_the_end_of_quiet_hours(
    instance: Path, receivers: Receivers, sink: tuple[Sink, int]
) -> None:
    overrides = sms_settings(receivers, sink[1], sms_quiet_hours="00:00-23:59")
    async with running(instance, overrides=overrides) as mss:
        await mss.add_patient(INS, phone=PHONE)
        await until(lambda: _deferred(mss))
        assert receivers.sms == []  # deferred, not dropped: the row waits for the morning


async def test_a_login_code_is_not_held_by_the_sms_quiet_hours(
    instance: Path, receivers: Receivers, sink: tuple[Sink, int]
) -> None:
    overrides = sms_settings(receivers, sink[1], sms_quiet_hours="00:00-23:59")
    async with running(instance, overrides=overrides) as mss:
        await mss.add_patient(INS, phone=PHONE)
        await until(lambda: _deferred(mss))  # the profile's notice waits for the morning
        code = {"code": "482913", "channel": "sms"}
        await mss.store.write(lambda tx: add_notification(tx, "login_code", INS, code))
        await until(lambda: _received(receivers, 1))
        assert len(receivers.sms) == 1 and "482913" in receivers.sms[0]["text"]


async def _received(receivers: Receivers, count: int) -> bool:
    return len(receivers.sms) >= count


async def test_a_refused_address_falls_back_to_sms(
    instance: Path, receivers: Receivers, sink: tuple[Sink, int]
) -> None:
    box, port = sink
    box.refuse.add(EMAIL)
    async with running(instance, overrides=sms_settings(receivers, port)) as mss:
        await mss.add_patient(INS, email=EMAIL, phone=PHONE)
        await until(lambda: _status(mss, "profile_created", "sms", "sent"))
        statuses = {(e.channel, e.status) for e in await log_of(mss, "profile_created")}
        assert ("email", "failed") in statuses
        assert len(receivers.sms) == 1


async def test_a_gateway_answering_500_leaves_the_notice_retrying(
    sms_and_push: tuple[Running, Browser], receivers: Receivers
) -> None:
    mss, _ = sms_and_push
    receivers.sms_status = 500
    await until(lambda: _status(mss, "profile_created", "sms", "retrying"))


async def test_an_applicative_mailbox_hears_of_new_mail_by_a_signed_webhook(
    instance: Path, receivers: Receivers, sink: tuple[Sink, int]
) -> None:
    secret = new_secret()
    async with running(instance, overrides=notify_settings(sink[1])) as mss:
        await mss.add_pro(PRO)
        await mss.add_pro(APP, kind=AccountKind.APPLICATIVE)
        now = int(time.time())
        await mss.store.write(lambda tx: notes.set_webhook(tx, APP, f"{receivers.base}/hook",
                                                           [secret], now))  # fmt: skip
        await mss.submit(PRO, message(PRO, APP, SECRET_SUBJECT), [APP])
        await until(lambda: _at_least(receivers.hooks, 1))
    headers, body = receivers.hooks[0]
    event = standardwebhooks.Webhook(secret).verify(body, headers)
    assert event["type"] == "message.received"
    assert event["data"] == {"mailbox": APP, "uid": 1}
    assert SECRET_SUBJECT.encode() not in body


async def _at_least(found: list[Any], n: int) -> bool:
    return len(found) >= n


async def _subscriptions(mss: Running, n: int) -> bool:
    return len(await mss.store.read(lambda c: notes.subscriptions(c, INS))) == n


async def _status(mss: Running, event: str, channel: str, status: str) -> bool:
    return any(e.channel == channel and e.status == status for e in await log_of(mss, event))


async def _deferred(mss: Running) -> bool:
    rows = await mss.store.read(lambda c: outbox.list_items(c, kinds=["notice_sms"]))
    return bool(rows) and rows[0].last_error == "quiet hours" and rows[0].due_at > time.time()


def test_mss_pro_webhook_sets_rotates_and_removes_a_secret(instance: Path) -> None:
    from .conftest import run_mss

    data = ["--data-dir", str(instance)]
    added = run_mss("pro", "add", APP, "--type", "APP", *data)
    assert added.returncode == 0, added.stderr
    first = run_mss("pro", "webhook", APP, "https://labo.exemple.fr/hook", *data)
    assert first.returncode == 0 and "whsec_" in first.stdout
    rotated = run_mss("pro", "webhook", APP, "--rotate", *data)
    new = rotated.stdout.rsplit(" ", 1)[1].strip()
    old = first.stdout.rsplit(" ", 1)[1].strip()
    from mss.store.api import Store

    store = Store.open(f"sqlite:///{instance / 'mss.db'}", instance / "keys" / "blob.keys")
    try:
        assert store.db.read_sync(lambda c: notes.webhook(c, APP)) == (
            "https://labo.exemple.fr/hook",
            [new, old],
        )  # both valid during the rotation
    finally:
        store.db.close_sync()
    refused = run_mss("pro", "webhook", PRO, "https://x.fr/", *data)
    assert refused.returncode == 1 and "not an applicative" in refused.stderr
    assert run_mss("pro", "webhook", APP, "--remove", *data).returncode == 0


# --- Web Push: the endpoint is checked again where the server connects --------------------------


async def test_a_push_endpoint_cannot_redirect_the_server_inside_its_network() -> None:
    """A push service answering 307 to an internal URL: the redirect is not followed
    (a permanent failure), whatever `push_private_networks` says."""
    from .test_notify_push import channel, make_notice

    reached: list[str] = []

    async def internal(request: web.Request) -> web.Response:
        reached.append(request.path)
        return web.Response(status=201)

    async with http_receiver({"/admin/action": internal}) as inside:

        async def public(request: web.Request) -> web.Response:
            return web.Response(status=307, headers={"Location": f"{inside}/admin/action"})

        async with http_receiver({"/push/{token}": public}) as outside:
            notice = make_notice(Browser().subscription(f"{outside}/push/abc"))
            with pytest.raises(ChannelError) as refused:
                await channel(generate_vapid_keys()).send(notice)
    assert reached == [] and refused.value.permanent and "307" in str(refused.value)


async def test_without_push_private_networks_a_loopback_push_service_is_refused() -> None:
    """`[notify] push_private_networks = false` (the default): an endpoint whose host is
    a loopback address, or a name resolving to one (what DNS rebinding gives at
    sending), is refused for good, and nothing reaches it."""
    from mss.notify.push import PushChannel

    from .test_notify_push import SUBJECT, make_notice

    reached: list[str] = []

    async def service(request: web.Request) -> web.Response:
        reached.append(request.path)
        return web.Response(status=201)

    push = PushChannel(generate_vapid_keys()[0], SUBJECT, 5.0)
    async with http_receiver({"/push/{token}": service}) as base:
        port = base.rpartition(":")[2]
        for host in ("127.0.0.1", "localhost", "[::ffff:127.0.0.1]"):
            notice = make_notice(Browser().subscription(f"http://{host}:{port}/push/abc"))
            with pytest.raises(ChannelError) as refused:
                await push.send(notice)
            assert refused.value.permanent and "not a public address" in str(refused.value)
    assert reached == []
