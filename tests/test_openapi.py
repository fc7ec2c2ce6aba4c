"""The OpenAPI description covers every route of the HTTP API (issue 17, "The HTTP API
documented"): each route is in `/api/openapi.json` with a summary and a description,
each body it reads has a schema and an example, each operation names its refusals,
and the description is a valid OpenAPI document."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from openapi_spec_validator import validate
from starlette.routing import BaseRoute, Mount
from starlette.types import ASGIApp

from mss.core.clients import MailService
from mss.web.app import create_asgi
from mss.web.autoconfig import ClientSetup
from mss.web.dmp import DMPGateway

from .harness import Running

# HTML (the docs page, the space's redirect) and the description itself
NOT_API = {"/api/docs", "/api/openapi.json", "/"}
BODY_METHODS = {"post", "put", "patch"}


async def _nothing(*_args: Any) -> Any:
    return None


def _composed_app() -> FastAPI:
    """The FastAPI app `create_asgi` composes, with every router the server serves."""
    served: ASGIApp = create_asgi(
        health=_nothing, metrics=_nothing, version="test", read=_nothing,
        dmp=DMPGateway(store=None, settings=None, logins=None, bearer=None,  # type: ignore[arg-type]
                       patient_domain="patient.mssante.fr"),
        space=_nothing,
        clients=ClientSetup(MailService(hostname="h.test", imap=1, imaps=2, submission=3,
                                        submissions=4), ["pro.mssante.test"]),
    )  # fmt: skip
    while not isinstance(served, FastAPI):
        served = getattr(served, "app", None) or served._app  # type: ignore[attr-defined]
    return served


async def _spec(server: Running) -> dict[str, Any]:
    async with httpx.AsyncClient(verify=server.client_tls()) as web:
        answer = await web.get(f"https://localhost:{server.ports['https']}/api/openapi.json")
    assert answer.status_code == 200
    spec: dict[str, Any] = answer.json()
    return spec


def _routes(app: FastAPI) -> list[BaseRoute]:
    """Every route the app serves, those of its included routers too."""
    return [context.original_route for context in iter_route_contexts(app.routes)]


def _operations(app: FastAPI) -> list[tuple[APIRoute, str]]:
    routes = [r for r in _routes(app) if isinstance(r, APIRoute) and r.path not in NOT_API]
    return [(route, method.lower()) for route in routes for method in route.methods]


def _has_example(media: dict[str, Any], spec: dict[str, Any]) -> bool:
    if media.get("example") is not None or media.get("examples"):
        return True
    schema = media.get("schema", {})
    ref = schema.get("$ref", "")
    if ref:
        schema = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    properties = schema.get("properties", {}).values()
    return any("examples" in p or "example" in p for p in properties)


async def test_openapi_describes_every_route(mss: Running) -> None:
    spec, app = await _spec(mss), _composed_app()
    operations = _operations(app)
    assert len(operations) >= 25
    others = [r for r in _routes(app) if not isinstance(r, APIRoute | Mount)]
    assert {getattr(r, "path", "") for r in others} <= NOT_API
    for route, method in operations:
        assert route.include_in_schema, route.path
        operation = spec["paths"].get(route.path, {}).get(method)
        assert operation is not None, f"{method} {route.path} is not described"
        assert operation.get("summary") and operation.get("description"), route.path


async def test_every_body_read_is_described_with_a_schema_and_an_example(mss: Running) -> None:
    spec, app = await _spec(mss), _composed_app()
    read_bodies = 0
    for route, method in _operations(app):
        operation = spec["paths"][route.path][method]
        if route.body_field is None:
            assert "requestBody" not in operation, f"{method} {route.path}"
            continue
        read_bodies += 1
        assert method in BODY_METHODS, f"{method} {route.path} reads a body"
        media = operation["requestBody"]["content"]["application/json"]
        assert media.get("schema"), route.path
        assert _has_example(media, spec), f"{method} {route.path} has no example"
    assert read_bodies >= 3  # the deposit, the authorisation, the patient's settings
    authorization = spec["paths"]["/api/dmp/patients/{ins}/authorization"]["post"]
    body = authorization["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    basis = spec["components"]["schemas"][body.rsplit("/", 1)[1]]["properties"]["basis"]
    assert set(basis["enum"]) == {"presumed", "explicit"}


async def test_every_operation_names_its_refusals(mss: Running) -> None:
    spec, app = await _spec(mss), _composed_app()
    for route, method in _operations(app):
        codes = set(spec["paths"][route.path][method]["responses"])
        where = f"{method} {route.path}: {sorted(codes)}"
        assert any(c.startswith("2") for c in codes), where
        if route.dependant.path_params or route.dependant.query_params or route.body_field:
            assert {"400", "422"} & codes, where
        if route.path.startswith("/api/dmp/"):
            assert "401" in codes, where
        if route.path.startswith("/api/dmp/patients/"):
            assert {"403", "404", "409"} <= codes, where
        if route.dependant.path_params and not route.path.startswith("/api/dmp/me"):
            assert "404" in codes, where


async def test_no_query_parameter_is_taken_for_a_body(mss: Running) -> None:
    spec = await _spec(mss)
    for path, operations in spec["paths"].items():
        assert "requestBody" not in operations.get("get", {}), path


async def test_openapi_is_a_valid_openapi_document(mss: Running) -> None:
    validate(await _spec(mss))
