"""Journeys in the patient's record, in a real browser (Debian's Chromium): masking a
document, after which a professional no longer finds it through the DMP API; blocking a
professional, whose DMP access is then refused; a parent opening their child's space,
which shows the child's documents but those hidden from legal representatives. Every
page on the way passes the accessibility gate.

They need the documents and settings pages (space-record) and the representatives
(space-core): on a branch without them the module is skipped, for that reason alone.
The server is the record tests' (`record`: professionals with bearer tokens, the
annuaire loaded), in the test's own loop, so the browser is one of the test's own
(`own_page`).
"""

from __future__ import annotations

import datetime as dt
import time

import pytest
import pytest_asyncio
from playwright.async_api import Page

pytest.importorskip(
    "mss.space.pages.documents", reason="the record pages (space-record) are not here"
)
pytest.importorskip(
    "mss.store.representatives", reason="the representatives (space-core) are not here"
)

from mss.store.representatives import add_representation

from . import browser, space_record
from .browser import assert_accessible, console_errors, login_in_browser, space_url
from .harness import Running
from .space import PATIENT_INS, web
from .space_record import LEVEQUE, MINOR_INS, authorise, deposit, document, found_by, pro

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


async def test_a_parent_chooses_their_childs_space_and_sees_it_minus_the_hidden_documents(
    record: Running, own_page: Page
) -> None:
    page, errors = own_page, console_errors(own_page)
    secret = ["N", "INVISIBLE_REPRESENTANTS_LEGAUX"]
    await deposit(record, MINOR_INS, document(1, "Vaccinations"),
                  document(2, "Consultation confidentielle", confidentiality=secret))  # fmt: skip
    now, today = int(time.time()), dt.date.today()
    await record.store.write(
        lambda tx: add_representation(tx, PATIENT_INS, MINOR_INS, "minor", now, today)
    )
    await login_in_browser(page, record, PATIENT_INS)  # the parent, in their own space
    await page.goto(space_url(record, "/choisir"))
    await assert_accessible(page)
    await page.get_by_label("enfant mineur").check()
    await page.get_by_role("button", name="Ouvrir cet espace").click()
    await page.get_by_text("Vous agissez pour le compte de").wait_for()
    await page.goto(space_url(record, "/documents"))
    await page.get_by_role("link", name="Vaccinations").wait_for()
    await assert_accessible(page)
    assert "confidentiel" not in (await page.content()).lower()
    await page.goto(space_url(record, "/historique"))
    assert "confidentiel" not in (await page.content()).lower()
    assert errors == [], errors
