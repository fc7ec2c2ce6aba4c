"""`/choisir`: a legal representative chooses whose space they see — their own, or that
of a patient they act for today (a link not ended, a minor not yet of age)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from mss.space import accounts
from mss.space.deps import Current, Deps, Posting, base_path
from mss.space.errors import NotFound, SpaceError
from mss.space.pages.devices import own_ins
from mss.space.render import page
from mss.store.representatives import may_act_for, represented_by
from mss.store.space import switch_session
from mss.store.space_patients import patient_login

router = APIRouter()
CLOSED_SPACE = SpaceError(
    "Le compte ou le profil de ce patient est fermé : son espace n'est plus accessible.",
    "This patient's account or profile is closed: their space cannot be shown.",
    status=403,
)


@router.get("/choisir")
async def choose(request: Request, who: Current, deps: Deps) -> HTMLResponse:
    day = accounts.today(deps)
    links = await deps.store.read(lambda c: represented_by(c, own_ins(who), day))
    return page(request, "choose.html", who, own=own_ins(who), links=links)


@router.post("/choisir")
async def chosen(
    request: Request, who: Posting, deps: Deps, ins: Annotated[str, Form()] = ""
) -> RedirectResponse:
    """Show `ins`'s space in this session; 404 for a patient not represented today, 403
    for one whose account or profile is closed (a representative sees no closed space)."""
    own, day = own_ins(who), accounts.today(deps)
    if ins != own and not await deps.store.read(lambda c: may_act_for(c, own, ins, day)):
        raise NotFound()
    shown = await deps.store.read(lambda c: patient_login(c, ins))
    if ins != own and (shown is None or shown.disabled or shown.profile_status != "active"):
        raise CLOSED_SPACE
    await deps.store.write(lambda tx: switch_session(tx, who.session_id, ins, ins != own))
    return RedirectResponse(f"{base_path(request)}/", status_code=303)
