"""A mail whose XDM holds a document hidden from the legal representatives
(INVISIBLE_REPRESENTANTS_LEGAUX, DOMAIN.md §5: a minor may ask a professional to hide a
document from them) is the minor's alone: the minor reads it in the space, and their
representative finds nothing of it — not the conversation, its messages, attachments,
HTML frame, a reply, nor the export."""

from __future__ import annotations

import io
import re
import zipfile
from email.message import EmailMessage
from email.policy import default

import pytest

from mss.core.mime import leaves, parse_message
from mss.dmp.mail import xdm_summary
from mss.store.space_mail import HIDDEN_FROM_REPRESENTATIVES
from mss.testing.xdmgen import INS_OID, XDM, XDMDocument, cda

from .harness import Running
from .space import PATIENT_INS, patient_client, representative_client
from .space_mail import JEAN, add_people, pro_writes
from .space_record import MINOR_INS

MINOR = f"{MINOR_INS}@patient.mssante.fr"
HIDDEN = "INVISIBLE_REPRESENTANTS_LEGAUX"


@pytest.fixture
async def clinic(mss: Running) -> Running:
    await add_people(mss, PATIENT_INS)
    await mss.add_patient(MINOR_INS, birth_date="2015-03-01", sex="M")
    return mss


def _xdm_mail(msgid: str, confidentiality: tuple[str, ...]) -> bytes:
    who = f"{MINOR_INS}^^^&{INS_OID}&ISO^NH"
    document = XDMDocument(
        cda(), patient=who, title="Consultation confidentielle", confidentiality=confidentiality
    )
    xdm = XDM([document], submission_patient=who).build()
    mail = EmailMessage(policy=default)
    mail["From"], mail["To"], mail["Subject"] = JEAN, MINOR, "Votre consultation"
    mail["Message-ID"] = msgid
    mail.set_content("Bonjour, voici le compte rendu de votre consultation.")
    mail.add_alternative("<p>Bonjour, voici le <b>compte rendu</b>.</p>", subtype="html")
    mail.add_attachment(xdm, maintype="application", subtype="zip", filename="IHE_XDM.ZIP")
    return mail.as_bytes()


def _links(page: str) -> tuple[list[str], list[str], list[str]]:
    return (
        re.findall(r'href="/espace/messages/(\d+)"', page),
        re.findall(r'href="(/espace/pieces/[\d.]+)"', page),
        re.findall(r'src="(/espace/messages/\d+/cadre/\d+)"', page),
    )


def test_an_xdm_hidden_from_representatives_is_not_one_invisible_to_the_patient() -> None:
    raw = _xdm_mail("<x@pro.mssante.test>", ("N", HIDDEN))
    found = xdm_summary(raw, leaves(parse_message(raw).body))
    assert found.hidden_from_representatives and not found.invisible
    plain = _xdm_mail("<y@pro.mssante.test>", ("N",))
    assert not xdm_summary(plain, leaves(parse_message(plain).body)).hidden_from_representatives


async def test_a_document_hidden_from_representatives_does_not_reach_them_by_mail(
    clinic: Running,
) -> None:
    assert (await clinic.submit(JEAN, _xdm_mail("<c@pro.mssante.test>", ("N", HIDDEN)),
                                [MINOR])).code == 250  # fmt: skip
    async with patient_client(clinic, MINOR_INS) as (client, _csrf):  # the minor reads it
        [conversation] = _links((await client.get("/espace/messages")).text)[0]
        page = (await client.get(f"/espace/messages/{conversation}")).text
        _, [piece, *_], [frame] = _links(page)
        assert (await client.get(piece)).status_code == 200
    async with representative_client(clinic, PATIENT_INS, MINOR_INS) as (client, csrf):
        listing = (await client.get("/espace/messages")).text
        answers = [
            await client.get(f"/espace/messages/{conversation}"),
            await client.get(piece),
            await client.get(f"{piece}/apercu"),
            await client.get(frame),
            await client.post(f"/espace/messages/{conversation}/repondre",
                              data={"csrf": csrf, "texte": "Je suis le parent"}),
            await client.post(f"{piece}/documents", data={"csrf": csrf}),
        ]  # fmt: skip
        export = await client.get("/espace/parametres/export")
    assert _links(listing)[0] == [] and "Votre consultation" not in listing
    assert [a.status_code for a in answers] == [404] * len(answers)
    assert export.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(export.content)).namelist()
    assert not [n for n in names if n.startswith("messages/")], names


async def test_a_representative_still_reads_the_minors_other_messages(clinic: Running) -> None:
    await pro_writes(clinic, JEAN, MINOR, "<vaccin@pro.mssante.test>", subject="Vaccin")
    assert (await clinic.submit(JEAN, _xdm_mail("<c@pro.mssante.test>", ("N", HIDDEN)),
                                [MINOR])).code == 250  # fmt: skip
    async with representative_client(clinic, PATIENT_INS, MINOR_INS) as (client, _csrf):
        listing = (await client.get("/espace/messages")).text
        [conversation] = _links(listing)[0]
        page = (await client.get(f"/espace/messages/{conversation}")).text
        export = await client.get("/espace/parametres/export")
    assert "Vaccin" in listing and "Votre consultation" not in listing
    assert "voici le compte rendu." in page and "IHE_XDM" not in page
    names = zipfile.ZipFile(io.BytesIO(export.content)).namelist()
    assert len([n for n in names if n.startswith("messages/")]) == 1, names


async def test_only_the_minors_copy_is_marked_hidden_from_representatives(
    clinic: Running,
) -> None:
    assert (await clinic.submit(JEAN, _xdm_mail("<c@pro.mssante.test>", ("N", HIDDEN)),
                                [MINOR])).code == 250  # fmt: skip
    assert (await clinic.submit(JEAN, _xdm_mail("<d@pro.mssante.test>", ("N",)),
                                [MINOR])).code == 250  # fmt: skip
    async with patient_client(clinic, MINOR_INS) as (client, _csrf):
        listing = (await client.get("/espace/messages")).text
    assert len(_links(listing)[0]) == 2
    sql = "SELECT keywords FROM message ORDER BY id"
    keywords = await clinic.store.read(lambda c: [row[0] for row in c.exec_driver_sql(sql)])
    assert keywords.count(HIDDEN_FROM_REPRESENTATIVES) == 1, keywords
