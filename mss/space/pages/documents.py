"""Documents: the DMP documents the viewer may see, by category; download; mask and
unmask; the patient's own documents added from the space (`mss/space/record.py`)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mss.space import record
from mss.space.deps import Current, Deps, Posting, base_path
from mss.space.errors import SpaceError
from mss.space.render import page

router = APIRouter()
# A document is the professional's file: downloaded, never run in the space's origin.
DOCUMENT_CSP = "sandbox; default-src 'none'; frame-ancestors 'none'"
DONE = {
    "masque": "Le document est masqué aux professionnels (sauf son auteur et vos médecins "
    "traitants DMP).",
    "visible": "Le document est de nouveau visible des professionnels autorisés.",
    "ajoute": "Votre document a été ajouté.",
}


def _back(request: Request, done: str) -> RedirectResponse:
    return RedirectResponse(f"{base_path(request)}/documents?fait={done}", status_code=303)


@router.get("/documents")
async def documents(request: Request, who: Current, deps: Deps, fait: str = "") -> HTMLResponse:
    found = await record.documents(deps, who)
    return page(request, "record/documents.html", who, section="documents", categories=found,
                types=record.PATIENT_TYPES, done=DONE.get(fait, ""),
                max_mb=deps.attachment_max // (1024 * 1024))  # fmt: skip


@router.get("/documents/{document_id}")
async def download(document_id: str, who: Current, deps: Deps) -> Response:
    found = await record.download(deps, who, record.id_of(document_id))
    disposition = (
        f"attachment; filename=\"{found.filename}\"; filename*=UTF-8''{quote(found.filename)}"
    )
    return Response(found.content, media_type=found.media_type, headers={
        "Content-Disposition": disposition, "Cache-Control": "no-store",
        "Content-Security-Policy": DOCUMENT_CSP})  # fmt: skip


@router.post("/documents/{document_id}/masquer")
async def mask(request: Request, document_id: str, who: Posting, deps: Deps) -> Response:
    await record.set_masked(deps, who, record.id_of(document_id), True)
    return _back(request, "masque")


@router.post("/documents/{document_id}/demasquer")
async def unmask(request: Request, document_id: str, who: Posting, deps: Deps) -> Response:
    await record.set_masked(deps, who, record.id_of(document_id), False)
    return _back(request, "visible")


@router.post("/documents/ajouter")
async def add(
    request: Request,
    who: Posting,
    deps: Deps,
    fichier: Annotated[UploadFile, File()],
    titre: Annotated[str, Form()] = "",
    categorie: Annotated[str, Form()] = "",
) -> Response:
    content = await fichier.read(deps.attachment_max + 1)
    if len(content) > deps.attachment_max:
        mb = deps.attachment_max // (1024 * 1024)
        raise SpaceError(f"Le fichier dépasse {mb} Mo.", f"The file is larger than {mb} MB.",
                         status=413)  # fmt: skip
    await record.add_own_document(deps, who, content, titre, categorie)
    return _back(request, "ajoute")
