"""The logged-in account's security: `/appareils` (its sessions — this device, the
browser, the last use — each can be ended) and `/securite` (TOTP enrolment: the secret
and the otpauth URI shown as text, no QR service; a new password)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from mss.space import accounts
from mss.space.deps import Current, Deps, Posting, Viewer, base_path, clear_session_cookie
from mss.space.errors import NotFound, SpaceError
from mss.space.render import page
from mss.store.space import revoke_session, sessions_of

router = APIRouter()
PARIS = ZoneInfo("Europe/Paris")
Field = Annotated[str, Form()]


def own_ins(who: Viewer) -> str:
    """The INS of who logged in (a representative's own, whatever space they show)."""
    return who.account.partition("@")[0]


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


@router.get("/appareils")
async def devices(request: Request, who: Current, deps: Deps) -> HTMLResponse:
    now = deps.now()
    sessions = await deps.store.read(lambda c: sessions_of(c, who.account, now))
    rows = [(s, when(s.last_seen)) for s in sessions]
    return page(request, "devices.html", who, section="appareils", sessions=rows)


def when(seconds: int) -> str:
    """A moment as a patient in France reads it: « 06/12/2026 à 09:15 »."""
    moment = dt.datetime.fromtimestamp(seconds, PARIS)
    return moment.strftime("%d/%m/%Y à %H:%M")


@router.post("/appareils/{sid}/retirer")
async def revoke(request: Request, sid: str, who: Posting, deps: Deps) -> RedirectResponse:
    if not await deps.store.write(lambda tx: revoke_session(tx, who.account, sid)):
        raise NotFound()
    if sid == who.session_id:
        response = _redirect(f"{base_path(request)}/connexion?etat=deconnecte")
        clear_session_cookie(response, request)
        return response
    return _redirect(f"{base_path(request)}/appareils")


@router.get("/securite")
async def security(request: Request, who: Current, deps: Deps) -> HTMLResponse:
    state = await accounts.totp_state(deps, own_ins(who))
    return page(request, "security.html", who, section="appareils", totp=state)


@router.post("/securite/totp")
async def totp_start(
    request: Request, who: Posting, deps: Deps, actuel: Field = ""
) -> HTMLResponse:
    """A new key to enrol (the password asked while another is in service)."""
    try:
        enrolment = await accounts.start_totp(deps, own_ins(who), who.account, actuel)
    except SpaceError as exc:
        return await _security_error(request, who, deps, exc)
    return page(request, "totp.html", who, section="appareils", enrolment=enrolment)


@router.post("/securite/totp/confirmer", response_model=None)
async def totp_confirm(
    request: Request, who: Posting, deps: Deps, code: Field = ""
) -> HTMLResponse | RedirectResponse:
    if await accounts.confirm_totp(deps, own_ins(who), code):
        return _redirect(f"{base_path(request)}/securite")
    return await _security_error(request, who, deps, accounts.WRONG_CODE)


@router.post("/securite/totp/retirer", response_model=None)
async def totp_remove(
    request: Request, who: Posting, deps: Deps, actuel: Field = ""
) -> HTMLResponse | RedirectResponse:
    try:
        await accounts.remove_totp(deps, own_ins(who), actuel)
    except SpaceError as exc:
        return await _security_error(request, who, deps, exc)
    return _redirect(f"{base_path(request)}/securite")


async def _security_error(
    request: Request, who: Viewer, deps: Deps, error: SpaceError
) -> HTMLResponse:
    state = await accounts.totp_state(deps, own_ins(who))
    return page(request, "security.html", who, section="appareils", totp=state,
                error=error, status=error.status)  # fmt: skip


@router.post("/securite/mot-de-passe", response_model=None)
async def change_password(
    request: Request, who: Posting, deps: Deps, actuel: Field = "", nouveau: Field = "",
    confirmation: Field = "",
) -> HTMLResponse | RedirectResponse:  # fmt: skip
    """A new password ends every session of the account, this one too: log in again."""
    try:
        await accounts.change_password(deps, own_ins(who), actuel, nouveau, confirmation)
    except SpaceError as exc:
        return await _security_error(request, who, deps, exc)
    response = _redirect(f"{base_path(request)}/connexion?etat=reinitialise")
    clear_session_cookie(response, request)
    return response
