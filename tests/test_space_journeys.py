"""Journeys of a patient in a real browser (Debian's Chromium), end to end: activation
and login with the codes the real smarthost sink receives, reading a professional's
message, replying (the professional reads it over IMAP), [FIN] and the refusals that
follow; every page on the way passes the accessibility gate.

They need the login pages (space-core) and the messagerie (space-mail): on a branch
without them the module is skipped, as a whole, for that reason alone.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Page

pytest.importorskip("mss.space.pages.auth", reason="the login pages (space-core) are not here")
pytest.importorskip("mss.space.pages.messages", reason="the messagerie (space-mail) is not here")

from mss.store.space_accounts import issue_activation

from . import browser
from .browser import assert_accessible, console_errors, login_in_browser, space_url
from .harness import Running, running
from .notifying import Sink, notify_settings
from .space import PATIENT_INS
from .space_login import ACTIVATION, LOGIN, PASSWORD, Space
from .space_mail import JEAN, MARIE, PATIENT, imap_inbox, multipart, pro_writes
from .test_space_mail_security import CRAFTED

chromium, context, page = browser.chromium, browser.context, browser.page
pytestmark = pytest.mark.asyncio(loop_scope="session")

MAIL = "dominique.pat-trois@exemple.fr"  # where the patient's codes are e-mailed
FIRST = "<m1@pro.mssante.test>"


@pytest_asyncio.fixture(loop_scope="session")
async def clinic(instance: Path, sink: tuple[Sink, int]) -> AsyncIterator[Running]:
    """The server (its notices to the sink), two professionals, a patient to activate."""
    async with running(instance, overrides=notify_settings(sink[1])) as server:
        await server.add_pro(JEAN, name="Jean Dupont")
        await server.add_pro(MARIE, name="Marie Martin")
        await server.add_patient(PATIENT_INS, email=MAIL)
        now = int(time.time())
        await server.store.write(lambda tx: issue_activation(tx, PATIENT_INS, now))
        yield server


async def code_in(sink: Sink, pattern: re.Pattern[str], after: int = 0) -> str:
    """The code of the first e-mail to the patient matching `pattern`, from mail `after`
    (the login tests' reader: only its sink is used)."""
    reader = Space(mss=None, box=sink, deps=None)  # type: ignore[arg-type]
    return await reader.code_for(MAIL, pattern, after)


async def post_from_the_page(page: Page, url: str, **fields: str) -> tuple[int, str]:
    """A POST the page's own forms would not send, made by the browser itself (its
    cookies, the page's CSRF token): what a tampered form or a script would do."""
    csrf = await page.locator("input[name=csrf]").first.input_value()
    answer: list[Any] = await page.evaluate(_POST, [url, {"csrf": csrf, **fields}])
    return int(answer[0]), str(answer[1])


async def refused(page: Page, url: str, words: str, **fields: str) -> None:
    """Such a POST is refused with 403 and a French text saying `words`."""
    status, text = await post_from_the_page(page, url, **fields)
    assert status == 403, (status, text[:500])
    assert words in html.unescape(text), text[:2000]


_POST = """async ([url, fields]) => {
  const answer = await fetch(url, {method: 'POST', body: new URLSearchParams(fields)});
  return [answer.status, await answer.text()];
}"""


async def activate_and_log_in(page: Page, mss: Running, sink: Sink) -> None:
    """The patient's first visit: activation with the e-mailed code, then both steps of
    the login, every form filled by its label as a person would."""
    await page.goto(space_url(mss, "/activation"))
    await assert_accessible(page)
    await page.get_by_label("Identifiant").fill(PATIENT_INS)
    await page.get_by_label("Code d'activation").fill(await code_in(sink, ACTIVATION))
    await page.get_by_label(re.compile("^Nouveau mot de passe")).fill(PASSWORD)
    await page.get_by_label("Confirmez le nouveau mot de passe").fill(PASSWORD)
    await page.get_by_role("button", name="Activer mon espace").click()
    await page.wait_for_url("**/espace/connexion?etat=active")
    await assert_accessible(page)
    seen = len(sink.mail)
    await page.get_by_label("Identifiant").fill(PATIENT_INS)
    await page.get_by_label("Mot de passe").fill(PASSWORD)
    await page.get_by_role("button", name="Continuer").click()
    await page.get_by_label("Code à usage unique").fill(await code_in(sink, LOGIN, seen))
    await assert_accessible(page)
    await page.get_by_role("button", name="Se connecter").click()
    await page.wait_for_url("**/espace/messages")


@pytest_asyncio.fixture(loop_scope="session")
async def patient(clinic: Running, sink: tuple[Sink, int], page: Page) -> Page:
    """Jean Dupont has written; the patient activated her space and logged in, for real."""
    await pro_writes(clinic, JEAN, PATIENT, FIRST, subject="Compte rendu")
    await activate_and_log_in(page, clinic, sink[0])
    await assert_accessible(page)
    return page


async def test_activation_login_read_and_reply_then_the_professional_reads_it_over_imap(
    clinic: Running, patient: Page
) -> None:
    page, errors = patient, console_errors(patient)
    await page.get_by_role("link", name="Compte rendu").click()
    await page.get_by_text("voici le compte rendu").wait_for()
    await assert_accessible(page)
    await page.get_by_label("Votre réponse").fill("Merci docteur, à bientôt.")
    await page.get_by_role("button", name="Envoyer la réponse").click()
    await page.get_by_text("Votre réponse a été envoyée.").wait_for()
    [reply] = await imap_inbox(clinic, JEAN)
    assert PATIENT in reply["From"] and reply["In-Reply-To"] == FIRST
    assert "Merci docteur, à bientôt." in str(reply.get_payload(decode=True), "utf-8")
    assert errors == [], errors


async def test_after_fin_the_banner_no_reply_box_and_a_forged_reply_refused_in_french(
    clinic: Running, patient: Page
) -> None:
    page = patient
    await page.get_by_role("link", name="Compte rendu").click()
    thread = page.url
    await pro_writes(clinic, JEAN, PATIENT, "<m2@pro.mssante.test>", subject="[FIN]",
                     headers={"In-Reply-To": FIRST})  # fmt: skip
    await page.reload()
    await page.get_by_text("Jean Dupont a mis fin à vos échanges").wait_for()
    assert await page.get_by_label("Votre réponse").count() == 0
    await assert_accessible(page)
    await refused(page, f"{thread}/repondre", "clos cette conversation", texte="Encore")
    assert await imap_inbox(clinic, JEAN) == []


async def test_a_forged_new_message_to_a_professional_who_never_wrote_is_refused_in_french(
    clinic: Running, patient: Page
) -> None:
    page = patient
    await page.get_by_role("button", name="Nouveau message").click()
    await assert_accessible(page)
    choices = await page.get_by_label("Professionnel").locator("option").all_inner_texts()
    assert any("Jean Dupont" in c for c in choices) and not any("Marie" in c for c in choices)
    await refused(page, space_url(clinic, "/messages/nouveau"), "déjà écrit",
                  destinataire=MARIE, objet="Bonjour", texte="Docteur ?")  # fmt: skip
    assert await imap_inbox(clinic, MARIE) == []


async def test_a_crafted_html_mail_runs_no_script_and_fetches_nothing_remote_in_the_browser(
    clinic: Running, page: Page
) -> None:
    """The mail's scripts, event handlers, `javascript:` link and remote images: nothing
    runs (no dialog, nothing set on the page) and nothing leaves for another host."""
    home, asked, dialogs = space_url(clinic, "/"), [], []
    page.context.on("request", lambda request: asked.append(request.url))
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    page.set_default_timeout(10_000)
    await clinic.submit(JEAN, multipart(JEAN, PATIENT, FIRST, CRAFTED, []), [PATIENT])
    await login_in_browser(page, clinic, PATIENT_INS)
    await page.goto(space_url(clinic, "/messages"))
    await page.get_by_role("link", name="Résultats").click()
    mail = page.frame_locator("iframe.mail")
    await mail.get_by_text("Bonjour").wait_for()
    await mail.get_by_text("Bonjour").hover()  # the onmouseover, had it survived
    if await mail.get_by_role("link", name="lien").count():
        await mail.get_by_role("link", name="lien").click()
    await assert_accessible(page)
    assert await page.locator("iframe.mail").get_attribute("sandbox") == ""  # no allow-scripts
    assert dialogs == []
    assert [url for url in asked if not url.startswith(home)] == []
