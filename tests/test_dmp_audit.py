"""The DMP's traces as FHIR AuditEvent resources (issue 14, "Tools for the editors who
integrate with us"), following the ANS guide "Traçabilité des événements" (TDE 2.0.0,
profile TDEAuditEvent in a searchset Bundle), over httpx with the dev PKI: for those who
may read the traces (the patient, their médecins traitants DMP), never a document
invisible to the patient in what the patient reads."""

from __future__ import annotations

from typing import Any

import httpx

from mss.testing.xdmgen import INS

from .harness import Running
from .test_dmp_api import DUPONT, LEVEQUE, document, patient, pro
from .test_dmp_api import dmp_api as dmp_api  # the fixture

API = tuple[Running, httpx.AsyncClient]
TDE = "https://interop.esante.gouv.fr/ig/fhir/tde/StructureDefinition/"
INS_NIR = "urn:oid:1.2.250.1.213.1.4.8"
IDNPS = "urn:oid:1.2.250.1.71.4.2.1"
RPPS = "https://rpps.esante.gouv.fr"
FHIR_JSON = "application/fhir+json"


def _coding(value: Any) -> None:
    assert isinstance(value, dict) and value["system"] and value["code"], value


def _check_audit_event(event: dict[str, Any]) -> None:
    """The elements FHIR R4 AuditEvent requires, and those TDEAuditEvent adds
    (subtype ..1, period.start 1.., agent ..2, agent.who 1.., source.observer)."""
    assert event["resourceType"] == "AuditEvent" and event["id"]
    assert event["meta"]["profile"] == [TDE + "tde-auditevent"]
    _coding(event["type"])
    assert len(event["subtype"]) == 1
    _coding(event["subtype"][0])
    assert event["action"] in {"C", "R", "U", "D", "E"}
    assert event["outcome"] in {"0", "4", "8", "12"}
    assert event["recorded"].endswith("+00:00") and event["period"]["start"] == event["recorded"]
    assert 1 <= len(event["agent"]) <= 2
    for agent in event["agent"]:
        assert agent["requestor"] in (True, False)
        assert agent["who"]["identifier"]["value"]
    assert event["source"]["observer"]["display"]
    for entity in event.get("entity", []):
        assert entity["what"]["identifier"]["value"]
        _coding(entity["type"])
        _coding(entity["role"])


def _check_bundle(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    assert bundle["meta"]["profile"] == [TDE + "TDEBundleResultatReponseRechercheTraces"]
    assert bundle["total"] == len(bundle["entry"])
    events = []
    for entry in bundle["entry"]:
        assert entry["fullUrl"] == f"urn:uuid:{entry['resource']['id']}"
        assert entry["search"] == {"mode": "match"}
        _check_audit_event(entry["resource"])
        events.append(entry["resource"])
    return events


def _documents(event: dict[str, Any]) -> list[str]:
    role = "3"  # object-role "Report": the document
    return [e["what"]["identifier"]["value"] for e in event.get("entity", [])
            if e["role"]["code"] == role]  # fmt: skip


async def test_dmp_traces_export_as_fhir_audit_events_of_the_ans_guide(dmp_api: API) -> None:
    _mss, web = dmp_api
    url = f"/api/dmp/patients/{INS}/documents"
    created = await web.post(url, json={"documents": [document(1)]}, headers=pro(DUPONT))
    assert created.status_code == 201
    refused = await web.get(url, headers=pro(LEVEQUE))  # no authorisation: traced, refused
    assert refused.status_code == 403
    answer = await web.get("/api/dmp/me/traces", params={"format": "fhir"}, auth=patient())
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith(FHIR_JSON)
    events = _check_bundle(answer.json())
    by_subtype = {e["subtype"][0]["code"]: e for e in events}
    deposit = by_subtype["create"]
    assert deposit["action"] == "C" and deposit["outcome"] == "0"
    [who] = deposit["agent"]
    assert who["who"]["identifier"] == {"system": RPPS, "value": DUPONT[1:]}  # IDNPS 8 + RPPS
    assert _documents(deposit) == ["1.2.250.1.999.9.1"]
    patient_entity = [e for e in deposit["entity"] if e["role"]["code"] == "1"]
    assert patient_entity[0]["what"]["identifier"] == {"system": INS_NIR, "value": INS}
    refusal = next(e for e in events if e["outcome"] != "0")
    assert refusal["agent"][0]["who"]["identifier"] == {"system": IDNPS, "value": LEVEQUE}
    assert "DMPAuthorizationNotFound" in refusal["outcomeDesc"]
    # the same traces as the JSON route, one AuditEvent each
    plain = (await web.get("/api/dmp/me/traces", auth=patient())).json()["traces"]
    assert len(plain) == len(events)


async def test_only_those_who_read_the_traces_read_the_audit_events(dmp_api: API) -> None:
    _mss, web = dmp_api
    await web.post(f"/api/dmp/patients/{INS}/documents", json={"documents": [document(1)]},
                   headers=pro(DUPONT))  # fmt: skip
    fhir = {"format": "fhir"}
    traces = f"/api/dmp/patients/{INS}/traces"
    refused = await web.get(traces, params=fhir, headers=pro(LEVEQUE))
    assert refused.status_code == 403 and refused.json()["error"] == "DMPAccessForbidden"
    assert (await web.get(traces, params=fhir)).status_code == 401
    assert (await web.put(f"/api/dmp/me/treating/{LEVEQUE}", auth=patient())).status_code == 204
    allowed = await web.get(traces, params=fhir, headers=pro(LEVEQUE))
    assert allowed.status_code == 200
    events = _check_bundle(allowed.json())
    assert any(_documents(e) == ["1.2.250.1.999.9.1"] for e in events)


async def test_a_document_invisible_to_the_patient_stays_out_of_their_traces(dmp_api: API) -> None:
    """The patient reads neither the deposit nor the consultation of a document invisible
    to them, in JSON or in FHIR; their médecin traitant DMP reads both."""
    _mss, web = dmp_api
    docs = [document(1), document(2, confidentiality=["N", "INVISIBLE_PATIENT"])]
    created = await web.post(f"/api/dmp/patients/{INS}/documents", json={"documents": docs},
                             headers=pro(DUPONT))  # fmt: skip
    hidden_id = created.json()["deposited"][1]["id"]
    await web.post(f"/api/dmp/patients/{INS}/authorization", json={}, headers=pro(DUPONT))
    read = await web.get(f"/api/dmp/patients/{INS}/documents/{hidden_id}", headers=pro(DUPONT))
    assert read.status_code == 200
    search = await web.get(f"/api/dmp/patients/{INS}/documents", headers=pro(DUPONT))
    assert len(search.json()["documents"]) == 2
    plain = (await web.get("/api/dmp/me/traces", auth=patient())).json()["traces"]
    assert plain and hidden_id not in {t["document_id"] for t in plain}
    searches = [t for t in plain if t["actor"] == DUPONT and t["action"] == "consult"]
    assert searches and all("found" not in (t["detail"] or {}) for t in searches)  # no count
    bundle = await web.get("/api/dmp/me/traces", params={"format": "fhir"}, auth=patient())
    seen = {d for e in _check_bundle(bundle.json()) for d in _documents(e)}
    assert seen == {"1.2.250.1.999.9.1"}
    assert "1.2.250.1.999.9.2" not in bundle.text
    await web.put(f"/api/dmp/me/treating/{DUPONT}", auth=patient())
    doctor = await web.get(f"/api/dmp/patients/{INS}/traces", params={"format": "fhir"},
                           headers=pro(DUPONT))  # fmt: skip
    seen = {d for e in _check_bundle(doctor.json()) for d in _documents(e)}
    assert seen == {"1.2.250.1.999.9.1", "1.2.250.1.999.9.2"}
