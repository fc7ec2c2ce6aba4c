"""What the pages need, built by the composition root (`SpaceDeps`), and the request
dependencies every route uses: `viewer` (who is logged in, and whose space they see) and
`check_csrf` (every POST)."""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import logging
import secrets
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request, Response

from mss.delivery.inbound import Pipeline
from mss.security.auth import LoginService
from mss.space.errors import BAD_CSRF, LoginRequired, SpaceError
from mss.store.accounts import get_patient
from mss.store.api import Store
from mss.store.representatives import may_act_for
from mss.store.space import SessionRecord, find_session, touch_session
from mss.store.space_patients import session_facts
from mss.store.sql import Conn

log = logging.getLogger(__name__)

COOKIE = "mss_espace"
FORM_COOKIE = "mss_formulaire"  # the CSRF token of the forms shown before login
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
TOUCH_EVERY = 60  # seconds: the idle clock is moved at most once a minute


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking: `account` logged in (a patient's address); `ins` is whose space is
    shown (theirs, or, for a legal representative, the patient they act for)."""

    account: str
    ins: str
    representative: bool
    session_id: str
    csrf: str
    name: str = ""  # for a representative: the name of the patient they act for
    closed: bool = False  # the patient's own profile is closed: only its reopening is open


@dataclass
class SpaceDeps:
    """Everything the space uses, passed in by the composition root (no settings read)."""

    store: Store
    logins: LoginService
    patient_domain: str
    pipeline: Pipeline | None = None
    idle_timeout: int = 1800
    absolute_timeout: int = 43200
    code_minutes: int = 10
    attachment_max: int = 5 * 1024 * 1024
    new_message_to_professionals: bool = True
    secure_cookies: bool = True
    vapid_public_key: str = ""
    service_name: str = "Mon espace santé"
    dmp_settings: Any = None  # mss.dmp.service.Settings
    clock: Callable[[], float] = time.time
    # Argon2id checks at once (19 MiB each), off the event loop: the space's own bound
    hashing: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(2))
    purged: int = 0  # when the space last forgot its dead codes and sessions
    background: set[asyncio.Task[object]] = field(default_factory=set)

    def now(self) -> int:
        return int(self.clock())

    def address_of(self, ins: str) -> str:
        return f"{ins}@{self.patient_domain}"

    def in_background(self, work: Coroutine[Any, Any, object]) -> None:
        """Run `work` without making the page wait for it (the idle clock of a session:
        a page need not wait for a commit to show); a failure is logged."""
        task = asyncio.get_running_loop().create_task(work)
        self.background.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[object]) -> None:
        self.background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("a background write of the space failed: %s", task.exception())


def base_path(request: Request) -> str:
    """Where the space is mounted (`/espace`), for links, forms and the cookie's path."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def set_session_cookie(response: Response, request: Request, token: str) -> None:
    """The session's cookie: HttpOnly, Secure, SameSite=Lax (the links of notices must
    open the space logged in; every POST carries its CSRF token), the space's path only."""
    deps = space_deps(request)
    response.set_cookie(
        COOKIE, token, max_age=deps.absolute_timeout, path=base_path(request) or "/",
        secure=deps.secure_cookies, httponly=True, samesite="lax",
    )  # fmt: skip


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(COOKIE, path=base_path(request) or "/")


def space_deps(request: Request) -> SpaceDeps:
    deps: SpaceDeps = request.app.state.deps
    return deps


Deps = Annotated[SpaceDeps, Depends(space_deps)]


async def optional_viewer(request: Request, deps: Deps) -> Viewer | None:
    """The live session of the request's cookie, if any (its idle clock moved)."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    now = deps.now()
    live = await deps.store.read(lambda c: _live_session(c, token, now, deps.idle_timeout))
    if live is None:
        return None
    found, name, closed = live
    if now - found.last_seen >= TOUCH_EVERY:
        deps.in_background(deps.store.write(lambda tx: touch_session(tx, found.id, now)))
    return Viewer(
        found.account, found.ins, found.representative, found.id, found.csrf, name, closed
    )


Live = tuple[SessionRecord, str, bool]  # the session, the represented name, profile closed


def _live_session(conn: Conn, token: str, now: int, idle: int) -> Live | None:
    """The session, checked at every request (indexed queries): none if the patient it
    shows is switched off by the operator; a representative's, none either if that
    patient's profile is not active or they no longer act for them (the link ended, the
    minor came of age); the patient's own on a profile not active (they closed it, this
    session stayed open) is marked closed: only reopening it and logging out remain."""
    found = find_session(conn, token, now, idle)
    shown = None if found is None else session_facts(conn, found.ins)
    if found is None or shown is None or shown.address is None or shown.operator_disabled:
        return None
    closed = shown.disabled or shown.profile_status != "active"
    if not found.representative:
        return found, "", closed
    if closed:
        return None
    day = dt.datetime.fromtimestamp(now, dt.UTC).date()
    representative = found.account.partition("@")[0]
    if not may_act_for(conn, representative, found.ins, day):
        return None
    patient = get_patient(conn, found.ins)
    return found, patient.name if patient else "", False


# What a closed profile still shows its patient's session: the settings, to reopen it,
# and the export of their own data (theirs to take away)
OPEN_WHEN_CLOSED = frozenset(
    {"/parametres", "/parametres/profil/rouvrir", "/parametres/export", "/deconnexion"}
)
PROFILE_CLOSED = SpaceError(
    "Votre profil est fermé : vous pouvez le rouvrir depuis les Paramètres.",
    "Your profile is closed: you may reopen it from the settings.",
    status=403,
)


async def viewer(
    request: Request, current: Annotated[Viewer | None, Depends(optional_viewer)]
) -> Viewer:
    if current is None:
        raise LoginRequired()
    route = getattr(request.scope.get("route"), "path", "")
    if current.closed and route not in OPEN_WHEN_CLOSED:
        raise PROFILE_CLOSED
    return current


async def check_csrf(request: Request, who: Annotated[Viewer, Depends(viewer)]) -> Viewer:
    """The viewer, once the POST's token (form field or htmx header) is theirs."""
    sent = request.headers.get(CSRF_HEADER) or await _form_token(request)
    if not sent or not hmac.compare_digest(sent.encode(), who.csrf.encode()):
        raise BAD_CSRF
    return who


async def _form_token(request: Request) -> str:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return ""
    form = await request.form()
    value = form.get(CSRF_FIELD)
    return value if isinstance(value, str) else ""


Current = Annotated[Viewer, Depends(viewer)]
Posting = Annotated[Viewer, Depends(check_csrf)]
MaybeViewer = Annotated[Viewer | None, Depends(optional_viewer)]


# --- forms before login (login, activation, reset): a double-submit CSRF token ---------------


def form_token(request: Request) -> str:
    """The token the anonymous forms carry: the browser's form cookie, or a new one."""
    return request.cookies.get(FORM_COOKIE) or secrets.token_urlsafe(32)


def set_form_cookie(response: Response, request: Request, token: str) -> None:
    secure = space_deps(request).secure_cookies
    response.set_cookie(
        FORM_COOKIE, token, path=base_path(request) or "/", secure=secure, httponly=True,
        samesite="strict",
    )  # fmt: skip


async def check_form_csrf(request: Request) -> None:
    """An anonymous POST: its `csrf` field must equal the form cookie (SameSite=Strict)."""
    cookie = request.cookies.get(FORM_COOKIE, "")
    sent = await _form_token(request)
    if not cookie or not sent or not hmac.compare_digest(sent.encode(), cookie.encode()):
        raise BAD_CSRF


FormPosting = Depends(check_form_csrf)
