"""The DMP's HTTPS API: professionals with bearer tokens, the patient with a password.

A professional deposits and finds documents under the rules; another is refused
until authorised; the patient sees, masks and closes; every refusal is the
DMP error name with its HTTP status.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mss.security.tokens import jwks_of
from mss.testing.xdmgen import INS, cda

from .harness import PASSWORD, Running, running
from .test_smtp_oauth import ISSUER, KEY, token

DUPONT = "810003456789"  # médecin
LEVEQUE = "0131234567"  # infirmière (ADELI)
PATIENT = f"{INS}@patient.mssante.fr"


@pytest.fixture
async def dmp_api(instance: Path) -> AsyncIterator[tuple[Running, httpx.AsyncClient]]:
    (instance / "jwks.json").write_text(jwks_of({"psc-1": KEY.public_key()}))
    overrides = {"oauth": {"issuer": ISSUER, "jwks_file": "jwks.json"}}
    async with running(instance, overrides=overrides) as mss:
        await mss.add_patient(INS, password=PASSWORD, family="DE VINCI", given="RUTH",
                              birth_date="1979-03-17")  # fmt: skip
        from mss.annuaire.importer import import_files

        from .test_annuaire import MSS_FILE

        import_files(mss.store.db, [MSS_FILE])  # professions come from the annuaire
        async with httpx.AsyncClient(
            base_url=f"https://localhost:{mss.ports['https']}", verify=mss.client_tls()
        ) as client:
            yield mss, client


def pro(national_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(preferred_username=national_id)}"}


def patient(password: str = PASSWORD) -> httpx.BasicAuth:
    return httpx.BasicAuth(PATIENT, password)


def document(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "unique_id": f"1.2.250.1.999.9.{n}", "content_base64": base64.b64encode(cda()).decode(),
        "mime_type": "text/xml", "title": f"CR {n}", "class_code": "10", "type_code": "11488-4",
        **extra,
    }  # fmt: skip


async def test_a_professional_deposits_and_another_finds_it_once_authorised(
    dmp_api: tuple[Running, httpx.AsyncClient],
) -> None:
    _mss, web = dmp_api
    url = f"/api/dmp/patients/{INS}/documents"
    created = await web.post(url, json={"documents": [document(1)]}, headers=pro(DUPONT))
    assert created.status_code == 201, created.text
    [doc] = created.json()["deposited"]
    refused = await web.get(url, headers=pro(LEVEQUE))
    assert refused.status_code == 403 and refused.json()["error"] == "DMPAuthorizationNotFound"
    consent = await web.post(f"/api/dmp/patients/{INS}/authorization",
                             json={"basis": "presumed"}, headers=pro(LEVEQUE))  # fmt: skip
    assert consent.status_code == 200
    found = await web.get(url, params={"class": "10"}, headers=pro(LEVEQUE))
    assert [d["unique_id"] for d in found.json()["documents"]] == ["1.2.250.1.999.9.1"]
    body = await web.get(f"{url}/{doc['id']}", headers=pro(LEVEQUE))
    assert body.status_code == 200 and body.content == cda()
    meta = json.loads(base64.b64decode(body.headers["X-DMP-Document"]))
    assert meta["author"]["national_id"] == DUPONT and meta["author"]["profession"] == "10"


async def test_requests_without_valid_credentials_are_401(
    dmp_api: tuple[Running, httpx.AsyncClient],
) -> None:
    _mss, web = dmp_api
    none = await web.get(f"/api/dmp/patients/{INS}/documents")
    assert none.status_code == 401 and none.headers["www-authenticate"].startswith("Bearer")
    bad = await web.get("/api/dmp/me/documents", auth=patient("mauvais-mot-de-passe"))
    assert bad.status_code == 401
    # French with the English meaning (issue 14: the 401s were English only)
    assert none.json()["detail"].startswith("un jeton Pro Santé Connect ou un certificat")
    assert bad.json()["detail"] == "adresse ou mot de passe incorrect (wrong address or password)"


async def test_the_patient_lists_masks_blocks_and_closes(
    dmp_api: tuple[Running, httpx.AsyncClient],
) -> None:
    _mss, web = dmp_api
    url = f"/api/dmp/patients/{INS}/documents"
    docs = [document(1), document(2, confidentiality=["N", "INVISIBLE_PATIENT"])]
    created = await web.post(url, json={"documents": docs}, headers=pro(DUPONT))
    first = created.json()["deposited"][0]["id"]
    mine = await web.get("/api/dmp/me/documents", auth=patient())
    assert [d["unique_id"] for d in mine.json()["documents"]] == ["1.2.250.1.999.9.1"]
    assert (
        await web.post(f"/api/dmp/me/documents/{first}/mask", auth=patient())
    ).status_code == 204
    await web.post(f"/api/dmp/patients/{INS}/authorization", json={}, headers=pro(LEVEQUE))
    hidden = await web.get(url, headers=pro(LEVEQUE))
    assert [d["unique_id"] for d in hidden.json()["documents"]] == ["1.2.250.1.999.9.2"]
    assert (await web.put(f"/api/dmp/me/blocked/{LEVEQUE}", auth=patient())).status_code == 204
    blocked = await web.get(url, headers=pro(LEVEQUE))
    assert blocked.status_code == 403 and blocked.json()["error"] == "DMPAccessForbidden"
    assert (
        await web.patch("/api/dmp/me", json={"closed": True}, auth=patient())
    ).status_code == 204
    closed = await web.post(url, json={"documents": [document(3)]}, headers=pro(DUPONT))
    assert closed.status_code == 409 and closed.json()["error"] == "DMPClosed"
    traces = (await web.get("/api/dmp/me/traces", auth=patient())).json()["traces"]
    assert {"deposit", "mask", "block", "settings", "refused"} <= {t["action"] for t in traces}


async def test_unknown_patient_and_bad_documents(
    dmp_api: tuple[Running, httpx.AsyncClient],
) -> None:
    _mss, web = dmp_api
    unknown = await web.post("/api/dmp/patients/188102B17295165/documents",
                             json={"documents": [document(1)]}, headers=pro(DUPONT))  # fmt: skip
    assert unknown.status_code == 404 and unknown.json()["error"] == "DMPPatientNotFound"
    broken = await web.post(f"/api/dmp/patients/{INS}/documents",
                            json={"documents": [{"unique_id": "x", "content_base64": "!!"}]},
                            headers=pro(DUPONT))  # fmt: skip
    assert broken.status_code == 422 and "bad document" in broken.json()["detail"]


async def test_a_professional_certificate_is_enough_to_consult(
    dmp_api: tuple[Running, httpx.AsyncClient],
) -> None:
    """No bearer token: the verified client certificate (CN = national id) names the
    professional, as IGC-Santé cards and server certificates do."""
    mss, web = dmp_api
    await web.post(f"/api/dmp/patients/{INS}/documents", json={"documents": [document(1)]},
                   headers=pro(DUPONT))  # fmt: skip
    cert, key = mss.pki.issue_professional(LEVEQUE, "LÉVÊQUE", "Hélène")
    async with httpx.AsyncClient(
        base_url=f"https://localhost:{mss.ports['https']}", verify=mss.client_tls(cert, key)
    ) as card:
        refused = await card.get(f"/api/dmp/patients/{INS}/documents")
        assert refused.json()["error"] == "DMPAuthorizationNotFound"  # known, not yet allowed
        await card.post(f"/api/dmp/patients/{INS}/authorization", json={"basis": "explicit"})
        found = await card.get(f"/api/dmp/patients/{INS}/documents")
        assert [d["unique_id"] for d in found.json()["documents"]] == ["1.2.250.1.999.9.1"]
    traces = (await web.get("/api/dmp/me/traces", auth=patient())).json()["traces"]
    assert any(t["actor"] == LEVEQUE and t["action"] == "consult" for t in traces)


async def test_igc_sante_client_certificates_a_card_revoked_while_serving_is_refused(
    dmp_api: tuple[Running, httpx.AsyncClient],
) -> None:
    """A new CRL reaches HTTPS as it reaches the mail doors (every minute, without a
    restart): a revoked card opens no new connection to the DMP API (one already open
    ends with its keep-alive, 5 s idle, as a mail session ends with its connection)."""
    mss, web = dmp_api
    documents = f"/api/dmp/patients/{INS}/documents"
    url = f"https://localhost:{mss.ports['https']}"
    cards = {}
    for national_id, family, given in ((LEVEQUE, "LÉVÊQUE", "Hélène"), (DUPONT, "DUPONT", "Jean")):
        await web.post(f"/api/dmp/patients/{INS}/authorization", json={},
                       headers=pro(national_id))  # fmt: skip
        cards[national_id] = mss.pki.issue_professional(
            national_id, family, given, filename=f"card-{national_id}"
        )
        async with httpx.AsyncClient(base_url=url, verify=mss.client_tls(*cards[national_id])) as c:
            assert (await c.get(documents)).status_code == 200
    mss.pki.revoke(cards[LEVEQUE][0])
    assert mss.app.mail is not None
    assert await mss.app.mail.refresh_tls()  # what the server does every minute
    async with httpx.AsyncClient(base_url=url, verify=mss.client_tls(*cards[LEVEQUE])) as c:
        with pytest.raises(httpx.TransportError):  # the server ends the handshake
            await c.get(documents)
    # the same card before and after: the CRL alone changed, and it names that card only
    # (the other is still served, on a new connection)
    async with httpx.AsyncClient(base_url=url, verify=mss.client_tls(*cards[DUPONT])) as c:
        assert (await c.get(documents)).status_code == 200


async def test_a_document_mailed_to_the_patient_is_found_through_the_api(
    dmp_api: tuple[Running, httpx.AsyncClient],
) -> None:
    """End to end: SMTP with an IHE_XDM.ZIP → the DMP → another professional's API search."""
    import asyncio

    from mss.testing.xdmgen import XDM, XDMDocument

    from .test_dmp_mail import PRO, document_mail

    mss, web = dmp_api
    await mss.add_pro(PRO, national_id=DUPONT, name="Jean DUPONT")
    await mss.submit(PRO, document_mail(XDM([XDMDocument(cda())]).build(), mdn=False),
                     [PATIENT])  # fmt: skip
    await web.post(f"/api/dmp/patients/{INS}/authorization", json={}, headers=pro(LEVEQUE))
    for _ in range(100):
        found = (await web.get(f"/api/dmp/patients/{INS}/documents", headers=pro(LEVEQUE))).json()
        if found["documents"]:
            break
        await asyncio.sleep(0.05)
    [document_found] = found["documents"]
    assert document_found["unique_id"] == "1.2.250.1.999.1.1^CR-2026-0001"
    assert document_found["author"]["national_id"] == DUPONT


async def test_a_search_naming_too_many_codes_is_refused(
    dmp_api: tuple[Running, httpx.AsyncClient],
) -> None:
    """Each count of codes is a statement text of its own: 50 at most per criterion."""
    _mss, web = dmp_api
    url = f"/api/dmp/patients/{INS}/documents"
    await web.post(f"/api/dmp/patients/{INS}/authorization", json={}, headers=pro(DUPONT))
    for name in ("class", "type"):
        fifty = await web.get(url, params={name: [f"c{i}" for i in range(50)]}, headers=pro(DUPONT))
        assert fifty.status_code == 200, fifty.text
        more = await web.get(url, params={name: [f"c{i}" for i in range(51)]}, headers=pro(DUPONT))
        assert more.status_code == 422, more.text
