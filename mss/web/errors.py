"""The web's error boundary: one exception handler per kind of error, registered once
on the app (`install`), so that routes raise and never render errors themselves.

- `Unauthorized` (no or bad credentials): 401 with `WWW-Authenticate`;
- `Throttled` (too many failed logins): 429 `{"error": "TooManyAttempts", ...}`;
- a DMP refusal (`DMPError`): `{"error": "<DMPErrorName>", "detail": "<French text>"}`
  with 404 (patient or document not found), 409 (DMP closed), 403 (forbidden, no or expired
  authorisation), 422 (a document that cannot be read or deposited), else 400;
- bad input (`InputError`): 400 `{"detail": ...}`;
- a request the routes cannot take (a parameter FastAPI cannot validate: 422; a
  target that is not UTF-8 or holds a NUL, `TargetCheck`: 400; no such route: 404, or
  method: 405): in the format of its route family (`refusal`) — a FHIR
  OperationOutcome under `/fhir/`, else the API's JSON `{"error", "detail"}` in French
  with the English meaning; the patient space (`/espace/`) renders its own;
- anything else: its traceback logged, 500 without details.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from mss.annuaire.fhir import operation_outcome
from mss.dmp.errors import (
    DMPAccessForbidden,
    DMPAuthorizationExpired,
    DMPAuthorizationNotFound,
    DMPClosed,
    DMPDocumentNotFound,
    DMPError,
    DMPPatientNotFound,
    DocumentError,
)
from mss.errors import InputError, MssError
from mss.security.http_target import target_problem

log = logging.getLogger("mss.web")

DMP_STATUS = {
    DMPPatientNotFound: 404, DMPDocumentNotFound: 404, DMPClosed: 409, DMPAccessForbidden: 403,
    DMPAuthorizationNotFound: 403, DMPAuthorizationExpired: 403, DocumentError: 422,
}  # fmt: skip


# A document of the MSSanté limit (25 MB) in base64 inside JSON, and the rest of its call
API_MAX_BODY = 40 * 1024 * 1024
BODY_TOO_LARGE_TEXT = (
    f"corps de requête trop volumineux, {API_MAX_BODY // (1024 * 1024)} Mo au plus"
    " (request body too large)"
)
# The refusal of `security.http_limits.BodyLimit`, before anything reads the body
BODY_REFUSAL = (
    b"application/json",
    json.dumps({"error": "PayloadTooLarge", "detail": BODY_TOO_LARGE_TEXT}).encode(),
)


class Unauthorized(MssError):
    """The request names nobody we know: `scheme` says which credentials to send."""

    def __init__(self, text: str, scheme: str) -> None:
        super().__init__(text)
        self.text = text
        self.scheme = scheme


async def _unauthorized(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Unauthorized)
    return JSONResponse(
        {"error": "Unauthorized", "detail": exc.text},
        status_code=401,
        headers={"WWW-Authenticate": f'{exc.scheme} realm="mss-dmp"'},
    )


class Throttled(MssError):
    """The login throttle refused the credentials without checking them."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


async def _throttled(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Throttled)
    return JSONResponse({"error": "TooManyAttempts", "detail": exc.text}, status_code=429)


async def _dmp_refusal(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DMPError)
    status = next((code for kind, code in DMP_STATUS.items() if isinstance(exc, kind)), 400)
    body: dict[str, Any] = {"error": exc.name, "detail": exc.text}
    if isinstance(exc, DocumentError):
        body["mdn_code"] = exc.mdn_code
    return JSONResponse(body, status_code=status)


FHIR_PREFIX = "/fhir/"
FHIR_JSON = "application/fhir+json; charset=utf-8"
# HTTP status → (the API's error name, the FHIR issue code)
KINDS = {
    400: ("InvalidRequest", "invalid"), 404: ("NotFound", "not-found"),
    405: ("MethodNotAllowed", "not-supported"), 406: ("NotAcceptable", "not-supported"),
    422: ("InvalidRequest", "invalid"), 500: ("InternalError", "exception"),
}  # fmt: skip
TEXTS = {
    404: "aucune ressource à cette adresse (not found)",
    405: "méthode non permise à cette adresse (method not allowed)",
    500: "erreur interne du serveur (internal server error)",
}


def refusal(path: str, status: int, text: str) -> JSONResponse:
    """A refusal in the format of the route family of `path`: a FHIR OperationOutcome
    under `/fhir/`, else the API's `{"error": <name>, "detail": <text>}`."""
    name, code = KINDS.get(status, ("InvalidRequest", "invalid"))
    if path.startswith(FHIR_PREFIX):
        return JSONResponse(operation_outcome(text, code), status, media_type=FHIR_JSON)
    return JSONResponse({"error": name, "detail": text}, status)


async def _bad_input(request: Request, exc: Exception) -> JSONResponse:
    if request.url.path.startswith(FHIR_PREFIX):
        return refusal(request.url.path, 400, str(exc))
    return JSONResponse({"detail": str(exc)}, status_code=400)


def _invalid_text(exc: RequestValidationError) -> str:
    """Which parameters are wrong and why, in French with the English meaning."""
    wrong = []
    for error in exc.errors():
        where = [str(part) for part in error.get("loc", ()) if part not in ("query", "path")]
        wrong.append(f"{'.'.join(where) or '?'}: {error.get('msg', 'invalid')}")
    return f"paramètre invalide ou hors limites (invalid parameter): {'; '.join(wrong)}"


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    path = request.url.path
    return refusal(path, 400 if path.startswith(FHIR_PREFIX) else 422, _invalid_text(exc))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    text = TEXTS.get(exc.status_code) or f"requête refusée ({exc.detail})"
    response = refusal(request.url.path, exc.status_code, text)
    response.headers.update(exc.headers or {})
    return response


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return refusal(request.url.path, 500, TEXTS[500])


class TargetCheck:
    """Refuses a request whose path or query is not UTF-8 or holds a NUL
    (`security.http_target`) before any route reads it: 400 in the format of its route
    family. The patient space (`/espace`) checks and renders its own."""

    def __init__(self, app: ASGIApp, spared: str = "/espace") -> None:
        self.app = app
        self.spared = spared

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        problem = target_problem(scope) if scope["type"] == "http" else None
        if problem is None or path == self.spared or path.startswith(self.spared + "/"):
            await self.app(scope, receive, send)
            return
        french, english = problem
        log.info("refused %s: %s", scope["method"], english)
        await refusal(path, 400, f"{french} ({english})")(scope, receive, send)


def install(app: FastAPI) -> None:
    """Register the handlers on the app (once, where it is created)."""
    app.add_exception_handler(Unauthorized, _unauthorized)
    app.add_exception_handler(Throttled, _throttled)
    app.add_exception_handler(DMPError, _dmp_refusal)
    app.add_exception_handler(InputError, _bad_input)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
