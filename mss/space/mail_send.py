"""The patient writes: a reply inside a conversation, or a new message to a professional
who already wrote to them. Each is an ordinary MSSanté message from
`"<name>" <INS@patient domain>` (RFC 5322: Message-ID, Date, In-Reply-To, References,
"Re: …"), signed with the patient's name and INS matricule so that the professional's
software can file it (Réf. #2), sent through the same `Pipeline.accept` as SMTP with
`Door.WEB`: every rule (only replies, [FIN], who may be written to) is decided there
(`delivery/policy.py`) and its refusal shown once, in French. A copy is kept in the
patient's Sent mailbox, `\\Seen`.

The patient's attachments are checked here: at most `attachment_max` bytes each, and
jpeg/jpg/png/pdf/rtf/tif/tiff/txt by their content, not only by their name.
"""

from __future__ import annotations

import datetime as dt
import logging
import unicodedata
import uuid
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from mss import metrics
from mss.core.dsn import RcptDSN
from mss.core.mime.headers import decode_words
from mss.delivery.checks import Door, Recipient
from mss.delivery.inbound import Pipeline, SessionInfo
from mss.delivery.policy import may_write_to, may_write_to_someone
from mss.errors import Rejection
from mss.security.auth import LoginIdentity
from mss.space.deps import SpaceDeps, Viewer
from mss.space.errors import Forbidden, SpaceError
from mss.space.mail import Person, boxes_of, own_conversation, people
from mss.space.mail_content import JPEG, PDF, PNG, RTF, TEXT, TIFF, safe_filename, sniff
from mss.store.accounts import get_patient
from mss.store.mailboxes import Target
from mss.store.models import AccountKind, SystemFlag
from mss.store.space_mail import StoredMessage, conversation_messages
from mss.store.sql import Conn

log = logging.getLogger(__name__)

# Extension → the type its content must have (DOMAIN.md §2, §3: patient uploads).
ALLOWED = {
    "jpeg": JPEG, "jpg": JPEG, "png": PNG, "pdf": PDF, "rtf": RTF, "tif": TIFF, "tiff": TIFF,
    "txt": TEXT,
}  # fmt: skip
MAX_FILES = 5
# All the files of one message: once in base64, under the 25 MB Mon espace santé accepts.
MAX_TOTAL = 18 * 1024 * 1024
MAX_TEXT = 20_000
MAX_SUBJECT = 200


@dataclass(frozen=True, slots=True)
class Upload:
    name: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Draft:
    to: list[str]
    subject: str
    text: str
    files: list[Upload]
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()


def _bad(french: str, english: str, status: int = 400) -> SpaceError:
    return SpaceError(french, english, status=status)


def check_file(upload: Upload, limit: int) -> tuple[str, str]:
    """The file's safe name and its type, or a French refusal."""
    name = safe_filename(upload.name, "")
    extension = name.rpartition(".")[2].lower() if "." in name else ""
    if extension not in ALLOWED:
        raise _bad(
            f"Le fichier « {name or '?'} » n'est pas d'un type accepté "
            "(jpeg, jpg, png, pdf, rtf, tif, tiff, txt).",
            "File type not accepted.", 415,
        )  # fmt: skip
    if len(upload.data) > limit:
        raise _bad(
            f"Le fichier « {name} » dépasse {limit // (1024 * 1024)} Mo.", "File too large.", 413
        )
    if sniff(upload.data) != ALLOWED[extension]:
        raise _bad(
            f"Le contenu du fichier « {name} » ne correspond pas à son extension .{extension}.",
            "File content does not match its extension.", 415,
        )  # fmt: skip
    return name, ALLOWED[extension]


# What may not stand in a header field: every line break `str.splitlines` knows (CR, LF,
# VT, FF, FS, GS, RS, NEL, U+2028, U+2029) and every other control character.
_BREAKS = frozenset({"Cc", "Zl", "Zp"})
BROKEN_FIELD = _bad(
    "L'objet et le destinataire tiennent sur une ligne, sans caractère de contrôle.",
    "The subject and recipient are one line, without control characters.",
)


def one_line(value: str) -> str:
    """`value` with each line break or control character replaced by a space (for a field
    that comes from elsewhere: a professional's subject, a name)."""
    cleaned = "".join(" " if unicodedata.category(ch) in _BREAKS else ch for ch in value)
    return " ".join(cleaned.split())


def _typed_line(value: str) -> str:
    """A field the patient typed, refused (400) when it holds a line break or control."""
    if any(unicodedata.category(ch) in _BREAKS for ch in value):
        raise BROKEN_FIELD
    return value.strip()


def _body_text(text: str) -> str:
    """The typed text as a mail body: lines, tabs and characters; no NUL nor other
    control character (RFC 5322 §2.3, RFC 2045 §2.7: not in a text body)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(ch for ch in lines if ch in "\n\t" or unicodedata.category(ch) != "Cc")


def _check_text(subject: str, text: str) -> None:
    if not text.strip():
        raise _bad("Le message est vide.", "Empty message.")
    if len(text) > MAX_TEXT or len(subject) > MAX_SUBJECT:
        raise _bad("Le message est trop long.", "Message too long.")


async def _patient_name(deps: SpaceDeps, who: Viewer) -> str:
    boxes = await boxes_of(deps, who)
    if boxes.display_name:
        return boxes.display_name
    found = await deps.store.read_fast(lambda c: get_patient(c, who.ins))
    if found is None:
        return who.ins
    return found.name


def build(deps: SpaceDeps, who: Viewer, name: str, draft: Draft) -> tuple[bytes, str]:
    """The RFC 5322 message and its Message-ID."""
    message = EmailMessage(policy=SMTP)
    message_id = f"<{uuid.uuid4().hex}@{deps.patient_domain}>"
    # An Address, not a formatted string: a non-ASCII name with `:`, `@`, `,`… would be
    # encoded only in part and the From field would no longer parse as one mailbox.
    message["From"] = Address(display_name=one_line(name), addr_spec=deps.address_of(who.ins))
    message["To"] = ", ".join(one_line(to) for to in draft.to)
    message["Subject"] = one_line(draft.subject)
    message["Date"] = format_datetime(dt.datetime.fromtimestamp(deps.now(), dt.UTC))
    message["Message-ID"] = message_id
    if draft.in_reply_to:
        message["In-Reply-To"] = one_line(draft.in_reply_to)
        message["References"] = one_line(" ".join(draft.references))
    signature = f"\n\n--\n{name}\nMatricule INS : {who.ins}\n"
    message.set_content(_body_text(draft.text) + signature)
    for upload in draft.files:
        filename, kind = check_file(upload, deps.attachment_max)
        maintype, subtype = kind.split("/")
        message.add_attachment(upload.data, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes(), message_id


def _refusal(exc: Rejection) -> SpaceError:
    """The pipeline's refusal (French, then the English meaning in parentheses)."""
    french, _, english = exc.text.rpartition(" (")
    if not french:
        french, english = exc.text, exc.text
    if exc.temporary:
        return _bad(f"{french}. Réessayez plus tard.", english.rstrip(")"), 503)
    return Forbidden(french, english.rstrip(")"))


async def _send(deps: SpaceDeps, who: Viewer, draft: Draft, peer: str | None) -> str:
    pipeline = deps.pipeline
    if pipeline is None:
        raise _bad("L'envoi de messages n'est pas disponible.", "Sending is not available.", 503)
    _check_text(draft.subject, draft.text)
    if len(draft.files) > MAX_FILES:
        raise _bad(f"Au plus {MAX_FILES} pièces jointes.", "Too many attachments.")
    if sum(len(f.data) for f in draft.files) > MAX_TOTAL:
        raise _bad(f"Les pièces jointes dépassent {MAX_TOTAL // (1024 * 1024)} Mo au total.",
                   "Attachments too large in total.", 413)  # fmt: skip
    name = await _patient_name(deps, who)
    raw, message_id = build(deps, who, name, draft)
    try:
        await _accept(pipeline, deps, who, name, draft.to, raw, peer)
    except Rejection as exc:
        metrics.count_refusal(Door.WEB.value, exc.smtp_reply())
        raise _refusal(exc) from None
    await _keep_sent(deps, who, raw)
    return message_id


async def _accept(
    pipeline: Pipeline, deps: SpaceDeps, who: Viewer, name: str, to: list[str], raw: bytes,
    peer: str | None,
) -> None:  # fmt: skip
    address = deps.address_of(who.ins)
    login = LoginIdentity(address, AccountKind.PATIENT.value, None, "space", name)
    session = SessionInfo(Door.WEB, "espace-patient", peer, True, login)
    sender = await pipeline.sender(session, address)
    recipients: list[Recipient] = []
    for rcpt in to:
        recipients.append(await pipeline.recipient(session, sender, rcpt, RcptDSN(), recipients))
    await pipeline.accept(session, sender, recipients, raw)


async def _keep_sent(deps: SpaceDeps, who: Viewer, raw: bytes) -> None:
    """The patient's copy, in Sent (read), as a mail client would APPEND it."""
    boxes = await boxes_of(deps, who)
    if boxes.sent is not None:
        await deps.store.deliver(raw, [Target(boxes.sent, int(SystemFlag.SEEN))])


def _re(encoded: str) -> str:
    """« Re: » and the professional's subject, decoded, on one line (it may encode line
    breaks), no longer than a patient's subject may be."""
    subject = one_line(decode_words(encoded))
    return (subject if subject.lower().startswith("re:") else f"Re: {subject}")[:MAX_SUBJECT]


async def reply(
    deps: SpaceDeps, who: Viewer, conversation_id: int, text: str, files: list[Upload],
    peer: str | None = None,
) -> str:  # fmt: skip
    """Answer the conversation's last professional message, to its author."""
    boxes = await boxes_of(deps, who)

    def read(conn: Conn) -> tuple[str, list[StoredMessage]]:
        found = own_conversation(conn, who, conversation_id, boxes)  # NotFound if not theirs
        stored = conversation_messages(conn, who.ins, boxes, found.id, who.representative)
        return found.subject or "", stored

    subject, stored = await deps.store.read_fast(read)
    last = next((s for s in reversed(stored) if not s.from_patient and s.message_id), None)
    if last is None or last.message_id is None:
        raise _bad("Aucun message auquel répondre.", "Nothing to reply to.", 409)
    references = (*(last.references or "").split(), last.message_id)
    draft = Draft([last.sender], _re(last.subject or subject), text, files,
                  last.message_id, tuple(dict.fromkeys(references)))  # fmt: skip
    return await _send(deps, who, draft, peer)


async def writable(deps: SpaceDeps, who: Viewer) -> list[Person]:
    """Whom the patient may write a new message to (empty when the policy says replies only)."""
    if not deps.new_message_to_professionals:
        return []

    def read(conn: Conn) -> list[Person]:
        addresses = may_write_to(conn, who.ins)
        named = people(conn, addresses, who.ins)
        return [named[a] for a in addresses]

    return await deps.store.read(read)


async def can_write(deps: SpaceDeps, who: Viewer) -> bool:
    """Whether `writable` names anyone (the messagerie's « Nouveau message » button)."""
    if not deps.new_message_to_professionals:
        return False
    return await deps.store.read_fast(lambda conn: may_write_to_someone(conn, who.ins))


async def new_message(
    deps: SpaceDeps, who: Viewer, to: str, subject: str, text: str, files: list[Upload],
    peer: str | None = None,
) -> str:  # fmt: skip
    """A new message to one professional; the policy decides whether they may be written to."""
    to, subject = _typed_line(to), _typed_line(subject)
    if not to:
        raise _bad("Choisissez un professionnel.", "Choose a professional.")
    draft = Draft([to], subject or "(sans objet)", text, files)
    return await _send(deps, who, draft, peer)
