"""The messagerie's pages: the conversations, one conversation (read, reply), a new message
to a professional who wrote to the patient, the sandboxed frame of an HTML mail, and the
attachments (download, preview, filing into the patient's documents). Every form works
without JavaScript; every POST goes through `Posting` (CSRF)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from mss.space import mail, mail_send
from mss.space.deps import Current, Deps, Posting, base_path
from mss.space.headers import MAIL_FRAME_CSP
from mss.space.mail_content import disposition
from mss.space.render import page

router = APIRouter()
# An attachment shown by the browser itself: nothing of ours runs around it.
PREVIEW_CSP = (
    "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; object-src 'self'"
)


async def _uploads(request: Request, deps: Deps) -> list[mail_send.Upload]:
    """The files of the form's `pieces` field (a browser sends an empty part when none is
    chosen), each read no further than just past the limit."""
    found: list[mail_send.Upload] = []
    for upload in (await request.form()).getlist("pieces"):
        if not isinstance(upload, UploadFile):
            continue
        data = await upload.read(deps.attachment_max + 1)
        if upload.filename or data:
            found.append(mail_send.Upload(upload.filename or "", data))
    return found


PageNumber = Annotated[int, Query(alias="page", ge=1, le=100_000)]


def _peer(request: Request) -> str | None:
    return request.client.host if request.client else None


@router.get("/messages")
async def inbox(request: Request, who: Current, deps: Deps, page_: PageNumber = 1) -> HTMLResponse:
    found = await mail.conversations(deps, who, page_)
    can_write = await mail_send.can_write(deps, who)
    return page(
        request, "messages.html", who, section="messages", listing=found,
        conversations=found.conversations, can_write=can_write,
        sent=request.query_params.get("envoye") == "1",
    )  # fmt: skip


@router.get("/messages/nouveau")
async def new_form(request: Request, who: Current, deps: Deps) -> HTMLResponse:
    writable = await mail_send.writable(deps, who)
    return page(
        request, "messages_new.html", who, section="messages", professionals=writable,
        max_mb=deps.attachment_max // (1024 * 1024), allowed=mail_send.ALLOWED,
    )  # fmt: skip


@router.post("/messages/nouveau")
async def new_send(
    request: Request,
    who: Posting,
    deps: Deps,
    destinataire: Annotated[str, Form()],
    texte: Annotated[str, Form()],
    objet: Annotated[str, Form()] = "",
) -> RedirectResponse:
    uploads = await _uploads(request, deps)
    await mail_send.new_message(deps, who, destinataire, objet, texte, uploads, _peer(request))
    return RedirectResponse(f"{base_path(request)}/messages?envoye=1", status_code=303)


@router.get("/messages/{conversation}")
async def thread(request: Request, conversation: int, who: Current, deps: Deps) -> HTMLResponse:
    everything = request.query_params.get("tout") == "1"
    found = await mail.conversation(deps, who, conversation, everything=everything)
    await mail.mark_read(deps, who, found)
    return page(
        request, "messages_thread.html", who, section="messages", thread=found,
        max_mb=deps.attachment_max // (1024 * 1024), allowed=mail_send.ALLOWED,
        sent=request.query_params.get("envoye") == "1",
        filed=request.query_params.get("classe") == "1",
    )  # fmt: skip


@router.post("/messages/{conversation}/repondre")
async def reply(
    request: Request,
    conversation: int,
    who: Posting,
    deps: Deps,
    texte: Annotated[str, Form()],
) -> RedirectResponse:
    uploads = await _uploads(request, deps)
    await mail_send.reply(deps, who, conversation, texte, uploads, _peer(request))
    target = f"{base_path(request)}/messages/{conversation}?envoye=1"
    return RedirectResponse(target, status_code=303)


@router.get("/messages/{conversation}/cadre/{message}")
async def frame(conversation: int, message: int, who: Current, deps: Deps) -> HTMLResponse:
    """The sanitised HTML of a message, under its own sandbox CSP (shown in an iframe)."""
    document = await mail.frame(deps, who, conversation, message)
    return HTMLResponse(
        document,
        headers={"Content-Security-Policy": MAIL_FRAME_CSP, "Cache-Control": "no-store"},
    )


def _file_response(found: mail.File, kind: str) -> Response:
    media = found.info.kind if kind == "inline" else (found.info.kind or "application/octet-stream")
    headers = {
        "Content-Disposition": disposition(kind, found.info.name),
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }
    if kind == "inline":
        headers["Content-Security-Policy"] = PREVIEW_CSP
    else:
        headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return Response(found.data, media_type=media, headers=headers)


@router.get("/pieces/{file_id}")
async def download(file_id: str, who: Current, deps: Deps) -> Response:
    return _file_response(await mail.attachment(deps, who, file_id), "attachment")


@router.get("/pieces/{file_id}/apercu")
async def preview(file_id: str, who: Current, deps: Deps) -> Response:
    """PDF and images only, with the type read in their bytes."""
    found = await mail.attachment(deps, who, file_id)
    if not found.info.previewable:
        return _file_response(found, "attachment")
    return _file_response(found, "inline")


@router.post("/pieces/{file_id}/documents")
async def file_document(request: Request, file_id: str, who: Posting, deps: Deps) -> Response:
    """« Ajouter à mes documents »: the attachment joins the patient's own documents."""
    found = await mail.file_into_documents(deps, who, file_id)
    target = f"{base_path(request)}/messages/{found.conversation_id}?classe=1"
    return RedirectResponse(target, status_code=303)
