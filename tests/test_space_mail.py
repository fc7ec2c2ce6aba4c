"""The patient space's messagerie: conversations by the professionals' names, reading
(marking `\\Seen`), replying and writing through the same pipeline as SMTP, [FIN], and the
professional reading the patient's mail over real IMAP."""

from __future__ import annotations

import asyncio
import html
import re
from pathlib import Path

import pytest

from mss.annuaire.importer import import_files
from mss.space.mail import people
from mss.store.conversations import open_conversation, record_message
from mss.store.mailboxes import Target
from mss.store.models import SystemFlag
from mss.store.space_mail import patient_boxes
from mss.store.sql import Tx

from .harness import Running, message, running
from .notifying import until
from .space import OTHER_INS, PATIENT_INS, patient_client, representative_client
from .space_mail import (
    JEAN,
    MARIE,
    PATIENT,
    PDF_BYTES,
    PNG_BYTES,
    add_people,
    flags_of,
    imap_inbox,
    multipart,
    pro_writes,
)
from .test_annuaire import MSS_FILE, PS56

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def clinic(mss: Running) -> Running:
    await add_people(mss, PATIENT_INS, OTHER_INS)
    return mss


def conversation_ids(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'href="/espace/messages/(\d+)"', page)]


async def test_the_messagerie_shows_the_patients_address_and_names_never_addresses(
    clinic: Running,
) -> None:
    await pro_writes(clinic, JEAN, PATIENT, "<m1@pro.mssante.test>")
    async with patient_client(clinic, PATIENT_INS) as (client, _):
        listing = await client.get("/espace/messages")
        [conversation] = conversation_ids(listing.text)
        thread = await client.get(f"/espace/messages/{conversation}")
    assert listing.status_code == 200 and PATIENT in listing.text
    assert "Jean Dupont" in listing.text and JEAN not in listing.text
    assert "Jean Dupont" in thread.text and JEAN not in thread.text
    assert "identifiant national 810001234567" in thread.text
    assert listing.headers["cache-control"] == "no-store"


async def test_unread_is_labelled_non_lu_and_reading_sets_seen_as_imap_sees_it(
    clinic: Running,
) -> None:
    await pro_writes(clinic, JEAN, PATIENT, "<m1@pro.mssante.test>")
    async with patient_client(clinic, PATIENT_INS) as (client, _):
        listing = await client.get("/espace/messages")
        assert "1 non lu" in listing.text
        assert await flags_of(clinic, PATIENT) == [0]
        [conversation] = conversation_ids(listing.text)
        first = await client.get(f"/espace/messages/{conversation}")
        assert "non lu" in first.text

        async def seen() -> bool:  # written after the page, without making it wait
            return all(f & SystemFlag.SEEN for f in await flags_of(clinic, PATIENT))

        await until(seen, 5)
        assert await written(clinic) == 0
        again = await client.get("/espace/messages")
    assert "non lu" not in again.text


async def test_a_reply_reaches_the_professional_over_imap_with_its_threading_and_from(
    clinic: Running,
) -> None:
    await pro_writes(clinic, JEAN, PATIENT, "<m1@pro.mssante.test>")
    async with patient_client(clinic, PATIENT_INS) as (client, csrf):
        [conversation] = conversation_ids((await client.get("/espace/messages")).text)
        sent = await client.post(
            f"/espace/messages/{conversation}/repondre",
            data={"csrf": csrf, "texte": "Merci docteur, à bientôt."},
        )
        assert sent.status_code == 303
        thread = await client.get(sent.headers["location"])
    [answer] = await imap_inbox(clinic, JEAN)
    assert answer["In-Reply-To"] == "<m1@pro.mssante.test>"
    assert "<m1@pro.mssante.test>" in answer["References"]
    assert answer["From"].addresses[0].addr_spec == PATIENT
    assert answer["From"].addresses[0].display_name == "TEST PATIENT"
    assert answer["Subject"] == "Re: Compte rendu"
    body = answer.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Merci docteur" in body and f"Matricule INS : {PATIENT_INS}" in body
    assert "Merci docteur, à bientôt." in html.unescape(thread.text)
    assert len(await flags_of(clinic, PATIENT, "Sent")) == 1


async def test_after_fin_a_banner_no_reply_box_and_a_forged_reply_refused_in_french(
    clinic: Running,
) -> None:
    await pro_writes(clinic, JEAN, PATIENT, "<m1@pro.mssante.test>")
    await pro_writes(clinic, JEAN, PATIENT, "<m2@pro.mssante.test>", subject="[FIN]",
                     headers={"In-Reply-To": "<m1@pro.mssante.test>"})  # fmt: skip
    async with patient_client(clinic, PATIENT_INS) as (client, csrf):
        [conversation] = conversation_ids((await client.get("/espace/messages")).text)
        thread = await client.get(f"/espace/messages/{conversation}")
        forged = await client.post(
            f"/espace/messages/{conversation}/repondre", data={"csrf": csrf, "texte": "Encore"}
        )
    page = html.unescape(thread.text)
    assert "Jean Dupont a mis fin à vos échanges" in page
    assert "/repondre" not in page and "<textarea" not in page
    assert forged.status_code == 403
    assert "clos cette conversation" in html.unescape(forged.text)
    assert await imap_inbox(clinic, JEAN) == []


async def test_a_new_message_to_a_professional_who_never_wrote_is_refused(
    clinic: Running,
) -> None:
    await pro_writes(clinic, JEAN, PATIENT, "<m1@pro.mssante.test>")
    async with patient_client(clinic, PATIENT_INS) as (client, csrf):
        form = await client.get("/espace/messages/nouveau")
        forged = await client.post(
            "/espace/messages/nouveau",
            data={"csrf": csrf, "destinataire": MARIE, "objet": "Bonjour", "texte": "Docteur ?"},
        )
    assert "Jean Dupont" in form.text and "Marie Martin" not in form.text
    assert 'name="destinataire"' in form.text and 'type="email"' not in form.text
    assert forged.status_code == 403
    assert "déjà écrit" in html.unescape(forged.text)
    assert await imap_inbox(clinic, MARIE) == []


async def test_a_new_message_to_a_professional_who_wrote_reaches_them(clinic: Running) -> None:
    await pro_writes(clinic, JEAN, PATIENT, "<m1@pro.mssante.test>")
    async with patient_client(clinic, PATIENT_INS) as (client, csrf):
        sent = await client.post(
            "/espace/messages/nouveau",
            data={"csrf": csrf, "destinataire": JEAN, "objet": "Question", "texte": "Docteur ?"},
        )
    assert sent.status_code == 303, sent.text
    [received] = await imap_inbox(clinic, JEAN)
    assert received["Subject"] == "Question" and received["In-Reply-To"] is None
    assert received["From"].addresses[0].addr_spec == PATIENT


async def test_a_new_message_is_refused_when_the_policy_allows_replies_only(
    instance: Path,
) -> None:
    overrides = {"policy": {"new_message_to_professionals": False}}
    async with running(instance, overrides=overrides) as mss:
        await add_people(mss, PATIENT_INS)
        await pro_writes(mss, JEAN, PATIENT, "<m1@pro.mssante.test>")
        async with patient_client(mss, PATIENT_INS) as (client, csrf):
            listing = await client.get("/espace/messages")
            forged = await client.post(
                "/espace/messages/nouveau",
                data={"csrf": csrf, "destinataire": JEAN, "objet": "Q", "texte": "Docteur ?"},
            )
        assert "/espace/messages/nouveau" not in listing.text
        assert forged.status_code == 403
        assert "ne peut que répondre" in html.unescape(forged.text)
        assert await imap_inbox(mss, JEAN) == []


async def test_a_representative_reads_the_represented_patients_messages(clinic: Running) -> None:
    """OTHER_INS, a patient of the clinic, is PATIENT_INS's legal representative."""
    await pro_writes(clinic, JEAN, PATIENT, "<m1@pro.mssante.test>", body="Pour votre enfant.")
    async with representative_client(clinic, OTHER_INS, PATIENT_INS, "protected_adult") as (
        client,
        _,
    ):
        listing = await client.get("/espace/messages")
        [conversation] = conversation_ids(listing.text)
        thread = await client.get(f"/espace/messages/{conversation}")
    assert thread.status_code == 200 and "Pour votre enfant." in thread.text


async def test_a_received_attachment_is_filed_into_the_patients_documents(
    clinic: Running,
) -> None:
    files = [
        ("bilan sanguin.pdf", "application/pdf", PDF_BYTES),
        ("photo.png", "image/png", PNG_BYTES),
    ]
    raw = multipart(JEAN, PATIENT, "<d1@pro.mssante.test>", "<p>Votre bilan</p>", files)
    assert (await clinic.submit(JEAN, raw, [PATIENT])).code == 250
    async with patient_client(clinic, PATIENT_INS) as (client, csrf):
        [conversation] = conversation_ids((await client.get("/espace/messages")).text)
        page = (await client.get(f"/espace/messages/{conversation}")).text
        [file_id] = set(re.findall(r'action="/espace/pieces/([\d.]+)/documents"', page))
        filed = await client.post(f"/espace/pieces/{file_id}/documents", data={"csrf": csrf})
        assert filed.status_code == 303, filed.text
        after = await client.get(filed.headers["location"])
        documents = await client.get("/espace/documents")
        png = f"{file_id.split('.')[0]}.{int(file_id.split('.')[1]) + 1}"
        forged = await client.post(f"/espace/pieces/{png}/documents", data={"csrf": csrf})
    assert "ajoutée à vos documents" in html.unescape(after.text)
    assert "bilan sanguin" in html.unescape(documents.text)
    assert forged.status_code == 415 and "PDF, texte, RTF, JPEG ou TIFF" in html.unescape(
        forged.text
    )


async def test_a_professional_is_named_by_the_annuaire_with_their_profession(
    clinic: Running,
) -> None:
    import_files(clinic.store.db, [MSS_FILE, PS56])
    listed = "jean.dupont@medecin.mssante.fr"
    found = await clinic.store.read(
        lambda c: people(c, [listed, JEAN, "x@pro.mssante.test"], PATIENT_INS)
    )
    assert found[listed].profession == "Médecin" and "Dupont" in found[listed].name.title()
    assert found[listed].national_id == "810003456789"
    assert found[JEAN].name == "Jean Dupont"
    assert found["x@pro.mssante.test"].name == "Professionnel de santé"


async def test_encoded_subjects_are_shown_decoded_and_an_encoded_fin_ends_the_exchange(
    clinic: Running,
) -> None:
    await pro_writes(clinic, JEAN, PATIENT, "<e1@pro.mssante.test>",
                     subject="=?utf-8?q?R=C3=A9sultats_d=27analyses?=")  # fmt: skip
    async with patient_client(clinic, PATIENT_INS) as (client, csrf):
        listing = await client.get("/espace/messages")
        [conversation] = conversation_ids(listing.text)
        assert "Résultats d'analyses" in html.unescape(listing.text)
        sent = await client.post(f"/espace/messages/{conversation}/repondre",
                                 data={"csrf": csrf, "texte": "Merci"})  # fmt: skip
        assert sent.status_code == 303
        [answer] = await imap_inbox(clinic, JEAN)
        assert answer["Subject"] == "Re: Résultats d'analyses"
        fin = "=?utf-8?q?=5BFIN=5D?="
        await pro_writes(clinic, JEAN, PATIENT, "<e2@pro.mssante.test>", subject=fin,
                         headers={"In-Reply-To": "<e1@pro.mssante.test>"})  # fmt: skip
        thread = await client.get(f"/espace/messages/{conversation}")
    assert "a mis fin à vos échanges" in html.unescape(thread.text)


async def test_the_conversations_come_by_pages_of_fifty(clinic: Running) -> None:
    def open_many(tx: Tx) -> None:
        for n in range(55):
            open_conversation(tx, patient_ins=PATIENT_INS, professional=JEAN, subject=f"n°{n}")

    await clinic.store.write(open_many)
    async with patient_client(clinic, PATIENT_INS) as (client, _):
        first = await client.get("/espace/messages")
        second = await client.get("/espace/messages?page=2")
        beyond = await client.get("/espace/messages?page=9")
        bad = await client.get("/espace/messages?page=-1")
    assert len(conversation_ids(first.text)) == 50 and "page=2" in first.text
    assert len(conversation_ids(second.text)) == 5 and "Page 2 sur 2" in second.text
    assert conversation_ids(beyond.text) == [] and bad.status_code == 400


async def test_a_long_conversation_shows_its_last_twenty_messages_and_the_rest_on_demand(
    clinic: Running,
) -> None:
    box = await clinic.store.read(lambda c: patient_boxes(c, PATIENT))
    assert box is not None
    conversation = await clinic.store.write(
        lambda tx: open_conversation(
            tx, patient_ins=PATIENT_INS, professional=JEAN, subject="Suivi"
        )
    )
    for n in range(23):
        msgid = f"<long{n}@pro.mssante.test>"

        def record(tx: Tx, _: object, msgid: str = msgid) -> None:
            record_message(tx, conversation, message_id=msgid, sender=JEAN, from_patient=False)

        raw = message(JEAN, PATIENT, f"Point n°{n}", message_id=msgid)
        await clinic.store.deliver(raw, [Target(box.inbox)], internal_date=1_800_000_000 + n,
                                   also=record)  # fmt: skip
    async with patient_client(clinic, PATIENT_INS) as (client, _):
        last = await client.get(f"/espace/messages/{conversation}")
        await written(clinic)
        unread_after = await flags_of(clinic, PATIENT)
        everything = await client.get(f"/espace/messages/{conversation}?tout=1")
    assert last.text.count("<article") == 20 and "Point n°3<" in last.text
    assert "Point n°2<" not in last.text and "Afficher les 3 messages précédents" in last.text
    assert [bool(f & SystemFlag.SEEN) for f in unread_after] == [False] * 3 + [True] * 20
    assert everything.text.count("<article") == 23


async def written(mss: Running) -> int:
    """Wait for the writes a page left to run after it (`SpaceDeps.in_background`)."""
    background = mss.app.space.app.state.deps.background
    pending = len(background)
    await asyncio.gather(*background)
    return pending
