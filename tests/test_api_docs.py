"""`/api/docs` works on a closed network (issues 15 and 17): Swagger UI's assets are
served by mss itself under a strict CSP, and a real browser whose every request beyond
loopback is refused renders the operations."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Page, Route

from . import browser
from .browser import console_errors
from .harness import Running

chromium, context, page, mss = browser.chromium, browser.context, browser.page, browser.mss
pytestmark = pytest.mark.asyncio(loop_scope="session")

LOOPBACK = {"localhost", "127.0.0.1", "[::1]", "::1"}


def _base(server: Running) -> str:
    return f"https://localhost:{server.ports['https']}"


async def test_api_docs_assets_are_served_here_under_a_strict_csp(mss: Running) -> None:
    async with httpx.AsyncClient(verify=mss.client_tls(), base_url=_base(mss)) as web:
        docs = await web.get("/api/docs")
        assert docs.status_code == 200
        csp = docs.headers["content-security-policy"]
        assert "script-src 'self';" in csp and "unsafe-inline" not in csp
        assert "<script>" not in docs.text  # no inline script: the CSP would refuse it
        assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
        assert len(assets) >= 3
        for asset in assets:
            assert urlsplit(asset).netloc == "", asset  # nothing from elsewhere
            fetched = await web.get(asset)
            assert fetched.status_code == 200, asset
            assert fetched.headers["content-security-policy"] == csp
        spec = await web.get("/api/openapi.json")
    assert spec.status_code == 200 and spec.json()["paths"]


async def test_api_docs_render_the_operations_with_the_network_closed(
    mss: Running, page: Page
) -> None:
    refused: list[str] = []

    async def closed_network(route: Route) -> None:
        if urlsplit(route.request.url).hostname in LOOPBACK:
            await route.continue_()
        else:
            refused.append(route.request.url)
            await route.abort("internetdisconnected")

    await page.route("**/*", closed_network)
    errors = console_errors(page)
    await page.goto(f"{_base(mss)}/api/docs")
    await page.wait_for_selector(".opblock", timeout=30_000)
    operations = await page.locator(".opblock-summary-path").all_inner_texts()
    assert any("/api/dmp/patients/{ins}/authorization" in text for text in operations)
    assert any("/fhir/v2/Practitioner" in text for text in operations)
    assert refused == []
    assert errors == []  # no CSP refusal, no script error
