"""The pages before login: `/connexion` (the password, then `/connexion/code`: the
one-time code or TOTP), `/activation` (the operator's code and a first password),
`/mot-de-passe-oublie` (a code by the code channel, then a new password).

The second step of a login is held server-side: the browser only keeps a random token
(a short-lived HttpOnly cookie) whose SHA-256 names the pending code row. Every form
here carries a double-submit CSRF token (`deps.form_token`). A login always makes a new
session token (no fixation): any session cookie the browser had is replaced and ended.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mss.space import accounts
from mss.space.deps import (
    COOKIE,
    Deps,
    FormPosting,
    MaybeViewer,
    base_path,
    form_token,
    set_form_cookie,
    set_session_cookie,
)
from mss.space.errors import SpaceError
from mss.space.render import page
from mss.store.representatives import represented_by
from mss.store.space import end_session, session_id

router = APIRouter()
PENDING_COOKIE = "mss_connexion"
DEVICE_COOKIE = "mss_appareil"
DEVICE_LIFETIME = 400 * 86400  # the longest a browser keeps a cookie
Field = Annotated[str, Form()]
STATES = {
    "active": "Votre espace est activé : connectez-vous.",
    "reinitialise": "Votre mot de passe a été changé : connectez-vous.",
    "deconnecte": "Vous avez été déconnecté.",
}


def form_page(request: Request, name: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """An anonymous form page, with its CSRF token (cookie and hidden field)."""
    token = form_token(request)
    response = page(request, name, None, status=status, csrf=token, **context)
    set_form_cookie(response, request, token)
    return response


def safe_next(request: Request, suite: str) -> str:
    """Where to go after login: a page of the space only (no open redirect)."""
    base = base_path(request)
    if suite.startswith(f"{base}/") and "//" not in suite and "\\" not in suite:
        return suite
    return f"{base}/"


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# --- login ------------------------------------------------------------------------------------


@router.get("/connexion", response_model=None)
async def login_page(
    request: Request, who: MaybeViewer, suite: str = "", etat: str = ""
) -> HTMLResponse:
    """The form, even to a browser with a live session: a cookie planted in it must not
    stand for the patient, who logs in anew (the old session then ends)."""
    notice = STATES.get(etat, "")
    if who is not None and not notice:
        notice = "Vous êtes déjà connecté : vous pouvez vous reconnecter avec un autre compte."
    return form_page(request, "login.html", suite=suite, notice=notice)


@router.post("/connexion", dependencies=[FormPosting], response_model=None)
async def login_post(
    request: Request, deps: Deps, identifiant: Field = "", mot_de_passe: Field = "",
    suite: Field = "",
) -> Response:  # fmt: skip
    try:
        pending = await accounts.login_password(
            deps, identifiant, mot_de_passe, ip=_client(request),
            device=request.cookies.get(DEVICE_COOKIE),
        )  # fmt: skip
    except SpaceError as exc:
        return form_page(request, "login.html", status=exc.status, error=exc, suite=suite,
                         identifier=identifiant)  # fmt: skip
    response = _redirect(f"{base_path(request)}/connexion/code?suite={quote(suite)}")
    response.set_cookie(
        PENDING_COOKIE, pending.token, max_age=deps.code_minutes * 60,
        path=base_path(request) or "/", secure=deps.secure_cookies, httponly=True,
        samesite="strict",
    )  # fmt: skip
    return response


@router.get("/connexion/code", response_model=None)
async def code_page(request: Request, deps: Deps, suite: str = "") -> Response:
    method = await accounts.pending_method(deps, request.cookies.get(PENDING_COOKIE, ""))
    if method is None:
        return _redirect(f"{base_path(request)}/connexion")
    return form_page(request, "login_code.html", method=method, suite=suite)


@router.post("/connexion/code", dependencies=[FormPosting], response_model=None)
async def code_post(request: Request, deps: Deps, code: Field = "", suite: Field = "") -> Response:
    token = request.cookies.get(PENDING_COOKIE, "")
    try:
        done = await accounts.login_code(
            deps, token, code, user_agent=request.headers.get("user-agent", ""),
            ip=_client(request), device=request.cookies.get(DEVICE_COOKIE),
        )  # fmt: skip
    except SpaceError as exc:
        method = await accounts.pending_method(deps, token)
        return form_page(request, "login_code.html", status=exc.status, error=exc,
                         method=method, suite=suite)  # fmt: skip
    if old := request.cookies.get(COOKIE):  # a cookie from before the login: ended
        await deps.store.write(lambda tx: end_session(tx, session_id(old)))
    response = _redirect(await _after_login(request, deps, done.session.record.ins, suite))
    set_session_cookie(response, request, done.session.token)
    response.delete_cookie(PENDING_COOKIE, path=base_path(request) or "/")
    response.set_cookie(
        DEVICE_COOKIE, done.device_cookie, max_age=DEVICE_LIFETIME, path=base_path(request) or "/",
        secure=deps.secure_cookies, httponly=True, samesite="lax",
    )  # fmt: skip
    return response


async def _after_login(request: Request, deps: Deps, ins: str, suite: str) -> str:
    """The page asked for; else, for a representative, the choice of whose space."""
    if suite:
        return safe_next(request, suite)
    day = accounts.today(deps)
    represented = await deps.store.read(lambda c: represented_by(c, ins, day))
    return f"{base_path(request)}/{'choisir' if represented else ''}"


# --- activation and reset ---------------------------------------------------------------------


@router.get("/activation")
async def activation_page(request: Request, identifiant: str = "") -> HTMLResponse:
    return form_page(request, "activation.html", identifier=identifiant)


@dataclass(frozen=True, slots=True)
class PasswordForm:
    """The fields of activation and reset: who, the code they got, the new password."""

    identifier: str
    code: str
    password: str
    confirmation: str


async def password_form(
    identifiant: Field = "", code: Field = "", mot_de_passe: Field = "", confirmation: Field = ""
) -> PasswordForm:
    return PasswordForm(identifiant, code, mot_de_passe, confirmation)


Passwords = Annotated[PasswordForm, Depends(password_form)]


@router.post("/activation", dependencies=[FormPosting], response_model=None)
async def activation_post(request: Request, deps: Deps, form: Passwords) -> Response:
    return await _set_password(request, deps, form, "activation.html", "active")


async def _set_password(
    request: Request, deps: Deps, form: PasswordForm, template: str, state: str
) -> Response:
    """Activation (`state` "active") or reset: the code, then the new password."""
    use = accounts.activate if state == "active" else accounts.reset
    try:
        accounts.check_password_policy(form.password, form.confirmation)
        await use(deps, form.identifier, form.code, form.password, ip=_client(request))
    except SpaceError as exc:
        return form_page(request, template, status=exc.status, error=exc,
                         identifier=form.identifier)  # fmt: skip
    return _redirect(f"{base_path(request)}/connexion?etat={state}")


@router.get("/mot-de-passe-oublie")
async def forgotten_page(request: Request) -> HTMLResponse:
    return form_page(request, "forgotten.html")


@router.post("/mot-de-passe-oublie", dependencies=[FormPosting])
async def forgotten_post(request: Request, deps: Deps, identifiant: Field = "") -> Response:
    try:
        await accounts.request_reset(deps, identifiant)
    except SpaceError as exc:
        return form_page(request, "forgotten.html", status=exc.status, error=exc)
    target = f"{base_path(request)}/mot-de-passe-oublie/code?identifiant={quote(identifiant)}"
    return _redirect(target)


@router.get("/mot-de-passe-oublie/code")
async def reset_page(request: Request, identifiant: str = "") -> HTMLResponse:
    return form_page(request, "reset.html", identifier=identifiant)


@router.post("/mot-de-passe-oublie/code", dependencies=[FormPosting], response_model=None)
async def reset_post(request: Request, deps: Deps, form: Passwords) -> Response:
    return await _set_password(request, deps, form, "reset.html", "reinitialise")
