"""The patient's messagerie, as a service (no HTTP): their conversations, listed by the
professionals' names and professions (the annuaire, else the local account, else the
name they wrote under; never an address), each conversation's messages with their text,
sanitised HTML and attachments, and marking read (`\\Seen`, as IMAP sees it).

Every id (conversation, message, attachment) is looked up within the viewer's own
patient (`viewer.ins`) and mailboxes: another patient's id is `NotFound`, exactly as an
id that does not exist, so ids cannot be probed. Writing (replies, new messages) is
`mail_send.py`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace

from mss.annuaire import lookup as annuaire_lookup
from mss.core.digits import ascii_digits
from mss.core.mime import Attachment
from mss.core.mime.headers import decode_words
from mss.core.mime.structure import Part
from mss.space import record
from mss.space.dates import PARIS, when
from mss.space.deps import SpaceDeps, Viewer
from mss.space.errors import NotFound, SpaceError
from mss.space.mail_content import FILEABLE, PREVIEWABLE, content, frame_document, sniff
from mss.store.accounts import get_account
from mss.store.conversations import ConversationRecord, get_conversation, patient_conversations
from mss.store.messages import store_flags
from mss.store.space_mail import (
    PatientBoxes,
    StoredMessage,
    conversation_messages,
    hidden_blobs,
    hidden_conversations,
    is_hidden_conversation,
    patient_boxes,
    patient_message,
    professionals_of,
    sender_names,
    unread_counts,
)
from mss.store.sql import Conn

UNKNOWN_NAME = "Professionnel de santé"
PER_PAGE = 50  # conversations on a page of the messagerie
SHOWN = 20  # a conversation's last messages shown, unless all are asked for
FILE_MAX = 5 * 1024 * 1024  # what may be filed into the patient's documents
MAX_ROW_ID = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Person:
    """A professional as the patient sees them: a name, a profession and a national id
    (DOMAIN.md §2), never the address (`address` is for the forms' values and the rules)."""

    address: str
    name: str
    profession: str
    national_id: str = ""


@dataclass(frozen=True, slots=True)
class Summary:
    id: int
    subject: str
    professionals: list[Person]
    unread: int
    last_activity: dt.datetime
    open: bool
    ended_by: Person | None

    @property
    def said(self) -> str:
        return when(self.last_activity)


@dataclass(frozen=True, slots=True)
class FileInfo:
    id: str  # "<message id>.<part index>"
    name: str
    kind: str | None  # the type found in its bytes, None when unknown
    size: int

    @property
    def previewable(self) -> bool:
        return self.kind in PREVIEWABLE

    @property
    def fileable(self) -> bool:
        """May go into the patient's documents (`FILEABLE`, 5 MB at most)."""
        return self.kind in FILEABLE and self.size <= FILE_MAX


@dataclass(frozen=True, slots=True)
class Shown:
    """One message of a conversation, as shown."""

    id: int
    from_patient: bool
    author: Person | None  # None: the patient (or their representative)
    date: dt.datetime
    subject: str
    text: str | None
    has_html: bool
    files: list[FileInfo]
    unread: bool

    @property
    def said(self) -> str:
        return when(self.date)


@dataclass(frozen=True, slots=True)
class Thread:
    summary: Summary
    messages: list[Shown]
    earlier: int  # older messages not shown
    unseen_uids: list[int]  # INBOX uids of the messages shown that were not \\Seen


async def boxes_of(deps: SpaceDeps, who: Viewer) -> PatientBoxes:
    address = deps.address_of(who.ins)
    found = await deps.store.read_fast(lambda c: patient_boxes(c, address))
    if found is None:
        raise NotFound()
    return found


# --- names --------------------------------------------------------------------------------


def _annuaire_person(conn: Conn, address: str) -> Person | None:
    entry = annuaire_lookup.mailbox(conn, address)
    if entry is None or not (entry.get("family") or entry.get("given")):
        return None
    name = " ".join(str(v) for v in (entry.get("civilite"), entry.get("given"),
                                     entry.get("family")) if v)  # fmt: skip
    profession = (entry.get("profession") or {}).get("label") or ""
    return Person(address, name, str(profession), str(entry.get("national_id") or ""))


def people(conn: Conn, addresses: Sequence[str], ins: str) -> dict[str, Person]:
    """How each professional is named: annuaire, else local account, else as they wrote
    to this patient."""
    found: dict[str, Person] = {}
    for address in dict.fromkeys(addresses):
        person = _annuaire_person(conn, address)
        if person is None:
            account = get_account(conn, address)
            name = account.display_name if account else None
            national_id = (account.national_id if account else None) or ""
            person = Person(address, name or "", "", national_id)
        found[address] = person
    unnamed = [a for a, p in found.items() if not p.name]
    written = sender_names(conn, unnamed, ins)  # only for those named nowhere else
    for address in unnamed:
        found[address] = replace(found[address], name=written.get(address) or UNKNOWN_NAME)
    return found


# --- conversations ------------------------------------------------------------------------


def _summaries(
    conn: Conn, conversations: list[ConversationRecord], unread: dict[int, int]
) -> list[Summary]:
    members = professionals_of(conn, [c.id for c in conversations])
    enders = [c.ended_by for c in conversations if c.ended_by]
    ins = conversations[0].patient_ins if conversations else ""
    named = people(conn, [p.address for p in members] + enders, ins)
    by_conversation: dict[int, list[Person]] = {}
    for member in members:
        by_conversation.setdefault(member.conversation_id, []).append(named[member.address])
    return [_summary(c, by_conversation.get(c.id, []), unread, named) for c in conversations]


def _summary(
    c: ConversationRecord, members: list[Person], unread: dict[int, int], named: dict[str, Person]
) -> Summary:
    ender = named[c.ended_by] if c.ended_by else None
    subject = decode_words(c.subject or "") or "(sans objet)"
    at = _paris(c.last_activity)
    return Summary(c.id, subject, members, unread.get(c.id, 0), at, c.open, ender)


def _paris(at: dt.datetime) -> dt.datetime:
    """Stored times are UTC (SQLite gives them back naive)."""
    aware = at if at.tzinfo else at.replace(tzinfo=dt.UTC)
    return aware.astimezone(PARIS)


@dataclass(frozen=True, slots=True)
class Listing:
    conversations: list[Summary]
    page: int
    pages: int


async def conversations(deps: SpaceDeps, who: Viewer, page: int = 1) -> Listing:
    """A page of the patient's conversations, most recent first, with their unread counts
    (none when the patient has no mailbox: a closed profile)."""
    address = deps.address_of(who.ins)
    boxes = await deps.store.read_fast(lambda c: patient_boxes(c, address))
    if boxes is None:
        return Listing([], 1, 1)
    page = max(page, 1)

    hidden = hidden_conversations(who.ins, boxes.inbox) if who.representative else None

    def read(conn: Conn) -> Listing:
        found, total = patient_conversations(
            conn, who.ins, PER_PAGE, (page - 1) * PER_PAGE, excluding=hidden
        )
        unread = unread_counts(conn, who.ins, boxes.inbox, [c.id for c in found])
        return Listing(_summaries(conn, found, unread), page, max(1, -(-total // PER_PAGE)))

    return await deps.store.read(read)


def row_id(value: int) -> int:
    """An id from a URL, as a row id: beyond a signed 64-bit integer no row has it, and the
    database would overflow on it (404, as for any id that is not the viewer's)."""
    if not 1 <= value <= MAX_ROW_ID:
        raise NotFound()
    return value


def hidden_from_viewer(conn: Conn, who: Viewer, address: str) -> set[int]:
    """The blobs of the patient's messages (mailbox `address`) the viewer may not have:
    for a legal representative, those of conversations hidden from them (the export)."""
    boxes = patient_boxes(conn, address) if who.representative else None
    return set() if boxes is None else hidden_blobs(conn, who.ins, boxes)


def own_conversation(
    conn: Conn, who: Viewer, conversation_id: int, boxes: PatientBoxes
) -> ConversationRecord:
    """The viewer's conversation; `NotFound` if not the patient's, or hidden from the
    representative who is viewing (INVISIBLE_REPRESENTANTS_LEGAUX, DOMAIN.md §5)."""
    found = get_conversation(conn, row_id(conversation_id))
    if found is None or found.patient_ins != who.ins:
        raise NotFound()
    if who.representative and is_hidden_conversation(conn, who.ins, boxes.inbox, found.id):
        raise NotFound()
    return found


async def conversation(
    deps: SpaceDeps, who: Viewer, conversation_id: int, *, everything: bool = False
) -> Thread:
    """One conversation of the patient's: its last `SHOWN` messages (all of them when
    `everything`), oldest first, read in one transaction."""
    boxes = await boxes_of(deps, who)
    blobs = deps.store.blobs

    def read(conn: Conn) -> Thread:
        found = own_conversation(conn, who, conversation_id, boxes)
        unread = unread_counts(conn, who.ins, boxes.inbox, [found.id])
        [summary] = _summaries(conn, [found], unread)
        stored = conversation_messages(conn, who.ins, boxes, found.id, who.representative)
        earlier = 0 if everything else max(0, len(stored) - SHOWN)
        stored = stored[earlier:]
        named = people(conn, [s.sender for s in stored if not s.from_patient], who.ins)
        shown = [_shown(s, blobs.get(conn, s.blob_id), named) for s in stored]
        unseen = [s.uid for s in stored if s.mailbox_id == boxes.inbox and not s.seen]
        return Thread(summary, shown, earlier, unseen)

    return await deps.store.read(read)


def _shown(stored: StoredMessage, raw: bytes, named: dict[str, Person]) -> Shown:
    found = content(raw, _structure(stored))
    files = [_file_info(stored.id, raw, leaf) for leaf in found.attachments]
    return Shown(
        stored.id, stored.from_patient, None if stored.from_patient else named[stored.sender],
        dt.datetime.fromtimestamp(stored.internal_date, PARIS), decode_words(stored.subject or ""),
        found.text, found.html is not None, files, not stored.seen and not stored.from_patient,
    )  # fmt: skip


def _structure(stored: StoredMessage) -> Part:
    return Part.from_json(json.loads(stored.body_structure))


def _file_info(message_id: int, raw: bytes, leaf: Attachment) -> FileInfo:
    data = leaf.payload(raw)
    name = leaf.filename or f"piece-{leaf.index}"
    return FileInfo(f"{message_id}.{leaf.index}", name, sniff(data), len(data))


async def mark_read(deps: SpaceDeps, who: Viewer, thread: Thread) -> None:
    """Set `\\Seen` on the messages shown (IMAP sessions see it), without making the page
    wait for the commit (the page shows them read already)."""
    boxes = await boxes_of(deps, who)
    uids = thread.unseen_uids
    if uids:
        deps.in_background(
            deps.store.write(lambda tx: store_flags(tx, boxes.inbox, uids, "add", ["\\Seen"]))
        )


# --- one message, one attachment ----------------------------------------------------------


async def own_message(deps: SpaceDeps, who: Viewer, message_id: int) -> tuple[StoredMessage, bytes]:
    """A message of the patient's conversations and its bytes; `NotFound` otherwise."""
    boxes = await boxes_of(deps, who)
    row_id(message_id)
    found = await deps.store.read_fast(
        lambda c: patient_message(c, who.ins, boxes, message_id, who.representative)
    )
    if found is None:
        raise NotFound()
    return found, await deps.store.blob_bytes(found.blob_id)


async def frame(deps: SpaceDeps, who: Viewer, conversation_id: int, message_id: int) -> str:
    """The sanitised HTML of a message, as the whole document of its sandboxed frame."""
    stored, raw = await own_message(deps, who, message_id)
    found = content(raw, _structure(stored))
    if stored.conversation_id != conversation_id or found.html is None:
        raise NotFound()
    return frame_document(found.html)


@dataclass(frozen=True, slots=True)
class File:
    info: FileInfo
    data: bytes
    conversation_id: int


async def attachment(deps: SpaceDeps, who: Viewer, file_id: str) -> File:
    """One attachment of the patient's messages, by its id `<message>.<part>`."""
    message_part = file_id.split(".")
    if len(message_part) != 2 or not all(ascii_digits(p) and len(p) < 12 for p in message_part):
        raise NotFound()
    stored, raw = await own_message(deps, who, int(message_part[0]))
    for leaf in content(raw, _structure(stored)).attachments:
        if leaf.index == int(message_part[1]):
            info = _file_info(stored.id, raw, leaf)
            return File(info, leaf.payload(raw), stored.conversation_id)
    raise NotFound()


# The type of the patient's documents a received attachment is filed under (ANS DOCPAT09).
FILED_TYPE = "DOCPAT09"
NOT_FILEABLE = SpaceError(
    "Seuls les fichiers PDF, texte, RTF, JPEG ou TIFF de 5 Mo au plus peuvent être ajoutés"
    " à vos documents.",
    "Only PDF, text, RTF, JPEG or TIFF files up to 5 MB can be filed.",
    status=415,
)


async def file_into_documents(deps: SpaceDeps, who: Viewer, file_id: str) -> File:
    """« Ajouter à mes documents »: a received attachment deposited in the patient's DMP as
    their own document by `record.add_own_document`, the one path of a document the patient
    adds (the Documents page uses it too)."""
    found = await attachment(deps, who, file_id)
    if not found.info.fileable:
        raise NOT_FILEABLE
    title = found.info.name.rpartition(".")[0] or found.info.name
    await record.add_own_document(deps, who, found.data, title, FILED_TYPE)
    return found
