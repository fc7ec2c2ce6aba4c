"""The patient's documents in their space: by category, downloaded, masked from
professionals (who then no longer find them through the DMP API), the patient's own
documents added; what the patient may not see (INVISIBLE_PATIENT, hidden from
representatives, another patient's) answers as a missing id on every route."""

from __future__ import annotations

import datetime as dt
import html
import re
import time

import httpx
import pytest

from mss.space import dates
from mss.store import notify as notes
from mss.store.notify import mask

from .harness import Running
from .space import OTHER_INS, PATIENT_INS, patient_client, representative_client, web
from .space_record import (
    LEVEQUE,
    MINOR_INS,
    PDF,
    authorise,
    deposit,
    document,
    found_by,
    pro,
    record,
)

__all__ = ["record"]
NOWHERE = 987654321


def text(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


async def upload(
    client: httpx.AsyncClient,
    csrf: str,
    title: str,
    category: str,
    content: bytes,
    media_type: str = "application/pdf",
) -> httpx.Response:
    """The form of the documents page, as a browser posts it (the declared type is the
    browser's word: the server sniffs the bytes)."""
    return await client.post(
        "/espace/documents/ajouter",
        data={"csrf": csrf, "titre": title, "categorie": category},
        files={"fichier": ("fichier", content, media_type)},
    )


@pytest.mark.asyncio
async def test_documents_are_listed_by_category_and_downloaded_with_their_type(
    record: Running,
) -> None:
    [cr] = await deposit(record, PATIENT_INS, document(1, "Compte rendu de consultation"))
    [rx] = await deposit(
        record, PATIENT_INS, document(2, "Ordonnance", class_code="42", type_code="57833-6")
    )
    async with patient_client(record, PATIENT_INS) as (client, _):
        listed = await client.get("/espace/documents")
        body = await client.get(f"/espace/documents/{cr}")
    assert listed.status_code == 200
    shown = text(listed.text)
    assert "Comptes rendus" in shown and "Prescriptions" in shown
    assert "Compte rendu de consultation" in shown and "Ordonnance" in shown
    assert f"du {dates.day(dt.datetime.now(dt.UTC))}" in " ".join(shown.split())
    assert listed.headers["cache-control"] == "no-store"
    assert body.status_code == 200 and body.content.startswith(b"<?xml")
    assert body.headers["content-type"].startswith("text/xml")
    assert body.headers["content-disposition"].startswith("attachment;")
    assert body.headers["content-security-policy"].startswith("sandbox")
    assert rx != cr


@pytest.mark.asyncio
async def test_a_masked_document_is_no_longer_found_by_a_professional_through_the_dmp_api(
    record: Running,
) -> None:
    [doc] = await deposit(record, PATIENT_INS, document(1, "Bilan sensible"))
    async with web(record) as api:
        await authorise(api, PATIENT_INS, LEVEQUE)
        assert await found_by(api, PATIENT_INS, LEVEQUE) == ["Bilan sensible"]
        async with patient_client(record, PATIENT_INS) as (client, csrf):
            masked = await client.post(f"/espace/documents/{doc}/masquer", data={"csrf": csrf})
            assert masked.status_code == 303
            assert "masqué aux professionnels" in text((await client.get("/espace/documents")).text)
            assert await found_by(api, PATIENT_INS, LEVEQUE) == []
            shown = await client.post(f"/espace/documents/{doc}/demasquer", data={"csrf": csrf})
            assert shown.status_code == 303
        assert await found_by(api, PATIENT_INS, LEVEQUE) == ["Bilan sensible"]


@pytest.mark.asyncio
async def test_an_invisible_document_answers_as_a_missing_one_on_every_route(
    record: Running,
) -> None:
    invisible = document(2, "Annonce diagnostique", confidentiality=["N", "INVISIBLE_PATIENT"])
    [_seen, secret] = await deposit(record, PATIENT_INS, document(1, "Visible"), invisible)
    async with patient_client(record, PATIENT_INS) as (client, csrf):
        listed = text((await client.get("/espace/documents")).text)
        history = text((await client.get("/espace/historique")).text)
        for doc in (secret, NOWHERE):
            download = await client.get(f"/espace/documents/{doc}")
            mask = await client.post(f"/espace/documents/{doc}/masquer", data={"csrf": csrf})
            unmask = await client.post(f"/espace/documents/{doc}/demasquer", data={"csrf": csrf})
            assert [download.status_code, mask.status_code, unmask.status_code] == [404] * 3
            assert "Cette page n'existe pas." in text(download.text)
    assert "Visible" in listed and "Annonce diagnostique" not in listed
    assert "Visible" in history and "Annonce diagnostique" not in history
    assert history.count("a ajouté le document") == 1  # the invisible one's trace is left out


@pytest.mark.asyncio
async def test_a_representative_does_not_see_documents_hidden_from_representatives(
    record: Running,
) -> None:
    await deposit(
        record,
        MINOR_INS,
        document(1, "Vaccinations"),
        document(
            2,
            "Consultation confidentielle",
            confidentiality=["N", "INVISIBLE_REPRESENTANTS_LEGAUX"],
        ),
    )
    hidden = (
        await deposit(
            record,
            MINOR_INS,
            document(
                3, "Autre confidentiel", confidentiality=["N", "INVISIBLE_REPRESENTANTS_LEGAUX"]
            ),
        )
    )[0]
    async with representative_client(record, OTHER_INS, MINOR_INS) as (
        client,
        csrf,
    ):
        listed = text((await client.get("/espace/documents")).text)
        history = text((await client.get("/espace/historique")).text)
        download = await client.get(f"/espace/documents/{hidden}")
        mask = await client.post(f"/espace/documents/{hidden}/masquer", data={"csrf": csrf})
    assert "Vaccinations" in listed and "confidentiel" not in listed.lower()
    assert "confidentiel" not in history.lower()
    assert download.status_code == 404 and mask.status_code == 404


@pytest.mark.asyncio
async def test_another_patients_document_ids_are_404_on_every_route(record: Running) -> None:
    [theirs] = await deposit(record, OTHER_INS, document(1, "Pas à vous"))
    async with patient_client(record, PATIENT_INS) as (client, csrf):
        download = await client.get(f"/espace/documents/{theirs}")
        mask = await client.post(f"/espace/documents/{theirs}/masquer", data={"csrf": csrf})
        unmask = await client.post(f"/espace/documents/{theirs}/demasquer", data={"csrf": csrf})
        listed = text((await client.get("/espace/documents")).text)
    assert [download.status_code, mask.status_code, unmask.status_code] == [404, 404, 404]
    assert "Pas à vous" not in listed
    async with web(record) as api:
        await authorise(api, OTHER_INS, LEVEQUE)
        assert await found_by(api, OTHER_INS, LEVEQUE) == ["Pas à vous"]  # not masked


@pytest.mark.asyncio
async def test_the_patient_adds_their_own_pdf_and_a_disguised_file_is_refused(
    record: Running,
) -> None:
    async with patient_client(record, PATIENT_INS) as (client, csrf):
        added = await upload(client, csrf, "Mes directives", "DOCPAT08", PDF)
        disguised = await upload(client, csrf, "Photo", "DOCPAT09", b"MZ\x90\x00\x03", "image/png")
        untitled = await upload(client, csrf, " ", "DOCPAT09", b"bonjour", "text/plain")
        listed = text((await client.get("/espace/documents")).text)
        history = text((await client.get("/espace/historique")).text)
    assert added.status_code == 303
    assert "Mes documents" in listed and "Mes directives" in listed
    assert disguised.status_code == 400 and "PDF, JPEG, PNG, TIFF, RTF ou texte" in text(
        disguised.text
    )
    assert untitled.status_code == 400 and "titre" in text(untitled.text)
    assert "Vous avez ajouté le document « Mes directives »" in history


@pytest.mark.asyncio
async def test_a_file_above_the_limit_is_refused(record: Running) -> None:
    big = PDF + b"0" * (5 * 1024 * 1024)
    async with patient_client(record, PATIENT_INS) as (client, csrf):
        refused = await upload(client, csrf, "Gros", "DOCPAT09", big)
    assert refused.status_code == 413 and "dépasse 5 Mo" in text(refused.text)


@pytest.mark.asyncio
async def test_a_forged_mask_without_the_csrf_token_is_refused(record: Running) -> None:
    [doc] = await deposit(record, PATIENT_INS, document(1))
    async with patient_client(record, PATIENT_INS) as (client, _):
        forged = await client.post(f"/espace/documents/{doc}/masquer", data={"csrf": "x"})
    assert forged.status_code == 403 and "CSRF" in forged.text


@pytest.mark.asyncio
async def test_the_history_says_who_did_what_and_when_in_french(record: Running) -> None:
    [doc] = await deposit(record, PATIENT_INS, document(1, "Compte rendu"))
    async with web(record) as api:
        await authorise(api, PATIENT_INS, LEVEQUE)
        read = await api.get(
            f"/api/dmp/patients/{PATIENT_INS}/documents/{doc}", headers=pro(LEVEQUE)
        )
        assert read.status_code == 200
    at = int(time.time())
    notice = {
        "ins": PATIENT_INS,
        "event_id": 1,
        "notice_id": "n-1",
        "event": "new_document",
        "category": "documents",
        "channel": "email",
        "destination": mask("jean@example.fr"),
        "status": "sent",
        "detail": "",
        "created": at,
        "at": at,
    }
    await record.store.write(lambda tx: notes.log(tx, [notice]))
    async with patient_client(record, PATIENT_INS) as (client, _):
        shown = text((await client.get("/espace/historique")).text)
    shown = " ".join(shown.split())
    day = re.escape(dates.when(dt.datetime.now(dt.UTC)).rsplit(" à ", 1)[0])  # le 6 décembre…
    assert re.search(
        r"Dr Jean Dupont \(Médecin\) a ajouté le document « Compte rendu » à votre "
        rf"dossier {day} à \d+ h \d\d\.",
        shown,
    ), shown
    assert "Hélène Lévêque (Infirmier) a consulté votre document « Compte rendu »" in shown
    assert "a enregistré votre autorisation d'accès" in shown
    assert "Notification « nouveau document » par e-mail à j***@example.fr" in shown
    assert "jean@example.fr" not in shown


def test_dates_are_told_in_paris_time() -> None:
    winter = dt.datetime(2026, 12, 6, 9, 12, tzinfo=dt.UTC)
    summer = dt.datetime(2026, 7, 1, 8, 5, tzinfo=dt.UTC)
    assert dates.when(winter) == "le 6 décembre 2026 à 10 h 12"
    assert dates.when(summer) == "le 1er juillet 2026 à 10 h 05"


@pytest.mark.asyncio
async def test_the_history_comes_by_pages_of_fifty_newest_first(record: Running) -> None:
    at = int(time.time()) - 1000
    rows = [
        {"ins": PATIENT_INS, "event_id": n, "notice_id": f"n-{n}", "event": "new_message",
         "category": "messages", "channel": "sms", "destination": mask("+33612345678"),
         "status": "sent", "detail": "", "created": at + n * 60, "at": at + n * 60}
        for n in range(60)
    ]  # fmt: skip
    await record.store.write(lambda tx: notes.log(tx, rows))
    async with patient_client(record, PATIENT_INS) as (client, _):
        first = (await client.get("/espace/historique")).text
        second = (await client.get("/espace/historique", params={"numero": 2})).text
    assert first.count('<li class="entry"') == 50 and "numero=2" in first
    assert 10 <= second.count('<li class="entry"') <= 12 and "numero=1" in second
    assert "par SMS à +336******78" in text(first)
    assert first.index(dates.when(dt.datetime.fromtimestamp(at + 59 * 60, dt.UTC))) < first.index(
        dates.when(dt.datetime.fromtimestamp(at + 20 * 60, dt.UTC))
    )


HUGE = "9" * 25  # beyond a 64-bit integer


async def test_document_ids_beyond_64_bits_or_not_numbers_are_404_not_500(
    record: Running,
) -> None:
    async with patient_client(record, PATIENT_INS) as (client, csrf):
        answers = {
            f"GET {doc}": (await client.get(f"/espace/documents/{doc}")).status_code
            for doc in (HUGE, str(2**63), "-1", "x")
        }
        for action in ("masquer", "demasquer"):
            got = await client.post(f"/espace/documents/{HUGE}/{action}", data={"csrf": csrf})
            answers[f"POST {action}"] = got.status_code
    assert set(answers.values()) == {404}, answers


async def test_a_declared_type_that_is_no_header_value_is_never_sent_back(
    record: Running,
) -> None:
    """The depositor's MIME type (API, XDM METADATA) becomes the download's
    Content-Type: a non-Latin-1 parameter or a line break must not break it."""
    docs = await deposit(
        record, PATIENT_INS,
        document(1, "Bilan", mime_type="text/plain; x=€"),
        document(2, "Bilan 2", mime_type="text/plain\r\nSet-Cookie: a=b"),
        document(3, "Bilan 3", mime_type="Text/Plain; charset=utf-8"),
    )  # fmt: skip
    async with patient_client(record, PATIENT_INS) as (client, _csrf):
        got = [await client.get(f"/espace/documents/{doc}") for doc in docs]
    assert [r.status_code for r in got] == [200, 200, 200]
    kinds = [r.headers["content-type"].split(";")[0] for r in got]  # (Starlette adds a charset)
    assert kinds == ["text/plain", "application/octet-stream", "text/plain"]
    assert all("set-cookie" not in r.headers for r in got)


async def test_a_representative_is_not_told_of_a_document_hidden_from_representatives(
    record: Running,
) -> None:
    """The history lists the notices sent to the patient: a notice « nouveau document »
    of a document hidden from legal representatives is not shown to them (the history
    is no oracle); the notices of the documents they see are."""
    from .notifying import until

    [hidden, seen] = await deposit(
        record, MINOR_INS,
        document(1, "Consultation confidentielle",
                 confidentiality=["N", "INVISIBLE_REPRESENTANTS_LEGAUX"]),
        document(2, "Vaccins"),
    )  # fmt: skip

    async def logged() -> bool:
        found = await record.store.read(lambda c: notes.log_entries(c, ins=MINOR_INS))
        return {e.document_id for e in found if e.event == "new_document"} == {hidden, seen}

    await until(logged)
    entries = await record.store.read(lambda c: notes.log_entries(c, ins=MINOR_INS))
    async with representative_client(record, OTHER_INS, MINOR_INS) as (client, _csrf):
        history = html.unescape((await client.get("/espace/historique")).text)
        listed = html.unescape((await client.get("/espace/documents")).text)
    assert "Consultation confidentielle" not in listed
    told = [e for e in entries if e.event == "new_document" and e.document_id == seen]
    assert history.count("nouveau document") == len(told) > 0


async def test_what_a_representative_does_is_traced_as_the_representatives(
    record: Running,
) -> None:
    """A document a representative adds, the document they mask, the professional they
    block, the oppositions and notification preferences they set: each is traced with
    the representative's login, never as the patient's own act (« Vous avez … »)."""
    [doc] = await deposit(record, MINOR_INS, document(1, "Vaccins"))
    async with representative_client(record, OTHER_INS, MINOR_INS) as (client, csrf):
        added = await upload(client, csrf, "Carnet de vaccination", "DOCPAT06", PDF)
        posts = [
            (f"/espace/documents/{doc}/masquer", {}),
            ("/espace/parametres/professionnels/bloquer", {"professionnel": LEVEQUE}),
            ("/espace/parametres/oppositions", {"bris_de_glace": "1"}),
            ("/espace/parametres/notifications", {"choix": "messages:email"}),
        ]
        done = [(await client.post(p, data={"csrf": csrf, **d})).status_code for p, d in posts]
    assert added.status_code == 303 and done == [303] * 4, (added.text, done)
    async with patient_client(record, MINOR_INS) as (client, _csrf):
        history = " ".join(text((await client.get("/espace/historique")).text).split())
    assert "Vous avez" not in history, history
    for did in ("ajouté le document", "masqué le document", "bloqué l'accès",
                "modifié vos paramètres", "modifié vos préférences de notification"):  # fmt: skip
        assert f"Votre représentant légal ({OTHER_INS}@patient.mssante.fr) a {did}" in history, (
            did,
            history,
        )


async def test_the_history_names_a_professional_of_this_operator_absent_from_the_annuaire(
    mss: Running,
) -> None:
    from mss.space.history import professional_name

    await mss.add_pro("jean.dupont@pro.mssante.test", national_id="810009999999",
                      name="Jean DUPONT")  # fmt: skip
    named = await mss.store.read(lambda c: professional_name(c, "810009999999"))
    unknown = await mss.store.read(lambda c: professional_name(c, "810001111111"))
    assert named == "Jean DUPONT"
    assert unknown == "Le professionnel n° 810001111111"
