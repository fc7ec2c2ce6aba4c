"""A document invisible to the patient (INVISIBLE_PATIENT, DOMAIN.md §5) is invisible to
them everywhere (issue 14), through the DMP API as the patient: their documents and
counts, their traces (who accessed the record is told, never that document: neither its
deposit nor its name in a consultation, nor a count of what professionals found), and
any action on it answers exactly as an id that does not exist (status and body: no
existence oracle). Professionals, and the médecins traitants
DMP reading the traces, still see it all; once revealed, it is the patient's like any.
(The patient space's pages: tests/test_space_record.py.)"""

from __future__ import annotations

import httpx

from mss.store.outbox import list_items

from .harness import Running
from .test_dmp_api import DUPONT, INS, LEVEQUE, dmp_api, document, patient, pro

__all__ = ["dmp_api"]

NOWHERE = 987654321
INVISIBLE = ["N", "INVISIBLE_PATIENT"]


async def _deposit(web: httpx.AsyncClient, *docs: dict[str, object]) -> list[int]:
    done = await web.post(f"/api/dmp/patients/{INS}/documents", json={"documents": list(docs)},
                          headers=pro(DUPONT))  # fmt: skip
    assert done.status_code == 201, done.text
    return [d["id"] for d in done.json()["deposited"]]


async def _looked_at_by_professionals(web: httpx.AsyncClient, secret: int) -> None:
    """The author reads the invisible document; another professional finds it, then
    opens it (read or refused by the matrix: traced either way)."""
    url = f"/api/dmp/patients/{INS}/documents"
    await web.post(f"/api/dmp/patients/{INS}/authorization", json={}, headers=pro(DUPONT))
    assert (await web.get(f"{url}/{secret}", headers=pro(DUPONT))).status_code == 200
    await web.post(f"/api/dmp/patients/{INS}/authorization", json={}, headers=pro(LEVEQUE))
    found = await web.get(url, headers=pro(LEVEQUE))
    assert secret in [d["id"] for d in found.json()["documents"]]  # professionals see it
    await web.get(f"{url}/{secret}", headers=pro(LEVEQUE))


async def _my_traces(web: httpx.AsyncClient) -> list[dict[str, object]]:
    answer = await web.get("/api/dmp/me/traces", auth=patient())
    assert answer.status_code == 200, answer.text
    traces: list[dict[str, object]] = answer.json()["traces"]
    return traces


async def test_invisible_document_absent_from_patient_traces(
    dmp_api: tuple[Running, httpx.AsyncClient],
) -> None:
    _mss, web = dmp_api
    [seen, secret] = await _deposit(web, document(1), document(2, confidentiality=INVISIBLE))
    await _looked_at_by_professionals(web, secret)
    traces = await _my_traces(web)
    assert secret not in [t["document_id"] for t in traces]
    assert seen in [t["document_id"] for t in traces if t["action"] == "deposit"]
    searches = [t for t in traces if t["actor"] == LEVEQUE and t["action"] == "consult"]
    assert searches and all(t["detail"] is None for t in searches)  # no count of what was found
    # who accessed the record is still told: the author's reading, as one of the record
    assert {"actor": DUPONT, "action": "consult", "document_id": None, "detail": None} in [
        {k: t[k] for k in ("actor", "action", "document_id", "detail")} for t in traces
    ]
    # a médecin traitant DMP reads every trace, the invisible document's included
    assert (await web.put(f"/api/dmp/me/treating/{DUPONT}", auth=patient())).status_code == 204
    everything = await web.get(f"/api/dmp/patients/{INS}/traces", headers=pro(DUPONT))
    assert secret in [t["document_id"] for t in everything.json()["traces"]]


async def test_unmask_invisible_same_answer_as_nonexistent(
    dmp_api: tuple[Running, httpx.AsyncClient],
) -> None:
    _mss, web = dmp_api
    [secret] = await _deposit(web, document(1, confidentiality=[*INVISIBLE, "MASQUE_PS"]))
    for action in ("mask", "unmask", "reveal", "delete"):
        invisible = await web.post(f"/api/dmp/me/documents/{secret}/{action}", auth=patient())
        missing = await web.post(f"/api/dmp/me/documents/{NOWHERE}/{action}", auth=patient())
        assert (invisible.status_code, invisible.content, invisible.headers["content-type"]) == (
            missing.status_code, missing.content, missing.headers["content-type"])  # fmt: skip
        assert invisible.status_code in (400, 404), action
    assert (await web.post(f"/api/dmp/me/documents/{NOWHERE}/mask", auth=patient())).json() == {
        "error": "DMPDocumentNotFound",
        "detail": "document inconnu dans ce DMP (no such document in this DMP)",
    }
    # nothing changed, nothing traced: it is still masked from professionals
    await web.post(f"/api/dmp/patients/{INS}/authorization", json={}, headers=pro(LEVEQUE))
    found = await web.get(f"/api/dmp/patients/{INS}/documents", headers=pro(LEVEQUE))
    assert found.json()["documents"] == []
    assert secret not in [t["document_id"] for t in await _my_traces(web)]


async def test_invisible_document_absent_from_patient_documents_and_counts(
    dmp_api: tuple[Running, httpx.AsyncClient],
) -> None:
    _mss, web = dmp_api
    [seen, _secret] = await _deposit(web, document(1), document(2, confidentiality=INVISIBLE))
    mine = await web.get("/api/dmp/me/documents", auth=patient())
    assert [d["id"] for d in mine.json()["documents"]] == [seen]
    [looked] = [t for t in await _my_traces(web) if t["actor"] == INS and t["action"] == "consult"]
    assert looked["detail"] == {"found": 1}


async def test_a_version_invisible_to_the_patient_leaves_the_one_they_saw(
    dmp_api: tuple[Running, httpx.AsyncClient],
) -> None:
    """A new version marked invisible does not make the one the patient saw vanish (its
    disappearance would tell), and is never named as its successor; no notice is sent
    for it until it is revealed."""
    mss, web = dmp_api
    [first] = await _deposit(web, document(1))
    newer = document(2, confidentiality=INVISIBLE, replaces=document(1)["unique_id"])
    [second] = await _deposit(web, newer)
    [shown] = (await web.get("/api/dmp/me/documents", auth=patient())).json()["documents"]
    assert shown["id"] == first and shown["superseded_by"] is None
    assert await _new_document_notices(mss) == [first]  # none for the invisible version
    assert second not in [t["document_id"] for t in await _my_traces(web)]
    await web.post(f"/api/dmp/patients/{INS}/authorization", json={}, headers=pro(DUPONT))
    revealed = await web.post(f"/api/dmp/patients/{INS}/documents/{second}/reveal",
                              headers=pro(DUPONT))  # fmt: skip
    assert revealed.status_code == 204, revealed.text
    [now] = (await web.get("/api/dmp/me/documents", auth=patient())).json()["documents"]
    assert now["id"] == second  # revealed: the patient's like any, with its traces
    assert second in [t["document_id"] for t in await _my_traces(web)]
    assert await _new_document_notices(mss) == [first, second]


async def _new_document_notices(mss: Running) -> list[int]:
    """The documents a `new_document` notice was queued for, in order."""
    rows = await mss.store.read(lambda c: list_items(c, kinds=["notification"]))
    return [r.payload["document_id"] for r in rows if r.payload["event"] == "new_document"]
