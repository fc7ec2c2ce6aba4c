"""Pages: the Jinja2 templates (autoescaped) and the one function that renders them, with
what every page shows (the patient's address, the CSRF token) and `no-store`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from mss.space.deps import SpaceDeps, Viewer, base_path

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")


def page(
    request: Request, name: str, who: Viewer | None, *, status: int = 200, **context: Any
) -> HTMLResponse:
    """Render `name` for `who` (None: not logged in); never cached (health data)."""
    deps: SpaceDeps = request.app.state.deps
    values = {
        "viewer": who,
        "base": base_path(request),
        "address": deps.address_of(who.ins) if who else "",
        "service_name": deps.service_name,
        **context,
    }
    response = TEMPLATES.TemplateResponse(request, name, values, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    return response
