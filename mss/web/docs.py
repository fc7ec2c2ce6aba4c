"""The API's documentation page, `/api/docs`: Swagger UI served by mss itself, assets
vendored under `web/static/` (swagger-ui-dist, Apache-2.0, see its VERSION file), so that
it works on a closed network. No inline script: the page and its assets carry a strict
Content-Security-Policy (scripts, styles and requests to this origin only)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC = Path(__file__).parent / "static"
DOCS_PATH = "/api/docs"
STATIC_PATH = "/api/static"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff"}
PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mss API</title>
<link rel="stylesheet" href="{STATIC_PATH}/swagger-ui/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{STATIC_PATH}/swagger-ui/swagger-ui-bundle.js"></script>
<script src="{STATIC_PATH}/api-docs.js"></script>
</body>
</html>
"""


class _WithHeaders:
    """The vendored assets, with the page's security headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: FastAPI) -> None:
    """`/api/docs` and its assets under `/api/static/` (left out of the OpenAPI)."""
    app.mount(STATIC_PATH, _WithHeaders(StaticFiles(directory=STATIC)), name="api-static")

    @app.get(DOCS_PATH, include_in_schema=False)
    async def api_docs() -> HTMLResponse:
        return HTMLResponse(PAGE, headers=HEADERS)
