"""Hostile request targets against every GET route of the web (issue 14, "Web"): unknown
filter values, absurd page numbers and ids, NUL bytes, invalid UTF-8, repeated and
unknown parameters, bad FHIR values. Each answers below 500, in the format of its route
family: a FHIR OperationOutcome under /fhir/, the API's JSON with an error text under
/api/, the French page under /espace/. The routes are enumerated from the app (the
OpenAPI document; the space's routes), so that a new route is covered without a word
here. And raw accented bytes in a request line, over real TLS: served when UTF-8, else
an OperationOutcome, never uvicorn's plain-text 400."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from mss.annuaire.importer import import_files
from mss.security.tokens import jwks_of
from mss.space import pages

from .harness import PASSWORD, Running, running
from .space import PATIENT_INS, open_session, web
from .space_record import DUPONT, pro, record
from .test_annuaire import MSS_FILE
from .test_smtp_oauth import ISSUER, KEY

__all__ = ["record"]

PATIENT = f"{PATIENT_INS}@patient.mssante.fr"
LONG = "9" * 5000  # past Python's 4,300-digit int conversion limit
# Percent-encoded as they go into the URL: what a hostile client writes
HOSTILE = [
    "-1", "0", "1" + "0" * 30, "abc", "%00", "a%00b", "%ff", "%E9t%E9", "%C3%A9t%C3%A9",
    "%C3", "x" * 3000, LONG, "%C2%B2", "1e9", "%27%3B--", "..%2F..%2Fetc%2Fpasswd", "%F0%9F%92%A5",
    "%EF%BF%BD", "true%0D%0AX-Injected:%201", "%", "%%", "+", "",
]  # fmt: skip
FHIR_HOSTILE = [
    "_count=-1", "_count=1000000000", "_count=%C2%B2", f"_count={LONG}", "_offset=-5",
    f"_offset={LONG}", "_format=xml", "_format=%00", "_lastUpdated=xx2020-01-01",
    "_lastUpdated=ge2020-13-45", "_lastUpdated=gt%E9", "_total=maybe", "active=perhaps",
    "colour=blue", "name:exact=%00", "_count=1&_count=2", "mailbox-mss-type=XYZ",
]  # fmt: skip


def _families(path: str) -> str:
    return (
        "fhir" if path.startswith("/fhir/") else "espace" if path.startswith("/espace") else "api"
    )


def assert_in_format(response: httpx.Response, what: str) -> None:
    """Below 500, and a refusal in the format of the route family."""
    path = response.request.url.path
    assert response.status_code < 500, (what, response.status_code, response.text[:300])
    assert b"Invalid HTTP request" not in response.content, what
    family = _families(path)
    if 300 <= response.status_code < 400:  # a redirection (to the login page, to add a /)
        return
    if family == "espace":
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith("text/html"), what
            assert '<html lang="fr"' in response.text, what
        return
    body = response.json()
    if family == "fhir":
        assert "fhir+json" in response.headers["content-type"], what
        if response.status_code >= 400:
            assert body["resourceType"] == "OperationOutcome", (what, body)
            assert body["issue"][0]["diagnostics"], what
        return
    if response.status_code >= 400:
        assert isinstance(body.get("detail"), str) and body["detail"], (what, body)


def _openapi_gets(spec: dict[str, Any]) -> list[tuple[str, list[str], list[str]]]:
    """(path template, path parameters, query parameters) of every GET of the OpenAPI."""
    found = []
    for path, operations in spec["paths"].items():
        if "get" not in operations or not path.startswith(("/api/", "/fhir/")):
            continue
        params = operations["get"].get("parameters", [])
        found.append((
            path, [p["name"] for p in params if p["in"] == "path"],
            [p["name"] for p in params if p["in"] == "query"],
        ))  # fmt: skip
    return found


def _space_gets() -> list[tuple[str, list[str], list[str]]]:
    """The same for the patient space's GET routes (its app has no OpenAPI)."""
    found = []
    for route in [r for router in pages.routers() for r in router.routes]:
        if isinstance(route, APIRoute) and "GET" in route.methods:
            found.append((
                "/espace" + route.path, [p.alias for p in route.dependant.path_params],
                [p.alias for p in route.dependant.query_params],
            ))  # fmt: skip
    return found


def _targets(path: str, path_params: list[str], query: list[str]) -> list[str]:
    """The hostile variants of one route: each value in each path parameter and each
    query parameter, repeated parameters and an unknown one."""
    sound = {"ins": PATIENT_INS, "national_id": DUPONT}
    ok = {k: sound.get(k, "1") for k in path_params}
    base = path.format(**ok)
    targets = [f"{base}?zzz=1", f"{base}?%ff=1", f"{base}?a%00=1"]
    for name in path_params:
        for value in HOSTILE:
            targets.append(path.format(**{**ok, name: value}))
    for name in query:
        targets.append(f"{base}?{name}=1&{name}=2")
        targets += [f"{base}?{name}={value}" for value in HOSTILE]
    if path.startswith("/fhir/") and not path_params:
        targets += [f"{base}?{variant}" for variant in FHIR_HOSTILE]
    return targets


def _credentials(path: str, cookie: str) -> dict[str, str]:
    if path.startswith("/api/dmp/me"):
        basic = base64.b64encode(f"{PATIENT}:{PASSWORD}".encode()).decode()
        return {"Authorization": f"Basic {basic}"}
    if path.startswith("/api/dmp/"):
        return pro(DUPONT)
    return {"Cookie": f"mss_espace={cookie}"} if path.startswith("/espace") else {}


@pytest.fixture(params=["sqlite", "postgresql"])
async def served(request: pytest.FixtureRequest, instance: Path) -> AsyncIterator[Running]:
    """The server with professionals trusted by bearer token, the annuaire and a patient
    with a password, on SQLite and on PostgreSQL (a NUL or a huge number fails there
    differently)."""
    env = {}
    if request.param == "postgresql":
        env["MSS_STORAGE_URL"] = request.getfixturevalue("postgres_url")
    (instance / "jwks.json").write_text(jwks_of({"psc-1": KEY.public_key()}))
    overrides = {"oauth": {"issuer": ISSUER, "jwks_file": "jwks.json"}}
    async with running(instance, env=env, overrides=overrides) as mss:
        import_files(mss.store.db, [MSS_FILE])
        await mss.add_patient(PATIENT_INS, password=PASSWORD)
        yield mss


async def test_hostile_targets_on_every_get_route_answer_4xx_in_the_route_s_format(
    served: Running,
) -> None:
    record = served
    session = await open_session(record, PATIENT_INS)
    async with web(record) as client:
        await client.post(f"/api/dmp/patients/{PATIENT_INS}/authorization",
                          json={"basis": "presumed"}, headers=pro(DUPONT))  # fmt: skip
        spec = (await client.get("/api/openapi.json")).json()
        routes = _openapi_gets(spec) + _space_gets()
        covered = {path for path, _, _ in routes}
        assert {"/fhir/v2/Practitioner", "/api/annuaire/mailboxes", "/espace/historique",
                "/api/dmp/patients/{ins}/documents/{document_id}"} <= covered  # fmt: skip
        failed = []
        for path, path_params, query in routes:
            headers = _credentials(path, session.token)
            for target in _targets(path, path_params, query):
                url = httpx.URL(f"{client.base_url}{target}".replace("{", "%7B"))
                response = await client.get(url, headers=headers)
                try:
                    assert_in_format(response, target)
                except (AssertionError, ValueError) as exc:
                    failed.append(f"{target[:120]} → {response.status_code} "
                                  f"{response.text[:160]!r} ({exc!r:.80})")  # fmt: skip
    assert not failed, "\n".join(failed[:40])


def _error_lines(response: httpx.Response) -> str:
    return json.dumps(response.json(), ensure_ascii=False)


async def test_bad_values_are_named_in_french_and_english(record: Running) -> None:
    async with web(record) as client:
        page = await client.get("/api/annuaire/mailboxes", params={"page": str(10**30)})
        huge_id = await client.get(
            f"/api/dmp/patients/{PATIENT_INS}/documents/{10**30}", headers=pro(DUPONT)
        )
        fhir_count = await client.get("/fhir/v2/Practitioner?_count=%C2%B2")
        fhir_format = await client.get("/fhir/v2/Practitioner?_format=xml")
        fhir_date = await client.get("/fhir/v2/Practitioner?_lastUpdated=xx2020")
        nul = await client.get("/fhir/v2/Practitioner?name=a%00b")
        no_route = await client.get("/fhir/v2/Patient")
    assert page.status_code == 422 and page.json()["error"] == "InvalidRequest"
    assert "paramètre invalide" in page.json()["detail"] and "page" in page.json()["detail"]
    assert huge_id.status_code == 422 and "document_id" in huge_id.json()["detail"]
    assert fhir_count.status_code == 400 and "nombre entier" in _error_lines(fhir_count)
    assert fhir_format.status_code == 406
    assert fhir_format.json()["issue"][0]["code"] == "not-supported"
    assert fhir_date.status_code == 400 and "date invalide" in _error_lines(fhir_date)
    assert nul.status_code == 400 and "caractère nul" in _error_lines(nul)
    assert no_route.status_code == 404 and no_route.json()["resourceType"] == "OperationOutcome"


async def _raw_get(mss: Running, target: bytes) -> tuple[bytes, bytes]:
    """A GET with `target` written as is in the request line, over TLS: head and body."""
    reader, writer = await asyncio.open_connection(
        "localhost", mss.ports["https"], ssl=mss.client_tls()
    )
    writer.write(b"GET " + target + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return head, body


async def test_raw_accented_query_strings_answer_fhir_not_plain_text(record: Running) -> None:
    """`GET /fhir/v2/Practitioner?name=Hélène` with the é as raw bytes: in UTF-8 it is
    served as if percent-encoded; in Latin-1 it is not UTF-8: an OperationOutcome."""
    name = "name=Hélène".encode()
    head, body = await _raw_get(record, b"/fhir/v2/Practitioner?" + name)
    assert head.startswith(b"HTTP/1.1 200"), head
    bundle = json.loads(body)
    assert bundle["resourceType"] == "Bundle"
    assert [e["resource"]["id"] for e in bundle["entry"]] == ["0131234567"]  # Hélène Lévêque
    head, body = await _raw_get(record, "/fhir/v2/Practitioner?name=Hélène".encode("latin-1"))
    assert head.startswith(b"HTTP/1.1 400") and b"fhir+json" in head, head
    outcome = json.loads(body)
    assert outcome["resourceType"] == "OperationOutcome"
    assert "UTF-8" in outcome["issue"][0]["diagnostics"]
    head, body = await _raw_get(record, "/api/annuaire/mailboxes?name=é".encode("latin-1"))
    assert head.startswith(b"HTTP/1.1 400") and json.loads(body)["error"] == "InvalidRequest"
    head, body = await _raw_get(record, "/espace/connexion?suite=é".encode("latin-1"))
    assert head.startswith(b"HTTP/1.1 400") and b"text/html" in head
    assert re.search(rb"mal encod", body)


async def test_a_request_line_the_parser_refuses_is_json_in_french(record: Running) -> None:
    head, body = await _raw_get(record, b"/fhir/v2/Practitioner?name=a\x00b")
    assert head.startswith(b"HTTP/1.1 400")
    refused = json.loads(body)
    assert refused["error"] == "BadRequest" and "requête HTTP invalide" in refused["detail"]


async def test_raw_bytes_are_encoded_in_each_request_line_of_a_connection(
    record: Running,
) -> None:
    """Two requests on one connection: the second's request line is encoded too."""
    reader, writer = await asyncio.open_connection(
        "localhost", record.ports["https"], ssl=record.client_tls()
    )
    one = "GET /fhir/v2/Practitioner?name=Hélène HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()
    two = (
        "GET /fhir/v2/Practitioner?family=lévêque HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    writer.write(one)
    await writer.drain()
    await asyncio.sleep(0.5)
    writer.write(two.encode())
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert answer.count(b"HTTP/1.1 200") == 2, answer[:500]
