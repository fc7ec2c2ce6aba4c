"""The FastAPI application: routes only; what they need is passed in by `app`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse

HealthCheck = Callable[[], Awaitable[dict[str, str]]]
MetricsSource = Callable[[], str]


def create_app(*, health: HealthCheck, metrics: MetricsSource, version: str) -> FastAPI:
    app = FastAPI(title="mss", version=version, docs_url=None, redoc_url=None)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        """200 when every component answers, 503 otherwise, with each component's state."""
        checks = await health()
        ok = all(state == "ok" for state in checks.values())
        return JSONResponse(
            {"status": "ok" if ok else "degraded", **checks}, status_code=200 if ok else 503
        )

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics_endpoint() -> str:
        """Prometheus text exposition format."""
        return metrics()

    return app
