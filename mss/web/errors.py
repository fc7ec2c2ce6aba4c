"""The web's error boundary: one exception handler per kind of error, registered once
on the app (`install`), so that routes raise and never render errors themselves.

- `Unauthorized` (no or bad credentials): 401 with `WWW-Authenticate`;
- `Throttled` (too many failed logins): 429 `{"error": "TooManyAttempts", ...}`;
- a DMP refusal (`DMPError`): `{"error": "<DMPErrorName>", "detail": "<French text>"}`
  with 404 (patient not found), 409 (DMP closed), 403 (forbidden, no or expired
  authorisation), 422 (a document that cannot be read or deposited), else 400;
- bad input (`InputError`): 400 `{"detail": ...}` (a request FastAPI cannot
  validate stays FastAPI's 422);
- anything else: its traceback logged, 500 without details.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from mss.dmp.errors import (
    DMPAccessForbidden,
    DMPAuthorizationExpired,
    DMPAuthorizationNotFound,
    DMPClosed,
    DMPError,
    DMPPatientNotFound,
    DocumentError,
)
from mss.errors import InputError, MssError

log = logging.getLogger("mss.web")

DMP_STATUS = {
    DMPPatientNotFound: 404, DMPClosed: 409, DMPAccessForbidden: 403,
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


async def _bad_input(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=400)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse(
        {"error": "InternalError", "detail": "erreur interne du serveur (internal server error)"},
        status_code=500,
    )


def install(app: FastAPI) -> None:
    """Register the handlers on the app (once, where it is created)."""
    app.add_exception_handler(Unauthorized, _unauthorized)
    app.add_exception_handler(Throttled, _throttled)
    app.add_exception_handler(DMPError, _dmp_refusal)
    app.add_exception_handler(InputError, _bad_input)
    app.add_exception_handler(Exception, _unexpected)
