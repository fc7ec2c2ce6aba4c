"""The FastAPI application: routes only; what they need is passed in by `app`. Errors
are rendered at one boundary, the handlers of `web/errors.py` registered here."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse
from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from mss import logs
from mss.security.http_limits import BodyLimit
from mss.web import annuaire, autoconfig, docs, errors
from mss.web import dmp as dmp_routes
from mss.web.annuaire import Reader
from mss.web.autoconfig import ClientSetup
from mss.web.dmp import DMPGateway
from mss.web.errors import API_MAX_BODY, TargetCheck

DESCRIPTION = (
    "MSSanté operator: the annuaire (JSON under `/api/annuaire/`, FHIR R4 under `/fhir/v2/`), "
    "the DMP (`/api/dmp/`: professionals by Pro Santé Connect bearer token or certificate, "
    "patients by HTTP Basic), mail clients' autoconfig, health and metrics. Refusals are "
    'JSON `{"error": <name>, "detail": <French text (English meaning)>}`; under `/fhir/`, '
    "a FHIR OperationOutcome."
)
HealthCheck = Callable[[], Awaitable[dict[str, str]]]
MetricsSource = Callable[[], Awaitable[str]]
HEALTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Every component answers",
          "content": {"application/json": {"example": {"status": "ok", "database": "ok"}}}},
    503: {"description": "A component does not answer",
          "content": {"application/json": {"example": {"status": "degraded",
                                                       "database": "unreachable"}}}},
}  # fmt: skip


def create_asgi(
    *, health: HealthCheck, metrics: MetricsSource, version: str, read: Reader[Any] | None = None,
    dmp: DMPGateway | None = None, space: ASGIApp | None = None,
    clients: ClientSetup | None = None,
) -> ASGIApp:  # fmt: skip
    """The app to serve: the FastAPI app behind the annuaire's fast path, with the
    patient space (`space`, built by the composition root) at `/espace/`, and the
    autoconfig of mail clients (`clients`)."""
    app = create_app(health=health, metrics=metrics, version=version, read=read)
    if dmp is not None:
        app.include_router(dmp_routes.router(dmp))
    if clients is not None:
        app.include_router(autoconfig.router(clients))
    if space is not None:
        app.router.routes.append(_space_mount(space))

        @app.get("/", include_in_schema=False)
        async def root() -> RedirectResponse:
            return RedirectResponse("/espace/", status_code=307)

    served: ASGIApp = app if read is None else annuaire.MailboxFastPath(app, read)
    return RequestIds(BodyLimit(TargetCheck(served), API_MAX_BODY, errors.BODY_REFUSAL))


class RequestIds:
    """Each HTTP request's log lines carry its own id (`mss.logs`): uvicorn serves
    each request in its own task."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            logs.begin("http")
        await self.app(scope, receive, send)


def _space_mount(space: ASGIApp) -> Mount:
    """`/espace` and everything under it, a path holding a line break included (it is
    the space's to refuse, with its French page)."""
    mount = Mount("/espace", app=space)
    mount.path_regex = re.compile(mount.path_regex.pattern, re.DOTALL)
    return mount


def create_app(
    *, health: HealthCheck, metrics: MetricsSource, version: str, read: Reader[Any] | None = None
) -> FastAPI:
    app = FastAPI(
        title="mss",
        version=version,
        description=DESCRIPTION,
        docs_url=None,  # served by `docs`, with vendored assets
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    errors.install(app)
    docs.install(app)
    if read is not None:
        app.include_router(annuaire.router(read))

    @app.get("/healthz", tags=["operations"], responses=HEALTH_RESPONSES)
    async def healthz() -> JSONResponse:
        """200 when every component answers, 503 otherwise, with each component's state."""
        checks = await health()
        ok = all(state == "ok" for state in checks.values())
        return JSONResponse(
            {"status": "ok" if ok else "degraded", **checks}, status_code=200 if ok else 503
        )

    @app.get("/metrics", response_class=PlainTextResponse, tags=["operations"])
    async def metrics_endpoint() -> str:
        """Prometheus text exposition format."""
        return await metrics()

    return app
