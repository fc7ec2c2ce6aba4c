"""The space's front door: the messagerie once logged in, else the login page; logout."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from mss.space.deps import Deps, MaybeViewer, Posting, base_path, clear_session_cookie
from mss.store.space import end_session

router = APIRouter()


@router.get("/")
async def home(request: Request, who: MaybeViewer) -> RedirectResponse:
    target = "connexion" if who is None else "parametres" if who.closed else "messages"
    return RedirectResponse(f"{base_path(request)}/{target}", status_code=303)


@router.post("/deconnexion")
async def logout(request: Request, who: Posting, deps: Deps) -> RedirectResponse:
    await deps.store.write(lambda tx: end_session(tx, who.session_id))
    response = RedirectResponse(f"{base_path(request)}/connexion", status_code=303)
    clear_session_cookie(response, request)
    return response
