"""The patient space's frame: mounted at /espace/ (`/` leads there), its security headers,
French refusals, the session cookie, logout and the CSRF check every POST goes through."""

from __future__ import annotations

import asyncio
import html
from collections.abc import AsyncIterator

import pytest

from .harness import Running
from .space import PATIENT_INS, patient_client, web

pytestmark = pytest.mark.asyncio


async def test_the_root_leads_to_the_space_and_the_space_to_its_login(mss: Running) -> None:
    async with web(mss) as client:
        root = await client.get("/")
        assert root.status_code == 307 and root.headers["location"] == "/espace/"
        front = await client.get("/espace/")
        assert front.status_code == 303 and front.headers["location"] == "/espace/connexion"


async def test_every_space_response_carries_the_security_headers(mss: Running) -> None:
    async with web(mss) as client:
        for path in ("/espace/", "/espace/nulle-part", "/espace/static/space.css"):
            response = await client.get(path)
            csp = response.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["referrer-policy"] == "no-referrer"


async def test_an_unknown_page_is_a_french_404(mss: Running) -> None:
    async with web(mss) as client:
        response = await client.get("/espace/nulle-part")
    assert response.status_code == 404
    text = html.unescape(response.text)
    assert "Cette page n'existe pas." in text and "Not found." in text
    assert response.headers["cache-control"] == "no-store"


async def test_htmx_and_the_css_are_served_from_the_space_itself(mss: Running) -> None:
    async with web(mss) as client:
        script = await client.get("/espace/static/vendor/htmx-2.0.11.min.js")
        style = await client.get("/espace/static/vendor/pico-2.1.1.min.css")
    assert script.status_code == 200 and b"htmx" in script.content
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")


async def test_a_logged_in_patient_reaches_the_messagerie(mss: Running) -> None:
    await mss.add_patient(PATIENT_INS)
    async with patient_client(mss, PATIENT_INS) as (client, _):
        response = await client.get("/espace/")
    assert response.status_code == 303 and response.headers["location"] == "/espace/messages"


async def test_logout_without_the_csrf_token_is_refused_in_french(mss: Running) -> None:
    await mss.add_patient(PATIENT_INS)
    async with patient_client(mss, PATIENT_INS) as (client, _):
        forged = await client.post("/espace/deconnexion", data={"csrf": "forgé"})
        assert forged.status_code == 403
        assert "ne vient pas de votre espace" in forged.text and "CSRF" in forged.text
        still = await client.get("/espace/")
        assert still.headers["location"] == "/espace/messages"


async def test_logout_ends_the_session_for_good(mss: Running) -> None:
    await mss.add_patient(PATIENT_INS)
    async with patient_client(mss, PATIENT_INS) as (client, csrf):
        token = client.cookies.get("mss_espace")
        done = await client.post("/espace/deconnexion", data={"csrf": csrf})
        assert done.status_code == 303 and done.headers["location"] == "/espace/connexion"
        client.cookies.set("mss_espace", token or "")
        again = await client.get("/espace/")
    assert again.headers["location"] == "/espace/connexion"


async def test_a_huge_body_is_refused_before_anything_reads_it(mss: Running) -> None:
    reader, writer = await asyncio.open_connection(
        "localhost", mss.ports["https"], ssl=mss.client_tls()
    )
    writer.write(b"POST /espace/connexion HTTP/1.1\r\nHost: localhost\r\n"
                 b"Content-Length: 999999999\r\n\r\n")  # fmt: skip
    status = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    assert status.startswith(b"HTTP/1.1 413"), status
    async with web(mss) as client:

        async def stream() -> AsyncIterator[bytes]:
            yield b'--b\r\nContent-Disposition: form-data; name="f"; filename="x.pdf"\r\n\r\n'
            for _ in range(21):
                yield b"a" * (1024 * 1024)

        chunked = await client.post(
            "/espace/connexion", content=stream(),
            headers={"content-type": "multipart/form-data; boundary=b"},
        )  # fmt: skip
    assert chunked.status_code == 413
    assert "trop volumineux" in html.unescape(chunked.text)
    async with web(mss) as client:
        assert (await client.get("/espace/static/space.css")).status_code == 200
