"""`./scripts/screenshots [DIR]`: PNG pictures of the patient space's main pages.

A throw-away instance (`mss init` in a temporary folder, every listener on a free
loopback port, as the tests run it) gets a demo patient and her professionals' mail,
sent for real over SMTP submission: a message with a PDF attachment, an HTML message,
and two mails carrying DMP documents (IHE XDM), which the outbox deposits in her record.
Then Debian's Chromium (tests/browser.py: the instance's key trusted, nothing else)
opens her space with a session (the cookie a login gives) and saves one PNG a page.
A page that does not answer 200 is still pictured and named in the summary.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

from playwright.async_api import Page, async_playwright

from mss.store import outbox
from mss.store.conversations import conversations_of_patient
from mss.store.dmp import count_documents
from mss.testing.xdmgen import INS, XDM, XDMDocument, cda

from .browser import browser_env, chromium_path, launch_args, login_in_browser, space_url
from .harness import Running, running

REPO = Path(__file__).resolve().parent.parent
DOCTOR = "jean.dupont@pro.mssante.test"
NURSE = "claire.martin@hopital.mssante.test"
PATIENT = f"{INS}@patient.mssante.fr"
WITH_PDF, WITH_HTML = "Votre ordonnance", "Préparation de votre examen"
PAGES = (  # file name, path under /espace or the subject of a conversation of the list
    ("messages", "/messages"),
    ("conversation", WITH_PDF),
    ("conversation-html", WITH_HTML),
    ("documents", "/documents"),
    ("historique", "/historique"),
    ("parametres", "/parametres"),
)


def mail(sender: str, subject: str, text: str, message_id: str) -> EmailMessage:
    message = EmailMessage(policy=default)
    message["From"], message["To"], message["Subject"] = sender, PATIENT, subject
    message["Message-ID"] = f"<{message_id}@{sender.split('@')[1]}>"
    message["Date"] = "Fri, 20 Nov 2026 10:30:00 +0100"
    message.set_content(text)
    return message


def with_pdf() -> bytes:
    message = mail(DOCTOR, WITH_PDF, "Bonjour Madame,\n\nVoici votre ordonnance.\n\n"
                   "Bien cordialement,\nDr Jean Dupont", "ordonnance-1")  # fmt: skip
    message.add_attachment(b"%PDF-1.4\n% ordonnance de demonstration\n", maintype="application",
                           subtype="pdf", filename="ordonnance.pdf")  # fmt: skip
    return message.as_bytes()


def html_mail() -> bytes:
    message = mail(NURSE, WITH_HTML, "Bonjour,\n\nÀ jeun la veille.\n",
                   "examen-1")  # fmt: skip
    message.add_alternative(
        "<p>Bonjour,</p><p>Merci de venir <strong>à jeun</strong> le jour de l'examen.</p>"
        "<ul><li>Carte Vitale</li><li>Ordonnance</li></ul><p>L'équipe d'imagerie</p>",
        subtype="html",
    )
    return message.as_bytes()


def document_mail(number: int, code: str, title: str) -> bytes:
    document = XDMDocument(
        cda(code=code, display=title, extension=f"CR-2026-000{number}"),
        unique_id=f"1.2.250.1.999.1.1^CR-2026-000{number}", type_code=code, title=title,
    )  # fmt: skip
    message = mail(DOCTOR, f"XDM/1.0/DDM+{title}", f"Bonjour, voici votre {title.lower()}.",
                   f"document-{number}")  # fmt: skip
    message["X-MSS-CODECDA"], message["X-MSS-INS"] = code, "O"
    message.add_attachment(XDM([document]).build(), maintype="application", subtype="zip",
                           filename="IHE_XDM.ZIP")  # fmt: skip
    return message.as_bytes()


async def fill(mss: Running) -> None:
    """The demo patient, her two professionals, and their mail (sent for real)."""
    await mss.add_pro(DOCTOR, national_id="810003456789", name="Jean DUPONT")
    await mss.add_pro(NURSE, national_id="810003456790", name="Claire MARTIN")
    await mss.add_patient(INS, family="DE VINCI", given="RUTH", birth_date="1979-03-17")
    await mss.submit(DOCTOR, document_mail(1, "11488-4", "Compte rendu de consultation"),
                     [PATIENT])  # fmt: skip
    await mss.submit(DOCTOR, document_mail(2, "11502-2", "Résultats de biologie"), [PATIENT])
    await mss.submit(NURSE, html_mail(), [PATIENT], mail_from=NURSE)
    await mss.submit(DOCTOR, with_pdf(), [PATIENT])  # the newest: first on the list
    await deposited(mss)
    conversations = await mss.store.read(lambda c: conversations_of_patient(c, INS))
    documents = await mss.store.read(lambda c: count_documents(c, INS))
    print(f"demo patient {PATIENT}: {len(await mss.inbox(PATIENT))} messages, "
          f"{len(conversations)} conversations, {documents} DMP documents")  # fmt: skip


async def deposited(mss: Running) -> None:
    """Wait until the outbox has put the mailed documents in the DMP."""
    for _ in range(400):
        rows = await mss.store.read(lambda c: outbox.list_items(c, kinds=["dmp_deposit"]))
        if rows and all(r.status == "done" for r in rows):
            return
        await asyncio.sleep(0.05)
    print("screenshots: the DMP deposits did not finish in time", file=sys.stderr)


async def conversation_path(page: Page, mss: Running, subject: str) -> str:
    """The conversation of `subject` as the messages list links it (else by its id)."""
    await page.goto(space_url(mss, "/messages"))
    link = page.get_by_role("link", name=subject, exact=True)
    if await link.count():
        return (await link.first.get_attribute("href") or "").removeprefix("/espace")
    conversations = await mss.store.read(lambda c: conversations_of_patient(c, INS))
    ids = [c.id for c in conversations if c.subject == subject]
    return f"/messages/{ids[0] if ids else 1}"


async def shoot(page: Page, url: str, target: Path) -> int:
    answer = await page.goto(url)
    await page.screenshot(path=str(target), full_page=True)
    return answer.status if answer is not None else 0


async def take(mss: Running, out: Path) -> dict[str, int]:
    executable = chromium_path()
    if executable is None:
        raise SystemExit("screenshots: Chromium is not installed (apt-get install chromium)")
    statuses: dict[str, int] = {}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, env=browser_env(), args=launch_args(mss.data_dir / "certs")
        )
        context = await browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 860})
        page = await context.new_page()
        statuses["connexion"] = await shoot(page, space_url(mss, "/connexion"),
                                            out / "connexion.png")  # fmt: skip
        await login_in_browser(page, mss, INS)
        for name, path in PAGES:
            where = path if path.startswith("/") else await conversation_path(page, mss, path)
            statuses[name] = await shoot(page, space_url(mss, where), out / f"{name}.png")
        await browser.close()
    return statuses


async def demo(data: Path, out: Path) -> dict[str, int]:
    async with running(data) as mss:
        await fill(mss)
        return await take(mss, out)


def main(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mss-screenshots-") as tmp:
        data = Path(tmp) / "data"
        subprocess.run(
            [sys.executable, "-m", "mss", "init", "--data-dir", str(data),
             "--domain", "pro.mssante.test", "--domain", "hopital.mssante.test"],
            check=True, capture_output=True,
        )  # fmt: skip
        statuses = asyncio.run(demo(data, out))
    for name, status in statuses.items():
        note = "" if status == 200 else "   (not 200: the page is not built on this branch?)"
        print(f"{out / (name + '.png')}  {status}{note}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="scripts/screenshots", description=__doc__)
    parser.add_argument("out", nargs="?", type=Path, default=REPO / "docs" / "screenshots",
                        help="where the PNG files go (docs/screenshots/)")  # fmt: skip
    sys.exit(main(parser.parse_args().out))
