"""`create_space`: the patient space as one ASGI app, mounted at `/espace` by the
composition root. Refusals are rendered here, once: a path or query that is not UTF-8
or holds a NUL (`security.http_target`) is refused before any route reads it, with the
space's French page."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from mss.security.http_limits import BodyLimit
from mss.security.http_target import target_problem
from mss.space import pages
from mss.space.deps import SpaceDeps, base_path
from mss.space.errors import LoginRequired, NotFound, SpaceError
from mss.space.headers import MAX_BODY, REFUSAL, SecurityHeaders
from mss.space.render import page

STATIC = Path(__file__).parent / "static"


def create_space(deps: SpaceDeps) -> SecurityHeaders:
    app = FastAPI(
        docs_url=None, redoc_url=None, openapi_url=None, dependencies=[Depends(_sound_target)]
    )
    app.state.deps = deps
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in pages.routers():
        app.include_router(router)
    app.add_exception_handler(SpaceError, _refusal)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    app.add_middleware(BodyLimit, limit=MAX_BODY, refusal=REFUSAL)
    return SecurityHeaders(app)


def _sound_target(request: Request) -> None:
    problem = target_problem(request.scope)
    if problem is not None:
        french, english = problem
        raise SpaceError(
            f"{french[:1].upper()}{french[1:]}.", f"{english[:1].upper()}{english[1:]}."
        )


async def _refusal(request: Request, exc: SpaceError) -> Response:
    if isinstance(exc, LoginRequired) and _wants_page(request):
        target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        return RedirectResponse(f"{base_path(request)}/connexion?suite={target}", status_code=303)
    return _error_page(request, exc)


def _wants_page(request: Request) -> bool:
    return request.method == "GET" and "hx-request" not in request.headers


def _error_page(request: Request, exc: SpaceError) -> HTMLResponse:
    return page(request, "error.html", None, status=exc.status, error=exc)


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    if isinstance(exc.__cause__, SpaceError):  # raised while FastAPI read the form (413)
        return _error_page(request, exc.__cause__)
    if exc.status_code == 404:
        return _error_page(request, NotFound())
    if exc.status_code == 405:
        error = SpaceError(
            "Cette action n'est pas possible ici.", "Method not allowed.", status=405
        )
        return _error_page(request, error)
    return _error_page(
        request, SpaceError("Requête refusée.", str(exc.detail), status=exc.status_code)
    )


async def _invalid(request: Request, exc: RequestValidationError) -> Response:
    fields = ", ".join(str(e.get("loc", ("?",))[-1]) for e in exc.errors())
    error = SpaceError(
        f"Formulaire incomplet ou invalide ({fields}).", f"Invalid form: {fields}.", status=400
    )
    return _error_page(request, error)
