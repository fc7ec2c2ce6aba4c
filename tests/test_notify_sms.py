"""The SMS channel against a real HTTP gateway on loopback (uvicorn + Starlette, the
server mss's own web door runs on): the generic gateway's rendered body, OVHcloud's
exact request and signature (recomputed here from the guide's formula), the
idempotency id, phone numbers, segment caps, and what each failure means."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import socket
import time
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from mss.core.gsm7 import GSM7_BASIC, fit, is_gsm7, segments
from mss.core.phone import InvalidPhone, mask_phone, to_e164
from mss.notify.base import Channel, ChannelError, ChannelName, Notice
from mss.notify.sms import (
    CREDENTIALS_HINT,
    MAX_SEGMENTS,
    HttpSmsChannel,
    OvhSmsChannel,
)
from mss.web.server import WebServer

LINK = "https://espace.example.fr/espace/"
TEXT = (
    "Vous avez reçu un nouveau message dans votre messagerie de santé Mon espace santé. "
    f"Connectez-vous pour le consulter. {LINK}"
)
NUMBER = "+33612345678"
AK, AS, CK = "app-key-1", "app-secret-2", "consumer-key-3"
SERVICE = "sms-ab12345-1"
JSON_TEMPLATE = '{"to": "${to}", "message": "${text}", "ref": "${id}", "from": "${sender}"}'


def a_notice(destination: str = "06 12 34 56 78", text: str = TEXT, nid: str = "n-42") -> Notice:
    return Notice(
        id=nid,
        ins="1234567890123",
        event="new_message",
        channel=ChannelName.SMS,
        destination=destination,
        subject="Nouveau message",
        text=text,
        link=LINK,
    )


@dataclass
class Call:
    method: str
    url: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Gateway:
    """Records every call; answers what the test scripts."""

    base: str = ""
    status: int = 200
    answer: Any = field(default_factory=lambda: {"id": "gw-1"})
    hold: bool = False
    released: asyncio.Event = field(default_factory=asyncio.Event)
    clock_offset: int = 3600  # the OVHcloud API's clock is an hour ahead of ours
    calls: list[Call] = field(default_factory=list)

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        call = Call(request.method, str(request.url), request.url.path, dict(request.headers), body)
        self.calls.append(call)
        if request.url.path == "/1.0/auth/time":
            return PlainTextResponse(str(int(time.time()) + self.clock_offset))
        if self.hold:
            await self.released.wait()
        if isinstance(self.answer, str):
            return PlainTextResponse(self.answer, status_code=self.status)
        return JSONResponse(self.answer, status_code=self.status)

    def sent(self) -> list[Call]:
        return [c for c in self.calls if c.method != "GET"]


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    gw = Gateway()
    app = Starlette(routes=[Route("/{path:path}", gw.handle, methods=["GET", "POST", "PUT"])])
    server = WebServer(app, "127.0.0.1", 0, None)
    await server.start()
    gw.base = f"http://127.0.0.1:{server.port}"
    try:
        yield gw
    finally:
        gw.released.set()
        await server.stop()


Made = list[HttpSmsChannel | OvhSmsChannel]


@pytest.fixture
async def made() -> AsyncIterator[Made]:
    channels: Made = []
    yield channels
    for channel in channels:
        await channel.aclose()


def generic(gw: Gateway, made: Made, **options: Any) -> HttpSmsChannel:
    settings: dict[str, Any] = {
        "url": f"{gw.base}/send",
        "body_template": JSON_TEMPLATE,
        "headers": {"Authorization": "Bearer s3cret"},
        "sender": "MSSANTE",
    }
    channel = HttpSmsChannel(**(settings | options))
    made.append(channel)
    return channel


def ovh(gw: Gateway, made: Made, **options: Any) -> OvhSmsChannel:
    settings: dict[str, Any] = {
        "application_key": AK,
        "application_secret": AS,
        "consumer_key": CK,
        "service_name": SERVICE,
        "sender": "MSSANTE",
        "base_url": f"{gw.base}/1.0",
    }
    channel = OvhSmsChannel(**(settings | options))
    made.append(channel)
    return channel


async def refused(channel: Channel, notice: Notice) -> ChannelError:
    with pytest.raises(ChannelError) as caught:
        await channel.send(notice)
    assert "612345678" not in caught.value.reason  # the number is masked
    return caught.value


# ---- the generic gateway ---------------------------------------------------------------


async def test_the_generic_gateway_gets_the_notice_text_exactly_in_its_json_template(
    gateway: Gateway, made: Made
) -> None:
    channel = generic(gateway, made)
    assert channel.name is ChannelName.SMS
    tricky = 'Vous avez "un" message\\ à lire.\nConnectez-vous : ' + LINK
    for text in (TEXT, tricky):
        assert await channel.send(a_notice(text=text)) == "gw-1"
    first, second = gateway.sent()
    assert first.path == "/send" and first.method == "POST"
    assert first.headers["authorization"] == "Bearer s3cret"
    assert first.headers["content-type"] == "application/json"
    assert first.json() == {"to": NUMBER, "message": TEXT, "ref": "n-42", "from": "MSSANTE"}
    assert second.json()["message"] == tricky


async def test_the_generic_gateway_form_encodes_its_values(gateway: Gateway, made: Made) -> None:
    gateway.answer = "OK"  # no id in a plain answer
    channel = generic(
        gateway,
        made,
        content_type="application/x-www-form-urlencoded",
        body_template="dest=${to}&msg=${text}&ref=${id}&from=${sender}&kind=alert",
        method="PUT",
    )
    assert await channel.send(a_notice(nid="n&=+1")) == ""
    (call,) = gateway.sent()
    assert call.method == "PUT"
    assert call.headers["content-type"] == "application/x-www-form-urlencoded"
    form = urllib.parse.parse_qs(call.body.decode(), strict_parsing=True)
    assert form == {
        "dest": [NUMBER],
        "msg": [TEXT],
        "ref": ["n&=+1"],
        "from": ["MSSANTE"],
        "kind": ["alert"],
    }


async def test_the_generic_gateway_returns_the_providers_id(gateway: Gateway, made: Made) -> None:
    channel = generic(gateway, made)
    for answer, expected in (
        ({"message_id": "m-9"}, "m-9"),
        ({"ids": [77, 78]}, "77"),
        ({"status": "queued"}, ""),
        ([1, 2], ""),
    ):
        gateway.answer = answer
        assert await channel.send(a_notice()) == expected


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"body_template": '{"to": "${to}", "text": "${txt}"}'}, "unknown placeholders"),
        ({"body_template": '{"text": "${text}"}'}, "${to} is missing"),
        ({"body_template": '{"to": ${to}, "text": "${text}"}'}, "not JSON"),
        ({"content_type": "text/plain"}, "JSON or form"),
        ({"url": "http://gw.example/send?to=${to}"}, "never in the URL"),
        ({"url": "ftp://gw.example/send"}, "http or https"),
        ({"method": "GET"}, "POST or PUT"),
        ({"timeout": 0}, "positive"),
    ],
)
def test_a_wrong_generic_setting_is_refused_at_start(options: dict[str, Any], problem: str) -> None:
    settings = {"url": "https://gw.example/send", "body_template": JSON_TEMPLATE} | options
    with pytest.raises(ValueError, match=problem.replace("$", r"\$").replace("{", r"\{")):
        HttpSmsChannel(**settings)


def test_no_secret_in_the_reprs() -> None:
    channel = HttpSmsChannel(
        url="https://gw.example/send",
        body_template=JSON_TEMPLATE,
        headers={"Authorization": "Bearer s3cret"},
    )
    assert "s3cret" not in repr(channel)
    keys = OvhSmsChannel(
        application_key=AK, application_secret=AS, consumer_key=CK, service_name=SERVICE,
        sender="MSSANTE",
    )  # fmt: skip
    assert AS not in repr(keys) and CK not in repr(keys)


# ---- OVHcloud -------------------------------------------------------------------------


async def test_ovh_gets_the_documented_job_signed_with_the_apis_clock(
    gateway: Gateway, made: Made
) -> None:
    gateway.answer = {
        "totalCreditsRemoved": 1,
        "invalidReceivers": [],
        "ids": [27814656],
        "validReceivers": [NUMBER],
    }
    assert await ovh(gateway, made).send(a_notice()) == "27814656"
    clock, job = gateway.calls
    assert (clock.method, clock.path) == ("GET", "/1.0/auth/time")
    assert (job.method, job.path) == ("POST", f"/1.0/sms/{SERVICE}/jobs")
    assert job.json() == {
        "message": TEXT,
        "receivers": [NUMBER],
        "sender": "MSSANTE",
        "senderForResponse": False,
        "noStopClause": True,
        "tag": "n-42",
        "coding": "8bit",  # ç is not in the GSM 7-bit alphabet
    }
    assert job.headers["content-type"] == "application/json"
    assert job.headers["x-ovh-application"] == AK
    assert job.headers["x-ovh-consumer"] == CK
    timestamp = job.headers["x-ovh-timestamp"]
    assert abs(int(timestamp) - (time.time() + gateway.clock_offset)) < 5
    # the signature, recomputed from the guide: "$1$" + SHA1(AS+CK+METHOD+QUERY+BODY+TSTAMP)
    plain = f"{AS}+{CK}+POST+{job.url}+{job.body.decode()}+{timestamp}"
    assert job.headers["x-ovh-signature"] == "$1$" + hashlib.sha1(plain.encode()).hexdigest()


async def test_ovh_sends_plain_text_as_7bit_and_may_show_the_stop_clause(
    gateway: Gateway, made: Made
) -> None:
    gateway.answer = {"ids": [], "invalidReceivers": [], "validReceivers": [NUMBER]}
    text = f"Un nouveau document est disponible dans votre espace. {LINK}"
    channel = ovh(gateway, made, no_stop_clause=False, sync_clock=False)
    assert await channel.send(a_notice(text=text)) == ""
    (job,) = gateway.calls  # no clock read
    assert job.json()["coding"] == "7bit"
    assert job.json()["noStopClause"] is False
    assert abs(int(job.headers["x-ovh-timestamp"]) - time.time()) < 5


async def test_every_attempt_of_a_notice_carries_the_same_idempotency_id(
    gateway: Gateway, made: Made
) -> None:
    gateway.answer = {"ids": [1], "invalidReceivers": [], "validReceivers": [NUMBER]}
    channel = ovh(gateway, made)
    long_id = "notification-00000000-1111-2222-3333-444444444444"
    for nid in ("n-42", "n-42", long_id, long_id):
        await channel.send(a_notice(nid=nid))
    assert [c.method for c in gateway.calls].count("GET") == 1  # the clock is read once
    tags = [c.json()["tag"] for c in gateway.sent()]
    assert tags[0] == tags[1] == "n-42"
    assert tags[2] == tags[3] and len(tags[2]) == 20 and tags[2] != tags[0]


async def test_a_number_ovh_calls_invalid_is_permanent(gateway: Gateway, made: Made) -> None:
    gateway.answer = {"ids": [], "invalidReceivers": [NUMBER], "validReceivers": []}
    error = await refused(ovh(gateway, made), a_notice())
    assert error.permanent and "+*********78" in error.reason


async def test_ovh_refusing_our_keys_is_temporary_and_says_so(gateway: Gateway, made: Made) -> None:
    channel = ovh(gateway, made)
    for status, code in ((403, "INVALID_CREDENTIAL"), (400, "INVALID_SIGNATURE")):
        gateway.status, gateway.answer = status, {"errorCode": code, "message": "no"}
        error = await refused(channel, a_notice())
        assert not error.permanent and CREDENTIALS_HINT in error.reason and code in error.reason
    assert [c.method for c in gateway.calls].count("GET") == 2  # read again after a refusal


async def test_ovh_refusing_the_request_is_permanent(gateway: Gateway, made: Made) -> None:
    gateway.status, gateway.answer = 400, {"message": "Invalid receivers"}
    assert (await refused(ovh(gateway, made), a_notice())).permanent


def test_a_wrong_ovh_setting_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="application_secret, sender"):
        OvhSmsChannel(
            application_key=AK, application_secret="", consumer_key=CK, service_name=SERVICE,
            sender="",
        )  # fmt: skip


# ---- numbers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "e164"),
    [
        ("06 12 34 56 78", NUMBER),
        ("0612345678", NUMBER),
        ("06.12.34.56.78", NUMBER),
        ("06-12-34-56-78", NUMBER),
        ("+33612345678", NUMBER),
        ("+33 6 12 34 56 78", NUMBER),
        ("+33 (0)6 12 34 56 78", NUMBER),
        ("07 00 00 00 01", "+33700000001"),
        ("0690 12 34 56", "+590690123456"),  # Guadeloupe
        ("0696 12 34 56", "+596696123456"),  # Martinique
        ("0694 12 34 56", "+594694123456"),  # Guyane
        ("0692 12 34 56", "+262692123456"),  # La Réunion
        ("0639 12 34 56", "+262639123456"),  # Mayotte
        ("+32470123456", "+32470123456"),  # E.164 elsewhere: as given
    ],
)
async def test_numbers_reach_the_gateway_as_e164(
    gateway: Gateway, made: Made, written: str, e164: str
) -> None:
    await generic(gateway, made).send(a_notice(destination=written))
    assert gateway.sent()[0].json()["to"] == e164


@pytest.mark.parametrize(
    "written",
    ["", "12345", "612345678", "00612345678", "0033612345678", "+330612345678", "+3361234567",
     "06 12 34 56", "06 12 34 56 78 90", "0012345678", "+0612345678", "tel:0612345678",
     "06l2345678", "+1234567890123456"],
)  # fmt: skip
async def test_a_wrong_number_is_permanent_and_never_reaches_the_gateway(
    gateway: Gateway, made: Made, written: str
) -> None:
    error = await refused(generic(gateway, made), a_notice(destination=written))
    assert error.permanent
    assert gateway.calls == []


def test_a_masked_number_shows_its_last_two_digits_only() -> None:
    assert mask_phone(NUMBER) == "+*********78"
    assert mask_phone("06 12 34 56 78") == "********78"
    with pytest.raises(InvalidPhone) as caught:
        to_e164("06 12 34 56 7")
    assert "1234" not in str(caught.value)


@given(st.from_regex(r"0[1-9][0-9]{8}", fullmatch=True), st.sampled_from([" ", ".", "-", ""]))
def test_every_french_national_number_has_one_e164_form(national: str, sep: str) -> None:
    written = sep.join(national[i : i + 2] for i in range(0, 10, 2))
    e164 = to_e164(written)
    assert e164 == to_e164(national) and e164.endswith(national[1:])
    assert e164.startswith(("+33", "+262", "+590", "+594", "+596"))
    assert to_e164(e164) == e164


# ---- texts ------------------------------------------------------------------------------


def test_segments_follow_3gpp_23_038_and_23_040() -> None:
    assert [segments("a" * n) for n in (0, 160, 161, 306, 307, 459, 460)] == [1, 1, 2, 2, 3, 3, 4]
    assert segments("€" * 80) == 1 and segments("€" * 81) == 2  # two septets each
    assert segments("a" * 152 + "€" + "a" * 152) == 3  # an escape pair never straddles
    assert segments("ê" * 70) == 1 and segments("ê" * 71) == 2 and segments("ê" * 202) == 4
    assert is_gsm7("éèàùÉÇ") and not is_gsm7("ç") and not is_gsm7("’")


async def test_a_long_text_is_cut_before_its_link_which_survives(
    gateway: Gateway, made: Made
) -> None:
    long = TEXT.replace("Connectez-vous", "Un texte bien trop long. " * 30 + "Connectez-vous")
    await generic(gateway, made).send(a_notice(text=long))
    sent = gateway.sent()[0].json()["message"]
    assert segments(long) > MAX_SEGMENTS >= segments(sent)
    assert sent.endswith("... " + LINK) and sent.startswith("Vous avez reçu un nouveau message")


async def test_a_link_longer_than_three_sms_is_permanent(gateway: Gateway, made: Made) -> None:
    huge = f"{LINK}{'x' * 500}"
    notice = dataclasses.replace(a_notice(), text=f"Bonjour {huge}", link=huge)
    assert (await refused(generic(gateway, made), notice)).permanent


_ALPHABET = st.sampled_from([*sorted(GSM7_BASIC), "€", "{", "ç", "ê", "’", "😀", " ", " "])


@given(st.text(_ALPHABET, max_size=900))
def test_a_fitted_text_fits_and_keeps_its_link(head: str) -> None:
    text = f"{head} {LINK}"
    fitted = fit(text, LINK, MAX_SEGMENTS)
    assert segments(fitted) <= MAX_SEGMENTS and fitted.endswith(LINK)
    assert fitted == text or segments(text) > MAX_SEGMENTS


# ---- what failures mean ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "permanent"),
    [(500, False), (502, False), (503, False), (429, False), (404, False), (400, True),
     (422, True), (413, True)],
)  # fmt: skip
async def test_what_a_gateway_status_means(
    gateway: Gateway, made: Made, status: int, permanent: bool
) -> None:
    gateway.status, gateway.answer = status, {"error": "no"}
    error = await refused(generic(gateway, made), a_notice())
    assert error.permanent is permanent and f"HTTP {status}" in error.reason
    assert "+*********78" in error.reason


@pytest.mark.parametrize("status", [401, 403])
async def test_refused_credentials_are_temporary_and_say_so(
    gateway: Gateway, made: Made, status: int
) -> None:
    gateway.status = status
    error = await refused(generic(gateway, made), a_notice())
    assert not error.permanent and CREDENTIALS_HINT in error.reason


async def test_a_gateway_that_does_not_answer_in_time_is_temporary(
    gateway: Gateway, made: Made
) -> None:
    gateway.hold = True
    started = time.monotonic()
    error = await refused(generic(gateway, made, timeout=0.3), a_notice())
    assert not error.permanent and "did not answer within 0.3 s" in error.reason
    assert time.monotonic() - started < 5


async def test_a_gateway_that_cannot_be_reached_is_temporary(made: Made) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gw = Gateway(base=f"http://127.0.0.1:{port}")
    for channel in (generic(gw, made), ovh(gw, made)):
        error = await refused(channel, a_notice())
        assert not error.permanent and "cannot reach the SMS gateway" in error.reason


async def test_nothing_logged_carries_the_text_or_the_number(
    gateway: Gateway, made: Made, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    channel = generic(gateway, made)
    await channel.send(a_notice())
    gateway.status = 400
    await refused(channel, a_notice())
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "612345678" not in logged and "messagerie de santé" not in logged
    assert "+*********78" in logged
