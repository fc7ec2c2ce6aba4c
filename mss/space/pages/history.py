"""Historique: the accesses, deposits and changes to the record and the notifications
sent, in plain French, by pages (`mss/space/history.py`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from mss.space import history
from mss.space.deps import Current, Deps
from mss.space.render import page

router = APIRouter()


@router.get("/historique")
async def show(
    request: Request, who: Current, deps: Deps, numero: Annotated[int, Query(ge=1)] = 1
) -> HTMLResponse:
    found = await history.history(deps, who, numero)
    return page(request, "record/history.html", who, section="historique", history=found)
