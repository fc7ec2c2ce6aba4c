"""The DMP over HTTPS: `/api/dmp/…` for professional software and for the patient.

- Professionals authenticate with a bearer token (Pro Santé Connect-like JWT,
  checked against `oauth.issuer`); the token's national id claim names them,
  their profession comes from the annuaire. They deposit, search, read,
  declare an authorisation, unmask, reveal, and (médecins traitants DMP)
  block for the patient and read the traces. The access mode is the `mode`
  query parameter: `normal` (default), `bris_de_glace`, `centre15`.
- Patients authenticate with their mailbox address and password (HTTP Basic):
  the service layer the patient space will call, exposed as `/api/dmp/me/…`.

Routes raise; `web/errors.py` renders. DMP refusals are JSON `{"error":
"<DMPErrorName>", "detail": "<French text>"}` with 404 (patient not found), 409
(DMP closed), 403 (forbidden, no or expired authorisation), 422 (a document that
cannot be read or deposited); missing or wrong credentials are 401.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from mss.annuaire import lookup as annuaire
from mss.core.ins import InvalidINS, parse_ins
from mss.dmp import audit, service
from mss.dmp.access import Actor, Mode, Professional
from mss.dmp.errors import DMPError, DMPPatientNotFound, DocumentError
from mss.dmp.records import media_type
from mss.security.auth import LoginService, log_refusal
from mss.security.pki import CertificateError, identity_of_der
from mss.security.tokens import BearerValidator, TokenError
from mss.store.api import Store
from mss.store.sql import Conn, Tx
from mss.web import openapi as doc
from mss.web.errors import Throttled, Unauthorized
from mss.web.json_body import StrictJSONRoute
from mss.web.responses import FastJSONResponse

T = TypeVar("T")
TraceFormat = Literal["json", "fhir"]
FHIR_JSON = "application/fhir+json"
TRACES_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": '`{"traces": [...]}`, newest first; with `format=fhir`, a FHIR R4 '
        "searchset Bundle of AuditEvent following the ANS guide « Traçabilité des "
        "événements » (profiles TDEAuditEvent and TDEBundleResultatReponseRechercheTraces, "
        "https://interop.esante.gouv.fr/ig/fhir/tde): type rest, subtype the interaction "
        "(read, search-type, create, update), action, recorded and period, outcome (4: "
        "refused), agent.who by RPPS, IDNPS or INS, source, entity the patient (INS) and "
        "the document (unique id)",
        "content": {"application/json": {}, FHIR_JSON: {}},
    }
}
# An id the database can hold (a BIGINT): a larger one is a 422, never an overflow
DocumentId = Annotated[int, Path(ge=1, le=2**63 - 1)]
# a professional's national id: 8 and the RPPS (11 digits), or 0 and the ADELI (9)
NationalId = Annotated[str, Path(pattern=r"^(8\d{11}|0\d{9})$")]
DOOR = "dmp-api"  # in the log of refused logins


@dataclass
class DMPGateway:
    """What the routes need, built by `app`."""

    store: Store
    settings: service.Settings
    logins: LoginService
    bearer: BearerValidator | None
    patient_domain: str

    async def write(self, fn: Callable[[Tx], T]) -> T:
        return await self.store.write(fn)

    async def read(self, fn: Callable[[Conn], T]) -> T:
        return await self.store.read(fn)

    async def professional(self, request: Request) -> Professional:
        """By bearer token, else by the verified client certificate of the connection
        (IGC-Santé, the dev PKI here: its CN is the national id)."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        try:
            if scheme.lower() != "bearer" or not token:
                return await self._named(_certified_national_id(request))
            return await self._named(await self._token_national_id(token.strip()))
        except Unauthorized as refused:
            ip = request.client.host if request.client else None
            log_refusal(DOOR, None, ip, refused.text)
            raise

    async def _token_national_id(self, token: str) -> str:
        if self.bearer is None:
            raise Unauthorized(
                "jetons non configurés (bearer tokens not configured: oauth.issuer)",
                "Bearer",
            )
        try:
            claims = self.bearer.validate_at_hand(token)  # no I/O: on the event loop
            if claims is None:  # the issuer's keys may have to be fetched
                claims = await asyncio.to_thread(self.bearer.validate, token)
        except TokenError as exc:
            raise Unauthorized(f"jeton refusé (token refused): {exc}", "Bearer") from None
        if not claims.national_id:
            raise Unauthorized(
                "le jeton ne porte aucun identifiant national (the token names no national id)",
                "Bearer",
            )
        return claims.national_id

    async def _named(self, national_id: str) -> Professional:
        """The professional with this national id, their profession from the annuaire."""
        found = await self.store.read_fast(lambda c: annuaire.professional(c, national_id))
        profession = (found or {}).get("profession") or {}
        name = " ".join(x for x in ((found or {}).get("given"), (found or {}).get("family")) if x)
        return Professional(national_id, profession.get("code", ""), name)

    async def patient(self, request: Request) -> str:
        """The INS of the patient whose mailbox address and password the request carries."""
        user, password = _basic_credentials(request)
        ip = request.client.host if request.client else None
        result = await self.logins.with_password(user, password, ip, ["patient"], door=DOOR)
        if result.throttled:
            raise Throttled(
                "trop d'échecs d'authentification, réessayez plus tard"
                " (too many failed logins, try again later)"
            )
        if result.identity is None:
            raise Unauthorized(
                "adresse ou mot de passe incorrect (wrong address or password)", "Basic"
            )
        return result.identity.address.split("@", 1)[0].upper()


def _certified_national_id(request: Request) -> str:
    """The national id of the professional's certificate the connection was made with."""
    der = request.scope.get("extensions", {}).get("tls", {}).get("client_cert_der")
    if der is None:
        raise Unauthorized(
            "un jeton Pro Santé Connect ou un certificat de professionnel est requis"
            " (a bearer token or a professional's certificate is required)",
            "Bearer",
        )
    try:
        identity = identity_of_der(der)
    except CertificateError as exc:
        raise Unauthorized(f"certificat refusé (certificate refused): {exc}", "Bearer") from None
    if identity.kind != "professional" or not identity.national_id:
        raise Unauthorized(
            "pas un certificat de professionnel (not a professional's certificate)",
            "Bearer",
        )
    return identity.national_id


def _basic_credentials(request: Request) -> tuple[str, str]:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        raise Unauthorized(
            "l'adresse et le mot de passe du patient sont requis (address and password required)",
            "Basic",
        )
    try:
        user, _, password = base64.b64decode(value.strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized(
            "identifiants Basic mal formés (malformed Basic credentials)", "Basic"
        ) from None
    return user, password


def _ins(value: str) -> str:
    try:
        return parse_ins(value).matricule
    except InvalidINS as exc:
        raise DMPPatientNotFound(f"INS invalide : {exc.reason}") from None


def _text(body: dict[str, Any], key: str, default: str | None = "") -> str:
    """A text field of a deposit: a JSON string without NUL (absent: `default`, None:
    required); anything else is the document's error, never stringified."""
    value = body.get(key)
    if value is None and default is not None:
        return default
    if not isinstance(value, str) or not value or "\0" in value:
        raise ValueError(f"{key} : texte attendu (text expected)")
    return value


def _codes(body: dict[str, Any]) -> tuple[str, ...]:
    """confidentiality: a list of codes (a lone string is refused: it would be read
    letter by letter, and INVISIBLE_PATIENT lost)."""
    value = body.get("confidentiality") or ["N"]
    if not isinstance(value, list) or not all(isinstance(c, str) and c for c in value):
        raise ValueError("confidentiality : liste de codes attendue (list of codes expected)")
    return tuple(value)


def _new_document(body: dict[str, Any]) -> service.NewDocument:
    try:
        if not isinstance(body, dict):
            raise ValueError("objet JSON attendu (JSON object expected)")
        content = base64.b64decode(_text(body, "content_base64", None), validate=True)
        created = _text(body, "creation_time")
        return service.NewDocument(
            unique_id=_text(body, "unique_id", None), content=content,
            mime_type=_text(body, "mime_type", "application/octet-stream"),
            title=_text(body, "title"), class_code=_text(body, "class_code"),
            type_code=_text(body, "type_code"), format_code=_text(body, "format_code"),
            confidentiality=_codes(body),
            creation_time=dt.datetime.fromisoformat(created) if created else None,
            replaces=_text(body, "replaces") or None,
        )  # fmt: skip
    except (ValueError, binascii.Error) as exc:
        raise DocumentError(f"document illisible (bad document): {exc}") from None


def router(gateway: DMPGateway) -> APIRouter:
    api = APIRouter(prefix="/api/dmp", tags=["dmp"], route_class=StrictJSONRoute)
    _consent_routes(api, gateway)
    _search_route(api, gateway)
    _document_routes(api, gateway)
    _document_change_routes(api, gateway)
    _care_team_routes(api, gateway)
    _patient_document_routes(api, gateway)
    _patient_choice_routes(api, gateway)
    return api


def _consent_routes(api: APIRouter, g: DMPGateway) -> None:
    @api.post(
        "/patients/{ins}/authorization",
        responses={**doc.answer("until when", {"expires_at": "2027-03-01T10:00:00+00:00"}),
                   **doc.refusals(400), **doc.PRO},
        openapi_extra=doc.body_examples(care_team={"basis": "presumed"},
                                        explicit={"basis": "explicit"}),
    )  # fmt: skip
    async def authorize(
        ins: str,
        request: Request,
        basis: Annotated[str, Body(embed=True), doc.BASIS] = "explicit",
    ) -> Response:
        """Declare the patient's consent (presumed for the care team, explicit otherwise)."""
        who, patient = await g.professional(request), _ins(ins)
        expires = await g.write(lambda tx: service.authorize(tx, g.settings, patient, who, basis))
        return JSONResponse({"expires_at": expires.isoformat()})


# codes a search may name at most per criterion: the DMP's class and type code lists are
# far shorter, and each distinct count is another statement text to prepare and keep
MAX_CODES = 50


def _search_route(api: APIRouter, g: DMPGateway) -> None:
    @api.get("/patients/{ins}/documents", responses={
        **doc.answer("the documents' metadata, newest first", {"documents": [doc.FOUND]}),
        **doc.PRO})  # fmt: skip
    async def search(
        ins: str,
        request: Request,
        mode: Mode = Mode.NORMAL,
        class_code: Annotated[list[str] | None, Query(alias="class", max_length=MAX_CODES)] = None,
        type_code: Annotated[list[str] | None, Query(alias="type", max_length=MAX_CODES)] = None,
        author: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        include_superseded: bool = False,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    ) -> Response:
        """The documents this professional may see (class, type, author, dates)."""
        who, patient = await g.professional(request), _ins(ins)
        query = service.Search(
            class_codes=tuple(class_code or ()), type_codes=tuple(type_code or ()),
            author=author, since=since, until=until,
            include_superseded=include_superseded, limit=limit, offset=offset,
        )  # fmt: skip
        found = await service.consult(
            g.store, lambda tx: service.search_documents(tx, g.settings, patient, who, mode, query)
        )
        return FastJSONResponse({"documents": found})


def _document_routes(api: APIRouter, g: DMPGateway) -> None:
    @api.get("/patients/{ins}/documents/{document_id}", responses=doc.READ)
    async def read(
        ins: str, document_id: DocumentId, request: Request, mode: Mode = Mode.NORMAL
    ) -> Response:
        """A document's bytes (its metadata in the X-DMP-Document header, JSON)."""
        who, patient = await g.professional(request), _ins(ins)
        meta, content = await service.consult(g.store, lambda tx: service.read_document(
            tx, g.settings, g.store.blobs, patient, who, mode, document_id))  # fmt: skip
        header = base64.b64encode(json.dumps(meta).encode()).decode()
        kind = media_type(meta["mime_type"])  # also for what was stored before it was checked
        return Response(content, media_type=kind, headers={"X-DMP-Document": header})

    @api.post("/patients/{ins}/documents", status_code=201, responses=doc.DEPOSITED,
              openapi_extra=doc.body_examples(a_pdf=doc.DEPOSIT))  # fmt: skip
    async def deposit(
        ins: str,
        request: Request,
        body: Annotated[dict[str, Any], Body(), doc.described_as(doc.DepositRequest)],
    ) -> Response:
        """Deposit documents: {"documents": [{"unique_id", "content_base64", "mime_type",
        "title", "class_code", "type_code", "confidentiality": [...], "replaces"}]}."""
        who, patient = await g.professional(request), _ins(ins)
        given = body.get("documents") or []
        if not isinstance(given, list):
            raise DocumentError("documents : une liste est attendue (documents: a list expected)")
        documents = [_new_document(d) for d in given]
        if not documents:
            raise DocumentError("aucun document à déposer (no document to deposit)")
        done = await g.write(lambda tx: service.deposit(tx, g.store.blobs, patient, who, documents))
        return JSONResponse({"deposited": [_deposited(d) for d in done]}, status_code=201)


def _deposited(done: service.Deposited) -> dict[str, Any]:
    return {"id": done.document_id, "unique_id": done.unique_id, "version": done.version,
            "duplicate": done.duplicate}  # fmt: skip


def _document_change_routes(api: APIRouter, g: DMPGateway) -> None:
    @api.post("/patients/{ins}/documents/{document_id}/unmask", status_code=204,
              responses={**doc.NO_CONTENT, **doc.PRO})  # fmt: skip
    async def pro_unmask(ins: str, document_id: DocumentId, request: Request) -> Response:
        """Unmask: the author, or a médecin traitant DMP on the patient's request."""
        who, patient = await g.professional(request), _ins(ins)
        await g.write(lambda tx: service.set_masked(
            tx, patient, Actor.PROFESSIONAL, who.national_id, document_id, False))  # fmt: skip
        return Response(status_code=204)

    @api.post("/patients/{ins}/documents/{document_id}/reveal", status_code=204,
              responses={**doc.NO_CONTENT, **doc.PRO})  # fmt: skip
    async def reveal(
        ins: str, document_id: DocumentId, request: Request, mode: Mode = Mode.NORMAL
    ) -> Response:
        """Make a document invisible to the patient visible to them (for good)."""
        who, patient = await g.professional(request), _ins(ins)
        await service.consult(g.store, lambda tx: service.reveal_to_patient(
            tx, g.settings, patient, who, mode, document_id))  # fmt: skip
        return Response(status_code=204)


def _care_team_routes(api: APIRouter, g: DMPGateway) -> None:
    @api.put("/patients/{ins}/blocked/{national_id}", status_code=204,
             responses={**doc.NO_CONTENT, **doc.PRO})  # fmt: skip
    async def pro_block(ins: str, national_id: NationalId, request: Request) -> Response:
        """A médecin traitant DMP blocks a professional on the patient's behalf."""
        who, patient = await g.professional(request), _ins(ins)
        await g.write(lambda tx: service.set_people(
            tx, patient, Actor.PROFESSIONAL, who.national_id, service.BLOCKED, national_id,
            True))  # fmt: skip
        return Response(status_code=204)

    @api.get("/patients/{ins}/traces", responses={**TRACES_RESPONSES, **doc.PRO})
    async def pro_traces(ins: str, request: Request, format: TraceFormat = "json") -> Response:
        """The history of accesses (médecins traitants DMP): `{"traces": [...]}`, or with
        `format=fhir` a FHIR searchset Bundle of AuditEvent (ANS TDE guide)."""
        who, patient = await g.professional(request), _ins(ins)
        return await _traces(g, request, format, patient, Actor.PROFESSIONAL, who.national_id)


def _patient_document_routes(api: APIRouter, g: DMPGateway) -> None:
    @api.get("/me/documents", responses={
        **doc.answer("the patient's documents' metadata", {"documents": [doc.FOUND]}),
        **doc.PATIENT})  # fmt: skip
    async def my_documents(request: Request) -> Response:
        """The patient's documents (without those invisible to them)."""
        ins = await g.patient(request)
        found = await g.write(lambda tx: service.patient_documents(tx, ins))
        return FastJSONResponse({"documents": found})

    @api.post("/me/documents/{document_id}/{action}", status_code=204,
              responses={**doc.NO_CONTENT, **doc.PATIENT})  # fmt: skip
    async def my_mask(document_id: DocumentId, action: str, request: Request) -> Response:
        """`mask` or `unmask` one of the patient's documents."""
        ins = await g.patient(request)
        if action not in ("mask", "unmask"):
            raise DMPError("l'action est mask ou unmask (the action is mask or unmask)")
        await g.write(lambda tx: service.set_masked(
            tx, ins, Actor.PATIENT, ins, document_id, action == "mask"))  # fmt: skip
        return Response(status_code=204)


def _patient_choice_routes(api: APIRouter, g: DMPGateway) -> None:
    @api.put("/me/{role}/{national_id}", status_code=204,
             responses={**doc.NO_CONTENT, **doc.PATIENT})  # fmt: skip
    async def my_people_add(role: str, national_id: NationalId, request: Request) -> Response:
        """Name a médecin traitant DMP (`treating`) or block a professional (`blocked`)."""
        return await _people(g, request, role, national_id, True)

    @api.delete("/me/{role}/{national_id}", status_code=204,
                responses={**doc.NO_CONTENT, **doc.PATIENT})  # fmt: skip
    async def my_people_remove(role: str, national_id: NationalId, request: Request) -> Response:
        """Remove a médecin traitant DMP or unblock a professional."""
        return await _people(g, request, role, national_id, False)

    @api.patch("/me", status_code=204, responses={**doc.NO_CONTENT, **doc.PATIENT},
               openapi_extra=doc.body_examples(close={"closed": True},
                                               oppose={"oppose_bris_de_glace": True}))  # fmt: skip
    async def my_settings(
        request: Request,
        body: Annotated[dict[str, bool], Body(), doc.described_as(doc.RecordSettings)],
    ) -> Response:
        """Close or reopen the DMP; oppose bris de glace / centre 15:
        {"closed": bool, "oppose_bris_de_glace": bool, "oppose_centre15": bool}."""
        ins = await g.patient(request)
        unknown = set(body) - {"closed", "oppose_bris_de_glace", "oppose_centre15"}
        if unknown:
            raise DMPError(f"réglages inconnus (unknown settings): {', '.join(sorted(unknown))}")
        await g.write(lambda tx: service.set_record(tx, ins, **body))
        return Response(status_code=204)

    @api.get("/me/traces", responses={**TRACES_RESPONSES, **doc.PATIENT})
    async def my_traces(request: Request, format: TraceFormat = "json") -> Response:
        """Who consulted the DMP, what was deposited or changed (nothing of a document
        invisible to the patient): JSON, or `format=fhir` (AuditEvent Bundle)."""
        ins = await g.patient(request)
        return await _traces(g, request, format, ins, Actor.PATIENT, ins)


async def _traces(
    g: DMPGateway, request: Request, format: TraceFormat, ins: str, actor: Actor, actor_id: str
) -> Response:
    """The traces this actor may read, as JSON or as FHIR AuditEvent resources."""
    if format == "json":
        found = await g.read(lambda c: service.read_traces(c, ins, actor, actor_id))
        return JSONResponse({"traces": found})

    def bundle(conn: Conn) -> dict[str, Any]:
        found = service.read_traces(conn, ins, actor, actor_id)
        documents = audit.trace_documents(conn, ins, found)
        site = request.url.hostname or "localhost"
        return audit.audit_bundle(found, ins, documents, site=site, url=str(request.url))

    return JSONResponse(await g.read(bundle), media_type=FHIR_JSON)


async def _people(
    g: DMPGateway, request: Request, role: str, national_id: str, present: bool
) -> Response:
    ins = await g.patient(request)
    if role not in (service.TREATING, service.BLOCKED):
        raise DMPError("le rôle est treating ou blocked (the role is 'treating' or 'blocked')")
    await g.write(lambda tx: service.set_people(
        tx, ins, Actor.PATIENT, ins, role, national_id, present))  # fmt: skip
    return Response(status_code=204)
