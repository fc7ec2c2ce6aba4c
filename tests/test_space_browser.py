"""The patient space in a real browser (Debian's Chromium): its pages pass the
accessibility gate (axe-core: no serious or critical violation), its CSP holds in the
browser, and the gate itself fails on a bad page.

Journeys go here too: take `patient_page` (PATIENT_INS logged in), or open a session with
`login_in_browser(page, mss, ins)` for another patient (or log in for real through
/espace/connexion), drive the page, then `await assert_accessible(page)`; `console_errors`
catches CSP refusals and script errors, `tab_order` the keyboard's focus order.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page

from . import browser
from .browser import (
    AXE,
    NotAccessible,
    assert_accessible,
    console_errors,
    login_in_browser,
    space_url,
    tab_order,
    unavailable,
)
from .harness import Running
from .screenshots import fill
from .space import PATIENT_INS

# the browser's fixtures; `mss` replaces conftest's (the same server, in the browser's loop)
chromium, context, page, mss = browser.chromium, browser.context, browser.page, browser.mss
patient_page = browser.patient_page
pytestmark = pytest.mark.asyncio(loop_scope="session")

BAD_PAGE = """<!doctype html><html><head><title>Mauvaise page</title></head><body>
<main><h1>Formulaire</h1><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
<form><input type="text" name="nom"><button></button></form></main></body></html>"""
GOOD_PAGE = """<!doctype html><html lang="fr"><head><title>Bonne page</title></head><body>
<main><h1>Formulaire</h1><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" alt="Logo">
<form><label for="nom">Nom</label><input id="nom" type="text" name="nom">
<button type="submit">Envoyer</button></form></main></body></html>"""

REPO = Path(__file__).resolve().parent.parent
# The pages every patient reaches once logged in; those not built yet answer 404 and are
# left out of the sweep (each page helper's own tests check that its page exists).
SPACE_PAGES = ("/messages", "/documents", "/historique", "/parametres")


async def test_the_accessibility_gate_fails_on_an_image_without_alt_and_an_unlabelled_field(
    page: Page,
) -> None:
    await page.set_content(BAD_PAGE)
    with pytest.raises(NotAccessible) as raised:
        await assert_accessible(page)
    report = str(raised.value)
    assert "image-alt" in report and "label" in report and "button-name" in report
    assert "[critical]" in report


async def test_the_accessibility_gate_passes_a_page_with_alt_texts_and_labels(
    page: Page,
) -> None:
    await page.set_content(GOOD_PAGE)
    await assert_accessible(page)


async def test_the_vendored_axe_core_is_a_4_x_release_with_its_licence() -> None:
    head = AXE.read_text(encoding="utf-8")[:200]
    assert head.startswith("/*! axe v4.")
    assert (AXE.parent / "axe-LICENSE.txt").read_text().startswith("Mozilla Public License")


async def test_the_browser_verifies_certificates_and_trusts_only_the_instance_key(
    mss: Running, page: Page
) -> None:
    answer = await page.goto(space_url(mss, "/nulle-part"))
    assert answer is not None and answer.status == 404
    cert, key = mss.pki.issue_server("other-server", "localhost", [])  # same CA, other key
    async with https_server(cert, key) as port:
        with pytest.raises(PlaywrightError, match="ERR_CERT_AUTHORITY_INVALID"):
            await page.goto(f"https://localhost:{port}/")


@asynccontextmanager
async def https_server(cert: Path, key: Path) -> AsyncIterator[int]:
    """A one-page HTTPS server on loopback with the given certificate."""
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ssl.SSLError):
            await reader.readline()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=tls)
    async with server:
        yield server.sockets[0].getsockname()[1]


async def test_the_french_404_page_is_accessible(mss: Running, page: Page) -> None:
    answer = await page.goto(space_url(mss, "/nulle-part"))
    assert answer is not None and answer.status == 404
    assert await page.locator("html").get_attribute("lang") == "fr"
    await assert_accessible(page)


async def test_the_login_page_and_the_pages_it_links_are_accessible(
    mss: Running, page: Page
) -> None:
    answer = await page.goto(space_url(mss, "/"))
    assert answer is not None and "/espace/connexion" in page.url
    errors = console_errors(page)
    await crawl(page, page.url, limit=10)  # activation, forgotten password… once they exist
    assert errors == [], errors


async def test_the_space_csp_blocks_inline_scripts_in_the_browser(mss: Running, page: Page) -> None:
    errors = console_errors(page)
    await page.goto(space_url(mss, "/nulle-part"))
    assert errors == []
    with pytest.raises(PlaywrightError):
        await page.add_script_tag(content="window.injected = true;")
    assert await page.evaluate("typeof window.injected") == "undefined"
    assert any("Content Security Policy" in error for error in errors), errors


async def test_a_logged_in_patient_lands_on_the_messagerie_in_the_browser(
    mss: Running, patient_page: Page
) -> None:
    await patient_page.goto(space_url(mss, "/"))
    assert patient_page.url.endswith("/espace/messages")


async def test_every_page_of_a_logged_in_patient_is_accessible_and_within_its_csp(
    mss: Running, patient_page: Page
) -> None:
    errors = console_errors(patient_page)
    for path in SPACE_PAGES:
        answer = await patient_page.goto(space_url(mss, path))
        assert answer is not None and answer.status in (200, 404), (path, answer)
        await assert_accessible(patient_page)  # a page not built yet: the 404 of a logged-in viewer
        assert errors == [], (path, errors)  # no CSP refusal, no script error


async def test_the_keyboard_reaches_the_skip_link_first_and_it_leads_to_the_content(
    mss: Running, patient_page: Page
) -> None:
    await patient_page.goto(space_url(mss, "/nulle-part"))
    order = await tab_order(patient_page, 2)
    assert order[0] == "a:Aller au contenu", order
    assert order[1].startswith("a:Mon espace santé"), order  # the header's link home
    await patient_page.keyboard.press("Shift+Tab")
    await patient_page.keyboard.press("Enter")
    assert await patient_page.evaluate("document.activeElement.id") == "contenu"


async def test_the_screenshots_script_pictures_every_main_page(tmp_path: Path) -> None:
    """`./scripts/screenshots DIR` (tests/screenshots.py) on a throw-away instance."""
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "tests.screenshots", str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    if done.returncode and "Chromium is not installed" in done.stderr:
        unavailable("no chromium binary")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "4 messages" in done.stdout and " 0 DMP documents" not in done.stdout, done.stdout
    names = ("connexion", "messages", "conversation", "conversation-html", "documents",
             "historique", "parametres")  # fmt: skip
    assert [n for n in names if not is_png(tmp_path / f"{n}.png")] == []


def is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:4] == b"\x89PNG"


async def test_every_page_a_patient_reaches_by_links_is_accessible_and_within_its_csp(
    mss: Running, page: Page
) -> None:
    """The demo patient of the screenshots (mail with a PDF, an HTML mail, DMP documents);
    from the messagerie, every page of the space a link leads to (up to 40)."""
    await fill(mss)
    await login_in_browser(page, mss, PATIENT_INS)
    errors = console_errors(page)
    visited = await crawl(page, space_url(mss, "/messages"), limit=40)
    assert visited, "no page answered"
    assert errors == [], errors


async def crawl(page: Page, start: str, *, limit: int) -> list[str]:
    """Visit the space's pages linked from `start`, breadth first; check each HTML page;
    return the paths checked. Files (attachments, documents) are not pages: left out."""
    queue, seen, checked = [start], {start}, []
    origin = start.split("/espace/")[0]
    while queue and len(checked) < limit:
        url = queue.pop(0)
        try:
            answer = await page.goto(url)
        except PlaywrightError as error:  # a link to a file starts a download
            if "Download is starting" in str(error):
                continue
            raise
        if answer is None or "text/html" not in answer.headers.get("content-type", ""):
            continue
        await assert_accessible(page)
        checked.append(url.removeprefix(origin))
        for href in await page.eval_on_selector_all("a[href^='/espace/']", LINKS):
            target = origin + href.split("#")[0]
            if target not in seen:
                seen.add(target)
                queue.append(target)
    return checked


LINKS = "links => links.filter(a => !a.hasAttribute('download')).map(a => a.getAttribute('href'))"
