"""Journeys in the patient's record, in a real browser (Debian's Chromium): masking a
document, after which a professional no longer finds it through the DMP API; blocking a
professional, whose DMP access is then refused. Every page on the way passes the
accessibility gate.

They need the documents and settings pages (space-record): on a branch without them the
module is skipped, as a whole, for that reason alone. The server is the record tests'
(`record`: professionals with bearer tokens, the annuaire loaded), in the test's own loop,
so the browser is one of the test's own (`own_page`).
"""

from __future__ import annotations

import pytest
import pytest_asyncio
from playwright.async_api import Page

pytest.importorskip(
    "mss.space.pages.documents", reason="the record pages (space-record) are not here"
)

from . import browser, space_record
from .browser import assert_accessible, console_errors, login_in_browser, space_url
from .harness import Running
from .space import PATIENT_INS, web
from .space_record import LEVEQUE, authorise, deposit, document, found_by, pro

own_page, record = browser.own_page, space_record.record  # the fixtures


TITLE = "Bilan sensible"


@pytest_asyncio.fixture
async def patient(record: Running, own_page: Page) -> Page:
    """A document in the patient's DMP that Hélène Lévêque may read; the patient's
    browser holds a session."""
    await deposit(record, PATIENT_INS, document(1, TITLE))
    async with web(record) as api:
        await authorise(api, PATIENT_INS, LEVEQUE)
        assert await found_by(api, PATIENT_INS, LEVEQUE) == [TITLE]
    await login_in_browser(own_page, record, PATIENT_INS)
    return own_page


async def test_a_document_masked_in_the_browser_is_no_longer_found_through_the_dmp_api(
    record: Running, patient: Page
) -> None:
    page, errors = patient, console_errors(patient)
    await page.goto(space_url(record, "/documents"))
    await assert_accessible(page)
    await page.get_by_role("button", name=f"Masquer aux professionnels : {TITLE}").click()
    await page.get_by_text("masqué aux professionnels", exact=True).wait_for()  # the badge
    await assert_accessible(page)
    async with web(record) as api:
        assert await found_by(api, PATIENT_INS, LEVEQUE) == []
    assert errors == [], errors


async def test_a_professional_blocked_in_the_browser_has_their_dmp_access_refused(
    record: Running, patient: Page
) -> None:
    page, errors = patient, console_errors(patient)
    await page.goto(space_url(record, "/parametres"))
    await page.get_by_role("link", name="Professionnels bloqués").click()
    await page.get_by_label("Nom ou numéro RPPS du professionnel").fill("lévêque")
    await page.get_by_role("button", name="Rechercher").click()
    await assert_accessible(page)
    await page.get_by_role("button", name="Bloquer Hélène Lévêque").click()
    await page.get_by_role("button", name="Débloquer Hélène Lévêque").wait_for()
    await assert_accessible(page)
    async with web(record) as api:
        refused = await api.get(f"/api/dmp/patients/{PATIENT_INS}/documents", headers=pro(LEVEQUE))
    assert refused.status_code == 403 and refused.json()["error"] == "DMPAccessForbidden"
    assert errors == [], errors
