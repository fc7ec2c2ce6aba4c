"""Paramètres: the professionals blocked and the médecins traitants DMP, the oppositions,
the notifications (preferences, Web Push), the profile (close, reopen) and the export
of the patient's data (`mss/space/choices.py`, `mss/space/export.py`).

Every form works without JavaScript (a POST, then a 303 back to its page); only the
Web Push subscription needs the browser's script (`static/push.js`, `static/sw.js`).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from mss.dmp import service
from mss.space import choices, export
from mss.space.deps import Current, Deps, Posting, base_path
from mss.space.errors import SpaceError
from mss.space.render import page

router = APIRouter(prefix="/parametres")
DONE = {
    "bloque": "L'accès de ce professionnel à votre dossier est bloqué.",
    "debloque": "L'accès de ce professionnel n'est plus bloqué.",
    "mt-ajoute": "Ce médecin est désormais l'un de vos médecins traitants DMP.",
    "mt-retire": "Ce médecin n'est plus l'un de vos médecins traitants DMP.",
    "oppositions": "Vos choix d'accès en urgence sont enregistrés.",
    "notifications": "Vos préférences de notification sont enregistrées.",
    "abonne": "Cet appareil recevra vos notifications.",
    "ferme": "Votre profil est fermé.",
    "rouvert": "Votre profil est rouvert.",
}
PEOPLE = {
    "bloquer": (service.BLOCKED, True, "bloque"),
    "debloquer": (service.BLOCKED, False, "debloque"),
    "medecin-traitant": (service.TREATING, True, "mt-ajoute"),
    "retirer-medecin-traitant": (service.TREATING, False, "mt-retire"),
}


def _to(request: Request, where: str, done: str) -> RedirectResponse:
    path = f"{base_path(request)}/parametres" + (f"/{where}" if where else "")
    return RedirectResponse(f"{path}?fait={done}", status_code=303)


def _show(request: Request, name: str, who: Any, fait: str, **context: Any) -> HTMLResponse:
    return page(request, f"record/{name}.html", who, section="parametres",
                done=DONE.get(fait, ""), **context)  # fmt: skip


@router.get("")
async def index(request: Request, who: Current, deps: Deps, fait: str = "") -> HTMLResponse:
    return _show(request, "settings", who, fait, choices=await choices.choices(deps, who))


# --- professionals -------------------------------------------------------------------------------


@router.get("/professionnels")
async def professionals(
    request: Request, who: Current, deps: Deps, q: str = "", fait: str = ""
) -> HTMLResponse:
    found = await choices.find_professionals(deps, q) if q else []
    return _show(request, "professionals", who, fait, choices=await choices.choices(deps, who),
                 q=q, found=found, searched=bool(q))  # fmt: skip


@router.post("/professionnels/{action}")
async def people(
    request: Request, action: str, who: Posting, deps: Deps,
    professionnel: Annotated[str, Form()] = "",
) -> Response:  # fmt: skip
    if action not in PEOPLE:
        raise SpaceError("Action inconnue.", "Unknown action.", status=404)
    role, present, done = PEOPLE[action]
    await choices.set_person(deps, who, role, professionnel, present)
    return _to(request, "professionnels", done)


@router.post("/oppositions")
async def oppositions(
    request: Request, who: Posting, deps: Deps,
    bris_de_glace: Annotated[str, Form()] = "", centre15: Annotated[str, Form()] = "",
) -> Response:  # fmt: skip
    await choices.set_oppositions(deps, who, bool(bris_de_glace), bool(centre15))
    return _to(request, "", "oppositions")


# --- notifications -------------------------------------------------------------------------------


@router.get("/notifications")
async def notifications(request: Request, who: Current, deps: Deps, fait: str = "") -> HTMLResponse:
    return _show(request, "notifications", who, fait, choices=await choices.choices(deps, who),
                 categories=choices.CATEGORIES, channels=choices.CHANNELS,
                 vapid=deps.vapid_public_key)  # fmt: skip


@router.post("/notifications")
async def preferences(request: Request, who: Posting, deps: Deps) -> Response:
    form = await request.form()
    on = {tuple(str(v).split(":", 1)) for v in form.getlist("choix") if ":" in str(v)}
    await choices.set_preferences(deps, who, {(a, b) for a, b in on})
    return _to(request, "notifications", "notifications")


@router.post("/notifications/push")
async def push(request: Request, who: Posting, deps: Deps) -> Response:
    """A browser's subscription (`PushSubscription.toJSON()` as JSON, or a form)."""
    endpoint, p256dh, auth = await _subscription(request)
    await choices.subscribe(deps, who, endpoint, p256dh, auth)
    if request.headers.get("content-type", "").startswith("application/json"):
        return Response(status_code=204)
    return _to(request, "notifications", "abonne")


async def _subscription(request: Request) -> tuple[str, str, str]:
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = json.loads(await request.body())
            keys = body.get("keys") or {}
            return str(body["endpoint"]), str(keys["p256dh"]), str(keys["auth"])
        except (ValueError, KeyError, TypeError, AttributeError):
            raise SpaceError("Abonnement illisible.", "Malformed subscription.") from None
    form = await request.form()
    return str(form.get("endpoint", "")), str(form.get("p256dh", "")), str(form.get("auth", ""))


# --- the profile and the export ------------------------------------------------------------------


@router.get("/profil/fermer")
async def confirm_close(request: Request, who: Current, deps: Deps) -> HTMLResponse:
    return _show(request, "close", who, "", choices=await choices.choices(deps, who))


@router.post("/profil/fermer")
async def close(
    request: Request, who: Posting, deps: Deps, confirmer: Annotated[str, Form()] = ""
) -> Response:
    if confirmer != "oui":
        raise SpaceError("Cochez la case pour confirmer la fermeture de votre profil.",
                         "Closing the profile needs the confirmation box ticked.")  # fmt: skip
    await choices.set_profile(deps, who, open_=False)
    return _to(request, "", "ferme")


@router.post("/profil/rouvrir")
async def reopen(request: Request, who: Posting, deps: Deps) -> Response:
    await choices.set_profile(deps, who, open_=True)
    return _to(request, "", "rouvert")


@router.get("/export")
async def download_export(who: Current, deps: Deps) -> StreamingResponse:
    chunks = await export.export(deps, who)
    name = export.export_name(deps)
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}
    return StreamingResponse(chunks, media_type="application/zip", headers=headers)
