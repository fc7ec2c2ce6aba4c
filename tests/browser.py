"""Real-browser tests of the patient space: Debian's Chromium driven by Playwright (async
API, in the event loop of the server under test), and the accessibility gate (axe-core,
vendored in tests/vendor/, run offline).

A browser test module takes the fixtures it uses and runs in the session's event loop,
where the browser lives (see tests/test_space_browser.py):

    from . import browser
    chromium, context, page, mss = browser.chromium, browser.context, browser.page, browser.mss
    pytestmark = pytest.mark.asyncio(loop_scope="session")

`mss` here replaces conftest's: the same running instance, started in the session's loop
so that the browser, the server and the test share one loop. A test that starts its own
instance (`async with running(instance, overrides=...)`) needs nothing more.

TLS: the browser verifies certificates (`ignore_https_errors` stays False). Chromium
has no option to add one CA for a single run without an NSS database (certutil, another
package), so it is started with `--ignore-certificate-errors-spki-list` naming the
instance's own server key: that key, and no other, is accepted; any other certificate
error still fails. Every test instance is a copy of the session's `instance_template`,
so they all share that key.

When Chromium cannot start, the tests are skipped locally, and fail under CI (`CI` set)
or with MSS_REQUIRE_BROWSER=1 (`./scripts/test` sets it).
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from .harness import Running, running
from .space import PATIENT_INS, open_session

VENDOR = Path(__file__).resolve().parent / "vendor"
AXE = VENDOR / "axe.min.js"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
COOKIE = "mss_espace"
# Chromium's own calls home are refused by closed networks; keep it quiet and offline.
QUIET = (
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-gpu", "--no-first-run", "--disable-quic",
)  # fmt: skip
BLOCKING = ("serious", "critical")


def browser_required() -> bool:
    return os.environ.get("MSS_REQUIRE_BROWSER") == "1" or bool(os.environ.get("CI"))


def chromium_path() -> str | None:
    """Debian's Chromium (MSS_CHROMIUM names another binary)."""
    named = os.environ.get("MSS_CHROMIUM")
    if named:
        return named
    for candidate in CHROMIUM_CANDIDATES:
        if Path(candidate).exists():
            return candidate
    return shutil.which("chromium")


def spki_hash(cert: Path) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)) of a certificate, as Chromium's flag wants."""
    loaded = x509.load_pem_x509_certificate(cert.read_bytes())
    der = loaded.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def browser_env() -> dict[str, str]:
    """Chromium's environment: its own words (a file field's button…) in French, where
    Debian's chromium-l10n is installed."""
    return {**os.environ, "LANGUAGE": "fr"}


def launch_args(certs: Path) -> list[str]:
    """Chromium's flags: quiet, and trusting the instance's server key only."""
    return [*QUIET, f"--ignore-certificate-errors-spki-list={spki_hash(certs / 'server.crt')}"]


def unavailable(reason: str) -> None:
    if browser_required():
        pytest.fail(f"the browser tests need Chromium: {reason}")
    pytest.skip(f"Chromium is not available: {reason}")


@asynccontextmanager
async def launched(certs: Path) -> AsyncIterator[Browser]:
    """A headless Chromium (Debian's binary, nothing downloaded) trusting `certs`' key."""
    executable = chromium_path()
    if executable is None:
        unavailable("no chromium binary (apt-get install chromium)")
    async with async_playwright() as playwright:
        try:
            browser = await playwright.chromium.launch(
                executable_path=executable, headless=True, env=browser_env(),
                args=launch_args(certs),
            )  # fmt: skip
        except Exception as error:  # the binary is there but does not start
            unavailable(f"{executable} did not start: {str(error)[:300]}")
        async with browser:
            yield browser


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def chromium(instance_template: Path) -> AsyncIterator[Browser]:
    """One browser for the session."""
    async with launched(instance_template / "certs") as browser:
        yield browser


@pytest_asyncio.fixture
async def own_page(instance_template: Path) -> AsyncIterator[Page]:
    """A page in a browser of its own, started in the test's event loop: for tests whose
    server comes from the other fixtures (`record`, `space`…), which run in that loop."""
    async with (
        launched(instance_template / "certs") as browser,
        await browser.new_context(locale="fr-FR") as opened,
    ):
        yield await opened.new_page()


@pytest_asyncio.fixture(loop_scope="session")
async def mss(instance: Path) -> AsyncIterator[Running]:
    """A running mss (SQLite), in the session's event loop, the browser's."""
    async with running(instance) as server:
        yield server


@pytest_asyncio.fixture(loop_scope="session")
async def context(chromium: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile (no cookies), French, certificates verified."""
    async with await chromium.new_context(locale="fr-FR", ignore_https_errors=False) as opened:
        yield opened


@pytest_asyncio.fixture(loop_scope="session")
async def page(context: BrowserContext) -> AsyncIterator[Page]:
    yield await context.new_page()


@pytest_asyncio.fixture(loop_scope="session")
async def patient_page(mss: Running, page: Page) -> Page:
    """A page whose browser holds a session of PATIENT_INS (the patient added)."""
    await mss.add_patient(PATIENT_INS)
    await login_in_browser(page, mss, PATIENT_INS)
    return page


def space_url(mss: Running, path: str = "/") -> str:
    return f"https://localhost:{mss.ports['https']}/espace{path}"


async def login_in_browser(page: Page, mss: Running, ins: str, **kwargs: Any) -> str:
    """Open a session the way a successful login does (a real row) and give its cookie
    to the browser; return the session's CSRF token. For journeys whose subject is not
    the login itself."""
    opened = await open_session(mss, ins, **kwargs)
    await page.context.add_cookies([{
        "name": COOKIE, "value": opened.token, "domain": "localhost", "path": "/espace",
        "secure": True, "httpOnly": True, "sameSite": "Lax",
    }])  # fmt: skip
    return opened.record.csrf


def console_errors(page: Page) -> list[str]:
    """From now on, the page's console errors and uncaught exceptions (a CSP refusal is
    one); a failed load of the page itself (its 404, say) is not counted."""
    errors: list[str] = []

    def console(message: Any) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            errors.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    return errors


# --- accessibility -----------------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    rule: str
    impact: str
    help: str
    targets: list[str]

    def describe(self) -> str:
        where = ", ".join(self.targets[:5]) + (" …" if len(self.targets) > 5 else "")
        return f"[{self.impact}] {self.rule}: {self.help} — {where}"


class NotAccessible(AssertionError):
    """axe-core found serious or critical violations."""


_RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.map(v => ({rule: v.id, impact: v.impact || 'unknown',
    help: v.help, targets: v.nodes.map(n => n.target.join(' '))}));
}"""


async def axe_violations(page: Page) -> list[Violation]:
    """Every axe-core violation of the page as it is now.

    axe is evaluated through the DevTools protocol (`page.evaluate`), which the page's
    Content-Security-Policy does not govern: `add_script_tag` would insert an inline
    <script> that the space's `script-src 'self'` rightly blocks, and a `bypass_csp`
    context would switch the CSP off for the whole page under test."""
    if not await page.evaluate("typeof axe !== 'undefined'"):
        await page.evaluate(AXE.read_text(encoding="utf-8"))
    found = await page.evaluate(_RUN_AXE)
    return [Violation(**item) for item in found]


_FOCUSED = """() => {
  const e = document.activeElement;
  if (!e || e === document.body) return '';
  const name = e.getAttribute('aria-label') || e.innerText || e.value || e.name || '';
  return `${e.tagName.toLowerCase()}:${name.trim().replace(/\\s+/g, ' ').slice(0, 60)}`;
}"""


async def tab_order(page: Page, count: int) -> list[str]:
    """What the keyboard reaches with `count` presses of Tab from the top of the page,
    as `tag:name` (the focus order a keyboard user follows)."""
    reached = []
    for _ in range(count):
        await page.keyboard.press("Tab")
        reached.append(await page.evaluate(_FOCUSED))
    return reached


async def assert_accessible(page: Page) -> None:
    """Fail on axe-core's serious or critical violations, listed one a line."""
    blocking = [v for v in await axe_violations(page) if v.impact in BLOCKING]
    if blocking:
        lines = "\n  ".join(v.describe() for v in blocking)
        raise NotAccessible(f"{page.url}: {len(blocking)} accessibility violation(s):\n  {lines}")
