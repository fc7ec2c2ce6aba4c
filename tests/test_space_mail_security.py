"""The messagerie's defences: a professional's HTML cannot run or fetch anything in the
space (nh3, then a sandboxed frame under its own CSP), attachments are served so that the
browser never guesses (nosniff, attachment, safe names), the patient's uploads are checked
by their content, and no id of another patient's answers anything but 404."""

from __future__ import annotations

import html
import re

import aiosmtplib
import httpx
import pytest

from mss.space.headers import MAIL_FRAME_CSP
from mss.store.mailboxes import Target
from mss.store.space_mail import patient_boxes

from . import space_mail
from .harness import Running, message
from .space import OTHER_INS, PATIENT_INS, patient_client
from .space_mail import JEAN, PATIENT, PDF_BYTES, PNG_BYTES, add_people, imap_inbox, multipart

pytestmark = pytest.mark.asyncio
OTHER = f"{OTHER_INS}@patient.mssante.fr"
CRAFTED = (
    '<p onmouseover="alert(1)">Bonjour<script>alert("xss")</script>'
    '<a href="javascript:alert(2)">lien</a><img src="https://traceur.example/pixel.png" '
    'onerror="alert(3)"><img src="x" onerror="alert(4)"><a href="https://ameli.fr">ameli</a>'
    '<iframe src="https://evil.example"></iframe><svg onload="alert(5)"></svg>'
    "<style>body{background:url(https://evil.example/bg)}</style></p>"
)


@pytest.fixture
async def clinic(mss: Running) -> Running:
    await add_people(mss, PATIENT_INS, OTHER_INS)
    return mss


async def _send_multipart(
    mss: Running, to: str, msgid: str, files: list[tuple[str, str, bytes]]
) -> None:
    reply = await mss.submit(JEAN, multipart(JEAN, to, msgid, CRAFTED, files), [to])
    assert reply.code == 250


def _ids(page: str, pattern: str) -> list[str]:
    return re.findall(pattern, page)


async def _thread(client: httpx.AsyncClient) -> tuple[int, str]:
    listing = await client.get("/espace/messages")
    [conversation] = _ids(listing.text, r'href="/espace/messages/(\d+)"')
    thread = await client.get(f"/espace/messages/{conversation}")
    return int(conversation), thread.text


async def test_a_crafted_html_mail_runs_nothing_and_fetches_nothing(clinic: Running) -> None:
    await _send_multipart(clinic, PATIENT, "<h1@pro.mssante.test>", [])
    async with patient_client(clinic, PATIENT_INS) as (client, _):
        _, page = await _thread(client)
        [frame_src] = _ids(page, r'<iframe class="mail" sandbox [^>]*src="([^"]+)"')
        frame = await client.get(frame_src)
    assert "alert" not in page and "traceur" not in page
    assert frame.status_code == 200
    assert frame.headers["content-security-policy"] == MAIL_FRAME_CSP
    body = frame.text.lower()
    for gone in ("<script", "alert", "onerror", "onmouseover", "onload", "javascript:",
                 "traceur.example", "evil.example", "<iframe", "<style"):  # fmt: skip
        assert gone not in body, gone
    assert "bonjour" in body and 'href="https://ameli.fr"' in body


async def test_attachments_download_as_attachments_and_preview_with_their_real_type(
    clinic: Running,
) -> None:
    files = [("résultat bilan.pdf", "application/pdf", PDF_BYTES),
             ("../../etc/passwd.png", "image/png", PNG_BYTES),
             ("page.html", "text/html", b"<script>alert(1)</script>")]  # fmt: skip
    await _send_multipart(clinic, PATIENT, "<a1@pro.mssante.test>", files)
    async with patient_client(clinic, PATIENT_INS) as (client, _):
        _, page = await _thread(client)
        ids = list(dict.fromkeys(_ids(page, r'href="/espace/pieces/([\d.]+)"')))
        pdf, png, page_html = [await client.get(f"/espace/pieces/{i}") for i in ids]
        pdf_preview = await client.get(f"/espace/pieces/{ids[0]}/apercu")
        png_preview = await client.get(f"/espace/pieces/{ids[1]}/apercu")
        html_preview = await client.get(f"/espace/pieces/{ids[2]}/apercu")
    assert pdf.content == PDF_BYTES and pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"].startswith("attachment;")
    assert "filename*=UTF-8''r%C3%A9sultat%20bilan.pdf" in pdf.headers["content-disposition"]
    assert "/" not in png.headers["content-disposition"].split("filename=")[1].split(";")[0]
    assert page_html.headers["content-type"].startswith("text/plain")  # never text/html
    assert page_html.headers["content-disposition"].startswith("attachment;")
    for response in (pdf, png, page_html, pdf_preview, png_preview, html_preview):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store"
    assert pdf_preview.headers["content-disposition"].startswith("inline;")
    assert png_preview.headers["content-type"] == "image/png"
    assert html_preview.headers["content-disposition"].startswith("attachment;")
    assert "/apercu" not in page.split(ids[2])[-1].split("</li>")[0]


async def _reply(
    client: httpx.AsyncClient, csrf: str, conversation: int, files: list[tuple[str, bytes, str]]
) -> httpx.Response:
    return await client.post(
        f"/espace/messages/{conversation}/repondre",
        data={"csrf": csrf, "texte": "Voici le document."},
        files=[("pieces", f) for f in files],
    )


async def test_the_patients_attachments_are_checked_by_size_and_content(clinic: Running) -> None:
    await _send_multipart(clinic, PATIENT, "<u1@pro.mssante.test>", [])
    exe = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 64
    async with patient_client(clinic, PATIENT_INS) as (client, csrf):
        conversation, _ = await _thread(client)
        renamed = await _reply(client, csrf, conversation, [("scan.pdf", exe, "application/pdf")])
        script = await _reply(client, csrf, conversation, [("note.sh", b"echo", "text/plain")])
        big = b"%PDF-1.4\n" + b"0" * (5 * 1024 * 1024)
        too_big = await _reply(client, csrf, conversation, [("gros.pdf", big, "application/pdf")])
        assert await imap_inbox(clinic, JEAN) == []
        pdf = ("ordonnance.pdf", PDF_BYTES, "application/pdf")
        txt = ("note.txt", b"Bonjour", "text/plain")
        fine = await _reply(client, csrf, conversation, [pdf, txt])
    assert renamed.status_code == 415 and "ne correspond pas" in html.unescape(renamed.text)
    assert script.status_code == 415 and "type accepté" in html.unescape(script.text)
    assert too_big.status_code == 413 and "dépasse 5 Mo" in html.unescape(too_big.text)
    assert fine.status_code == 303
    [received] = await imap_inbox(clinic, JEAN)
    names = [p.get_filename() for p in received.iter_attachments()]
    assert names == ["ordonnance.pdf", "note.txt"]


async def test_a_patient_cannot_reach_another_patients_messages_by_any_id(
    clinic: Running,
) -> None:
    files = [("bilan.pdf", "application/pdf", PDF_BYTES)]
    await _send_multipart(clinic, OTHER, "<o1@pro.mssante.test>", files)
    async with patient_client(clinic, OTHER_INS) as (client, _):
        conversation, page = await _thread(client)
        [frame_src] = _ids(page, r'src="(/espace/messages/\d+/cadre/\d+)"')
        [file_id] = set(_ids(page, r'href="/espace/pieces/([\d.]+)"'))
    message = frame_src.rsplit("/", 1)[1]
    async with patient_client(clinic, PATIENT_INS) as (client, csrf):
        answers = [
            await client.get(f"/espace/messages/{conversation}"),
            await client.get(frame_src),
            await client.get(f"/espace/messages/999/cadre/{message}"),
            await client.get(f"/espace/pieces/{file_id}"),
            await client.get(f"/espace/pieces/{file_id}/apercu"),
            await client.post(f"/espace/messages/{conversation}/repondre",
                              data={"csrf": csrf, "texte": "Intrus"}),
            await client.post(f"/espace/pieces/{file_id}/documents", data={"csrf": csrf}),
            await client.get("/espace/messages/424242"),
            await client.get("/espace/pieces/424242.1"),
        ]  # fmt: skip
    assert [a.status_code for a in answers] == [404] * len(answers)
    assert all("Cette page n'existe pas." in html.unescape(a.text) for a in answers)
    assert await imap_inbox(clinic, JEAN) == []


async def test_the_frame_and_files_need_a_session(clinic: Running) -> None:
    await _send_multipart(clinic, PATIENT, "<s1@pro.mssante.test>", [])
    async with patient_client(clinic, PATIENT_INS) as (client, _):
        _, page = await _thread(client)
        [frame_src] = _ids(page, r'src="(/espace/messages/\d+/cadre/\d+)"')
        client.cookies.clear()
        anonymous = await client.get(frame_src)
    assert anonymous.status_code == 303 and "/espace/connexion" in anonymous.headers["location"]


async def test_plain_text_mail_is_shown_escaped_and_a_reply_needs_the_csrf_token(
    clinic: Running,
) -> None:
    raw = message(JEAN, PATIENT, "<b>Objet</b>", "<script>alert(1)</script>\r\n<img src=x>\r\n")
    assert (await clinic.submit(JEAN, raw, [PATIENT])).code == 250
    async with patient_client(clinic, PATIENT_INS) as (client, csrf):
        conversation, page = await _thread(client)
        forged = await client.post(
            f"/espace/messages/{conversation}/repondre", data={"texte": "Sans jeton"}
        )
        empty_file = await client.post(
            f"/espace/messages/{conversation}/repondre",
            data={"csrf": csrf, "texte": "Sans pièce jointe"},
            files=[("pieces", ("", b"", "application/octet-stream"))],
        )
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>Objet</b>" not in page and "<img src=x>" not in page
    assert forged.status_code == 403 and "CSRF" in forged.text
    assert empty_file.status_code == 303, empty_file.text
    [received] = await imap_inbox(clinic, JEAN)
    assert not list(received.iter_attachments())


HUGE = "9" * 25  # beyond a 64-bit integer


async def test_ids_beyond_64_bits_are_404_not_500(clinic: Running) -> None:
    await space_mail.pro_writes(clinic, JEAN, PATIENT, "<m1@pro.mssante.test>")
    async with patient_client(clinic, PATIENT_INS) as (client, csrf):
        conversation, _ = await _thread(client)
        answers = [
            await client.get(f"/espace/messages/{HUGE}"),
            await client.get(f"/espace/messages/{conversation}/cadre/{HUGE}"),
            await client.get(f"/espace/messages/{HUGE}/cadre/1"),
            await client.get(f"/espace/messages/{-1}"),
            await client.post(f"/espace/messages/{HUGE}/repondre",
                              data={"csrf": csrf, "texte": "x"}),
            await client.get(f"/espace/pieces/{HUGE}.1"),
        ]  # fmt: skip
    assert [a.status_code for a in answers] == [404] * len(answers)


async def test_a_professional_cannot_put_words_in_another_professionals_thread(
    clinic: Running,
) -> None:
    """Reusing a Message-ID of another professional's (any sender picks its own) is refused:
    the conversation shows only what its professionals wrote."""
    writes = space_mail.pro_writes
    rdv = "<rdv-1@pro.mssante.test>"
    await writes(clinic, JEAN, PATIENT, rdv, "Rendez-vous", "Votre rendez-vous est confirmé.\r\n")
    dose = "Doublez la dose de votre traitement.\r\n"
    with pytest.raises(aiosmtplib.SMTPDataError) as info:
        await writes(clinic, space_mail.MARIE, PATIENT, rdv, "Autre", dose)
    assert info.value.code == 550 and "Message-ID" in info.value.message
    async with patient_client(clinic, PATIENT_INS) as (client, _):
        _, page = await _thread(client)
    page = html.unescape(page)
    assert "Votre rendez-vous est confirmé." in page and "Doublez la dose" not in page


async def test_a_message_in_the_inbox_never_shows_as_the_patients_reply(clinic: Running) -> None:
    """The patient's messages are read from their Sent mailbox only: a message that reached
    the INBOX with the Message-ID of the patient's reply (stored before the delivery refused
    such reuse, or put there by another path) is not shown as the patient's words."""
    await space_mail.pro_writes(clinic, JEAN, PATIENT, "<q1@pro.mssante.test>")
    async with patient_client(clinic, PATIENT_INS) as (client, csrf):
        conversation, _ = await _thread(client)
        sent = await client.post(f"/espace/messages/{conversation}/repondre",
                                 data={"csrf": csrf, "texte": "Merci docteur"})  # fmt: skip
        assert sent.status_code == 303
        [reply] = await imap_inbox(clinic, JEAN)
        forged = message(JEAN, PATIENT, "Re: Compte rendu", "J'arrête mon traitement.\r\n",
                         message_id=reply["Message-ID"])  # fmt: skip
        boxes = await clinic.store.read(lambda c: patient_boxes(c, PATIENT))
        assert boxes is not None
        await clinic.store.deliver(forged, [Target(boxes.inbox)])
        _, page = await _thread(client)
    page = html.unescape(page)
    assert "Merci docteur" in page and "J'arrête mon traitement." not in page


@pytest.mark.parametrize("charset", ["undefined", "idna", "punycode", "rot13"])
async def test_a_text_part_or_file_name_in_an_odd_charset_is_shown_not_a_crash(
    clinic: Running, charset: str
) -> None:
    """Codecs such as `undefined`, `idna`, `punycode` raise even with errors="replace": the
    text and the file names are then read as UTF-8, and the conversation page shows."""
    raw = multipart(JEAN, PATIENT, "<odd@pro.mssante.test>", "<p>Bonjour \xe9</p>",
                    [("x.pdf", "application/pdf", PDF_BYTES)])  # fmt: skip
    raw = raw.replace(b"text/html; charset=utf-8", f"text/plain; charset={charset}".encode())
    raw = raw.replace(b'filename="x.pdf"', f"filename*={charset}''bilan%E9.pdf".encode())
    assert (await clinic.submit(JEAN, raw, [PATIENT])).code == 250
    async with patient_client(clinic, PATIENT_INS) as (client, _):
        listing = await client.get("/espace/messages")
        [conversation] = _ids(listing.text, r'href="/espace/messages/(\d+)"')
        thread = await client.get(f"/espace/messages/{conversation}")
        [file_id] = set(_ids(thread.text, r'href="/espace/pieces/([\d.]+)"'))
        download = await client.get(f"/espace/pieces/{file_id}")
    assert thread.status_code == 200 and "Bonjour" in thread.text
    assert download.status_code == 200 and "bilan" in download.headers["content-disposition"]
