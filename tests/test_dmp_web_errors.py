"""The web's one error boundary: routes raise, the handlers registered on the app render.

A DMP refusal is its name and French text with its status, missing credentials a 401
with the scheme to use, bad input a 400, and anything unexpected a 500 that says
nothing of the cause while its traceback goes to the log.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from mss.dmp.errors import DMPClosed, DocumentError
from mss.errors import InputError, MssError
from mss.web.app import create_app
from mss.web.errors import Unauthorized


async def _metrics() -> str:
    return ""


def _health() -> dict[str, str]:
    return {}


def _app() -> FastAPI:
    app = create_app(health=_health, metrics=_metrics, version="test")

    @app.get("/closed")
    async def closed() -> None:
        raise DMPClosed("le DMP de ce patient est fermé")

    @app.get("/unreadable")
    async def unreadable() -> None:
        raise DocumentError("bad document", 903)

    @app.get("/anonymous")
    async def anonymous() -> None:
        raise Unauthorized("wrong address or password", "Basic")

    @app.get("/bad")
    async def bad() -> None:
        raise InputError("unknown mailbox type XYZ")

    @app.get("/broken")
    async def broken() -> None:
        raise RuntimeError("secret internals")

    return app


@pytest.fixture
async def web() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_a_dmp_refusal_is_its_name_and_text_with_its_status(web: httpx.AsyncClient) -> None:
    closed = await web.get("/closed")
    assert closed.status_code == 409
    assert closed.json() == {"error": "DMPClosed", "detail": "le DMP de ce patient est fermé"}
    unreadable = await web.get("/unreadable")
    assert unreadable.status_code == 422 and unreadable.json()["mdn_code"] == 903


async def test_missing_credentials_are_401_with_the_scheme(web: httpx.AsyncClient) -> None:
    response = await web.get("/anonymous")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Basic realm="mss-dmp"'
    assert response.json() == {"error": "Unauthorized", "detail": "wrong address or password"}


async def test_bad_input_is_400(web: httpx.AsyncClient) -> None:
    response = await web.get("/bad")
    assert response.status_code == 400 and response.json() == {"detail": "unknown mailbox type XYZ"}


async def test_an_unexpected_error_is_a_500_without_details_and_a_logged_traceback(
    web: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="mss.web"):
        response = await web.get("/broken")
    assert response.status_code == 500 and "secret" not in response.text
    [record] = [r for r in caplog.records if r.name == "mss.web"]
    assert record.exc_info is not None and "GET /broken" in record.getMessage()


def test_unauthorized_is_one_of_ours() -> None:
    assert issubclass(Unauthorized, MssError)
