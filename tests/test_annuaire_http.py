"""The annuaire over HTTPS: the JSON API and the FHIR API of the national directory.

A script written for the national FHIR API (`/fhir/v2`) must work against mss
by changing the base URL: these tests call it the way such scripts do,
following the `next` links of the Bundles.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from mss.annuaire.importer import import_files

from .harness import Running
from .test_annuaire import MSS_FILE, PS56

FHIR_JSON = "application/fhir+json"


@pytest.fixture
async def web(mss: Running) -> AsyncIterator[httpx.AsyncClient]:
    import_files(mss.store.db, [MSS_FILE, PS56])
    async with httpx.AsyncClient(
        base_url=f"https://localhost:{mss.ports['https']}", verify=mss.client_tls()
    ) as client:
        yield client


async def _fhir(web: httpx.AsyncClient, path: str, **params: Any) -> dict[str, Any]:
    response = await web.get(path, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    body: dict[str, Any] = response.json()
    return body


async def test_json_lookup_of_a_mailbox_any_case_and_404(web: httpx.AsyncClient) -> None:
    found = await web.get("/api/annuaire/mailboxes/Jean.Dupont@Medecin.MSSante.fr")
    assert found.status_code == 200
    assert found.json()["national_id"] == "810003456789"
    assert found.json()["profession"] == {"code": "10", "label": "Médecin"}
    missing = await web.get("/api/annuaire/mailboxes/personne@medecin.mssante.fr")
    assert missing.status_code == 404 and "not in the annuaire" in missing.json()["detail"]


async def test_json_search_combines_criteria_and_pages(web: httpx.AsyncClient) -> None:
    response = await web.get(
        "/api/annuaire/mailboxes", params={"profession": "10", "department": "974"}
    )
    body = response.json()
    assert body["total"] == 1
    assert body["items"][0]["address"] == "francois.doe-martin@medecin.mssante.fr"
    paged = (await web.get("/api/annuaire/mailboxes", params={"type": "PER", "count": 2})).json()
    assert paged["total"] == 4 and len(paged["items"]) == 2
    bad = await web.get("/api/annuaire/mailboxes", params={"type": "XYZ"})
    assert bad.status_code == 400 and "unknown mailbox type" in bad.json()["detail"]
    pros = (await web.get("/api/annuaire/professionals", params={"name": "lévê"})).json()
    assert [p["national_id"] for p in pros["items"]] == ["0131234567"]
    one = (await web.get("/api/annuaire/professionals/10003456789")).json()
    assert len(one["activities"]) == 2 and one["mailboxes"][0]["type"] == "PER"


async def test_fhir_practitioner_by_mailbox_like_the_national_api(web: httpx.AsyncClient) -> None:
    bundle = await _fhir(
        web, "/fhir/v2/Practitioner", **{"mailbox-mss": "jean.dupont@medecin.mssante.fr"}
    )
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    assert bundle["total"] == 1
    [entry] = bundle["entry"]
    practitioner = entry["resource"]
    assert entry["fullUrl"].endswith("/fhir/v2/Practitioner/810003456789")
    values = {i["system"]: i["value"] for i in practitioner["identifier"]}
    assert values["urn:oid:1.2.250.1.71.4.2.1"] == "810003456789"
    assert values["https://rpps.esante.gouv.fr"] == "10003456789"
    assert practitioner["name"][0]["family"] == "DUPONT"
    [telecom] = practitioner["telecom"]
    assert telecom["value"] == "jean.dupont@medecin.mssante.fr"
    codes = [q["code"]["coding"][0]["code"] for q in practitioner["qualification"]]
    assert codes == ["10", "SM04"]


async def test_fhir_search_parameters(web: httpx.AsyncClient) -> None:
    async def ids(path: str, **params: Any) -> list[str]:
        bundle = await _fhir(web, path, **params)
        return [e["resource"]["id"] for e in bundle.get("entry", [])]

    assert await ids("/fhir/v2/Practitioner", family="leve") == ["0131234567"]
    assert await ids("/fhir/v2/Practitioner", given="françois") == ["810001122334"]
    assert await ids("/fhir/v2/Practitioner", name="santoni") == ["810009876543"]
    assert await ids(
        "/fhir/v2/Practitioner", identifier="urn:oid:1.2.250.1.71.4.2.1|810006666666"
    ) == ["810006666666"]
    assert await ids("/fhir/v2/Practitioner", **{"qualification-code": "40"}) == ["810009876543"]
    assert await ids("/fhir/v2/Practitioner", active="false") == []
    roles = await _fhir(web, "/fhir/v2/PractitionerRole", **{"mailbox-mss-type": "CAB"})
    [role] = [e["resource"] for e in roles["entry"]]
    assert role["practitioner"]["reference"] == "Practitioner/810009876543"
    orgs = await _fhir(
        web, "/fhir/v2/Organization", **{"mailbox-mss": "secretariat.cardio@ch-test.mssante.fr"}
    )
    [org] = [e["resource"] for e in orgs["entry"]]
    assert org["name"] == "CENTRE HOSPITALIER DE TEST" and org["id"] == "750000001"
    read = await _fhir(web, "/fhir/v2/Organization/750000001")
    assert read["resourceType"] == "Organization"


async def test_fhir_paging_follows_next_links_to_the_end(web: httpx.AsyncClient) -> None:
    nothing = await _fhir(web, "/fhir/v2/Practitioner", family="%", _count=2)
    assert nothing["total"] == 0  # no name starts with "%"
    seen: list[str] = []
    url: str | None = "/fhir/v2/PractitionerRole?_count=2&mailbox-mss-type=PER,CAB"
    total = None
    while url is not None:
        bundle = await _fhir(web, url)
        total = bundle["total"]
        seen += [e["resource"]["id"] for e in bundle.get("entry", [])]
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
    assert total == 5 and len(seen) == len(set(seen)) == 5


async def test_fhir_errors_are_operation_outcomes(web: httpx.AsyncClient) -> None:
    unknown = await web.get("/fhir/v2/Practitioner", params={"colour": "blue"})
    assert unknown.status_code == 400
    assert unknown.json()["resourceType"] == "OperationOutcome"
    assert "unknown search parameter 'colour'" in unknown.json()["issue"][0]["diagnostics"]
    count = await web.get("/fhir/v2/Practitioner", params={"_count": "many"})
    assert count.status_code == 400
    missing = await web.get("/fhir/v2/Practitioner/899999999999")
    assert missing.status_code == 404 and missing.json()["issue"][0]["code"] == "not-found"


async def test_openapi_and_capability_statement_are_served(web: httpx.AsyncClient) -> None:
    spec = (await web.get("/api/openapi.json")).json()
    assert "/api/annuaire/mailboxes" in spec["paths"]
    assert "/fhir/v2/Practitioner" in spec["paths"]
    capability = await _fhir(web, "/fhir/v2/metadata")
    types = {r["type"] for r in capability["rest"][0]["resource"]}
    assert types == {"Practitioner", "PractitionerRole", "Organization"}


async def test_list_criteria_of_the_json_searches_are_query_parameters(
    web: httpx.AsyncClient,
) -> None:
    """`profession` and `savoir_faire` are read from the query, as documented (a list
    parameter without `Query()` was taken for a JSON body, so the query was ignored)."""
    everyone = (await web.get("/api/annuaire/professionals")).json()["total"]
    doctors = (await web.get("/api/annuaire/professionals", params={"profession": "10"})).json()
    nobody = await web.get("/api/annuaire/professionals", params={"profession": "0000"})
    assert 0 < doctors["total"] < everyone
    assert all(a["profession"]["code"] == "10" for p in doctors["items"] for a in p["activities"])
    assert nobody.json()["total"] == 0
    skills = await web.get("/api/annuaire/mailboxes", params={"savoir_faire": "XXXX"})
    assert skills.status_code == 200 and skills.json()["total"] == 0
