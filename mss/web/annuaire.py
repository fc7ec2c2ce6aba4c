"""The annuaire over HTTP: JSON under /api/annuaire/, FHIR R4 under /fhir/v2/.

Lookups read the live set of the annuaire in one snapshot (`lookup`), on the
event loop for SQLite (an indexed lookup costs microseconds) and on reader
threads for PostgreSQL. The directory is public data: no authentication.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from mss.annuaire import fhir, lookup
from mss.errors import InputError
from mss.store.sql import Conn
from mss.web import openapi as doc

T = TypeVar("T")
Reader = Callable[[Callable[[Conn], T]], Awaitable[T]]

FHIR_JSON = "application/fhir+json; charset=utf-8"


class FhirResponse(JSONResponse):
    media_type = FHIR_JSON


def _fhir_error(text: str, status: int = 400, code: str = "invalid") -> FhirResponse:
    return FhirResponse(fhir.operation_outcome(text, code), status_code=status)


def _not_found(what: str) -> JSONResponse:
    return JSONResponse({"detail": f"{what} is not in the annuaire"}, status_code=404)


# A page number past any directory's end, yet whose offset the database can hold
PageNumber = Annotated[int, Query(ge=1, le=1_000_000)]

MAILBOX_PATH = "/api/annuaire/mailboxes/"


class MailboxFastPath:
    """`GET /api/annuaire/mailboxes/{address}` answered before the framework.

    The lookup the mail path and practice software make most; through FastAPI's
    routing and middleware it costs several times the database read. Same
    answer as the documented route (which serves it when this one steps aside).
    """

    def __init__(self, app: ASGIApp, read: Reader[Any]) -> None:
        self._app = app
        self._read = read

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or not path.startswith(MAILBOX_PATH)
            or scope.get("query_string")
        ):
            await self._app(scope, receive, send)
            return
        address = path[len(MAILBOX_PATH) :]
        found = await self._read(lambda c: lookup.mailbox(c, address))
        body = json.dumps(
            found or {"detail": f"{address} is not in the annuaire"},
            ensure_ascii=False, separators=(",", ":"),
        ).encode()  # fmt: skip
        await send({
            "type": "http.response.start",
            "status": 200 if found else 404,
            "headers": [(b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode())],
        })  # fmt: skip
        await send({"type": "http.response.body", "body": body})


def router(read: Reader[Any]) -> APIRouter:
    api = APIRouter()
    _mailbox_routes(api, read)
    _professional_routes(api, read)
    _status_route(api, read)
    _capability_route(api)
    _fhir_search_routes(api, read)
    _fhir_read_routes(api, read)
    return api


async def _json_page(
    read: Reader[Any], make_query: Callable[[], lookup.Query],
    search: Callable[[Conn, lookup.Query], lookup.Page], page: int, count: int,
) -> JSONResponse:  # fmt: skip
    """One page of a JSON search; a bad criterion is a 400 naming it."""
    try:
        query = make_query()
    except InputError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=400)
    result = await read(lambda c: search(c, query))
    return JSONResponse({**result.as_dict(), "page": page, "count": count})


def _mailbox_routes(api: APIRouter, read: Reader[Any]) -> None:
    @api.get("/api/annuaire/mailboxes/{address}", tags=["annuaire"],
             responses={**doc.NOT_IN_ANNUAIRE, **doc.INVALID})  # fmt: skip
    async def get_mailbox(address: str) -> JSONResponse:
        """One MSSanté mailbox by address (any case)."""
        found = await read(lambda c: lookup.mailbox(c, address))
        return JSONResponse(found) if found else _not_found(address)

    @api.get("/api/annuaire/mailboxes", tags=["annuaire"],
             responses={**doc.BAD_CRITERION, **doc.INVALID})  # fmt: skip
    async def search_mailboxes(
        address: str | None = None,
        national_id: Annotated[str | None, Query(description="national id, RPPS or ADELI")] = None,
        name: Annotated[str | None, Query(description="start of a name, any case/accents")] = None,
        family: str | None = None,
        given: str | None = None,
        profession: Annotated[list[str] | None, Query(description="profession codes")] = None,
        savoir_faire: Annotated[list[str] | None, Query(description="savoir-faire codes")] = None,
        postcode: str | None = None,
        department: str | None = None,
        type: Annotated[list[str] | None, Query(description="PER, ORG, APP, CAB")] = None,
        structure: str | None = None,
        page: PageNumber = 1,
        count: Annotated[int, Query(ge=1, le=lookup.MAX_PAGE)] = 50,
    ) -> JSONResponse:
        """Mailboxes matching every criterion given, by pages, ordered by name."""
        return await _json_page(
            read,
            lambda: lookup.Query(
                mailbox=address, national_id=national_id, name=name, family=family,
                given=given, profession=tuple(profession or ()),
                savoir_faire=tuple(savoir_faire or ()), postcode=postcode,
                department=department, mailbox_type=tuple(type or ()), structure=structure,
                offset=(page - 1) * count, limit=count,
            ),
            lookup.search_mailboxes, page, count,
        )  # fmt: skip


def _professional_routes(api: APIRouter, read: Reader[Any]) -> None:
    @api.get("/api/annuaire/professionals/{national_id}", tags=["annuaire"],
             responses={**doc.NOT_IN_ANNUAIRE, **doc.INVALID})  # fmt: skip
    async def get_professional(national_id: str) -> JSONResponse:
        """A professional by national id, RPPS or ADELI, with mailboxes and activities."""
        found = await read(lambda c: lookup.professional(c, national_id))
        return JSONResponse(found) if found else _not_found(national_id)

    @api.get("/api/annuaire/professionals", tags=["annuaire"],
             responses={**doc.BAD_CRITERION, **doc.INVALID})  # fmt: skip
    async def search_professionals(
        name: str | None = None,
        family: str | None = None,
        given: str | None = None,
        profession: Annotated[list[str] | None, Query(description="profession codes")] = None,
        savoir_faire: Annotated[list[str] | None, Query(description="savoir-faire codes")] = None,
        postcode: str | None = None,
        department: str | None = None,
        address: str | None = None,
        page: PageNumber = 1,
        count: Annotated[int, Query(ge=1, le=lookup.MAX_PAGE)] = 50,
    ) -> JSONResponse:
        """Professionals matching every criterion given, by pages."""
        return await _json_page(
            read,
            lambda: lookup.Query(
                name=name, family=family, given=given, profession=tuple(profession or ()),
                savoir_faire=tuple(savoir_faire or ()), postcode=postcode,
                department=department, mailbox=address, offset=(page - 1) * count, limit=count,
            ),
            lookup.search_professionals, page, count,
        )  # fmt: skip


def _status_route(api: APIRouter, read: Reader[Any]) -> None:
    @api.get("/api/annuaire/status", tags=["annuaire"])
    async def annuaire_status() -> JSONResponse:
        """Which extractions are loaded, from which files, when."""
        return JSONResponse(await read(lookup.status))


# --- FHIR R4 ---------------------------------------------------------------------------------


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir/v2"


def _capability_route(api: APIRouter) -> None:
    @api.get("/fhir/v2/metadata", tags=["fhir"], response_class=FhirResponse)
    async def capability(request: Request) -> FhirResponse:
        """The CapabilityStatement: resources and search parameters served."""
        return FhirResponse({
            "resourceType": "CapabilityStatement",
            "status": "active",
            "kind": "instance",
            "fhirVersion": "4.0.1",
            "format": ["json"],
            "implementation": {"description": "mss annuaire", "url": _base(request)},
            "rest": [{
                "mode": "server",
                "resource": [
                    {"type": t, "interaction": [{"code": "read"}, {"code": "search-type"}],
                     "searchParam": [{"name": p, "type": "string"} for p in sorted(ps)]}
                    for t, ps in fhir.PARAMETERS.items()
                ],
            }],
        })  # fmt: skip


# A search of one resource type: its total and its resources (one page).
Found = tuple[int, list[dict[str, Any]]]


async def _practitioners(read: Reader[Any], query: lookup.Query) -> Found:
    page = await read(lambda c: lookup.search_professionals(c, query))
    return page.total, [fhir.practitioner(p) for p in page.items]


async def _practitioner_roles(read: Reader[Any], query: lookup.Query) -> Found:
    typed = _with_types(query, ("PER", "CAB"))
    page = await read(lambda c: lookup.search_mailboxes(c, typed))
    return page.total, [fhir.practitioner_role(m) for m in page.items if m["national_id"]]


async def _organizations_of(read: Reader[Any], query: lookup.Query) -> Found:
    typed = _with_types(query, ("ORG", "APP", "CAB"))
    page = await read(lambda c: lookup.search_mailboxes(c, typed))
    return page.total, _organizations(page.items)


_SEARCHES: dict[str, Callable[[Reader[Any], lookup.Query], Awaitable[Found]]] = {
    "Practitioner": _practitioners,
    "PractitionerRole": _practitioner_roles,
    "Organization": _organizations_of,
}


async def _fhir_search(read: Reader[Any], request: Request, resource: str) -> FhirResponse:
    """A searchset Bundle of `resource` for the query parameters of the request."""
    params = list(request.query_params.multi_items())
    try:
        query, inactive = fhir.parse_search(resource, params)
    except fhir.FhirError as exc:
        return _fhir_error(str(exc), exc.status, exc.code)
    if inactive:  # nothing in the directory is inactive: retired entries are gone
        return FhirResponse(fhir.bundle(_base(request), resource, query, params, 0, []))
    total, resources = await _SEARCHES[resource](read, query)
    return FhirResponse(fhir.bundle(_base(request), resource, query, params, total, resources))


def _fhir_search_routes(api: APIRouter, read: Reader[Any]) -> None:
    @api.get("/fhir/v2/Practitioner", tags=["fhir"], response_class=FhirResponse,
             **doc.fhir_search("Practitioner"))  # fmt: skip
    async def practitioners(request: Request) -> FhirResponse:
        """Search Practitioner (national id, names, mailbox-mss, qualification-code…)."""
        return await _fhir_search(read, request, "Practitioner")

    @api.get("/fhir/v2/PractitionerRole", tags=["fhir"], response_class=FhirResponse,
             **doc.fhir_search("PractitionerRole"))  # fmt: skip
    async def practitioner_roles(request: Request) -> FhirResponse:
        """Search PractitionerRole (practitioner, mailbox-mss, mailbox-mss-type, role…)."""
        return await _fhir_search(read, request, "PractitionerRole")

    @api.get("/fhir/v2/Organization", tags=["fhir"], response_class=FhirResponse,
             **doc.fhir_search("Organization"))  # fmt: skip
    async def organizations(request: Request) -> FhirResponse:
        """Search Organization (identifier, name, mailbox-mss, address-postalcode…)."""
        return await _fhir_search(read, request, "Organization")


def _fhir_read_routes(api: APIRouter, read: Reader[Any]) -> None:
    @api.get("/fhir/v2/Practitioner/{resource_id}", tags=["fhir"], response_class=FhirResponse,
             responses=doc.fhir_read("Practitioner"))  # fmt: skip
    async def read_practitioner(resource_id: str) -> FhirResponse:
        """One Practitioner by id (its national id)."""
        found = await read(lambda c: lookup.professional(c, resource_id))
        if found is None:
            return _fhir_error(f"Practitioner/{resource_id} is unknown", 404, "not-found")
        return FhirResponse(fhir.practitioner(found))

    @api.get("/fhir/v2/Organization/{resource_id}", tags=["fhir"], response_class=FhirResponse,
             responses=doc.fhir_read("Organization"))  # fmt: skip
    async def read_organization(resource_id: str) -> FhirResponse:
        """One Organization by id (its structure id)."""
        query = lookup.Query(structure=resource_id, limit=lookup.MAX_PAGE)
        page = await read(lambda c: lookup.search_mailboxes(c, query))
        found = _organizations(page.items)
        if not found:
            return _fhir_error(f"Organization/{resource_id} is unknown", 404, "not-found")
        return FhirResponse(found[0])


def _with_types(query: lookup.Query, types: tuple[str, ...]) -> lookup.Query:
    if query.mailbox_type:
        return query
    return lookup.Query(**{**query.__dict__, "mailbox_type": types})


def _organizations(mailboxes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One Organization per structure among the mailboxes, with its mailboxes as telecom."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for mailbox in mailboxes:
        key = mailbox["structure"]["id"] or mailbox["address"]
        grouped.setdefault(key, []).append(mailbox)
    return [fhir.organization(key, boxes) for key, boxes in grouped.items()]
