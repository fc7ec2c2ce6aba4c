"""The DMP service: deposits, consultations and the patient's choices, traced.

Each operation is one function on a transaction (`Tx`) or a read connection:
it loads the record's state, asks the rules of `access.py`, changes the
store, and appends a trace in the same transaction (`traces.py`), so that
what happened and its trace commit together. Notification events (first
access by a professional, new document) go to the outbox (kind `notification`)
in that transaction too. The API (`web/dmp.py`) and the mail deposit (`deposit.py`)
call these; the patient space will as well.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Connection, and_, delete, func, insert, or_, select, true, update

from mss.dmp import traces
from mss.dmp.access import (
    Actor,
    DocumentState,
    Habilitations,
    Mode,
    Professional,
    RecordState,
    check_block,
    check_consult,
    check_feed,
    check_mask,
    check_open,
    check_read_traces,
    check_reveal_to_patient,
    check_treating_doctors,
    check_unmask,
    is_adult,
    patient_sees,
    professional_sees,
)
from mss.dmp.errors import (
    DMPAccessForbidden,
    DMPError,
    DMPPatientNotFound,
    DocumentError,
)
from mss.store import outbox
from mss.store.api import Store
from mss.store.blobs import BlobCipher, insert_blob, read_blob
from mss.store.db import Tx
from mss.store.models import (
    ProfileStatus,
    dmp_authorization_table,
    dmp_document_table,
    dmp_person_table,
    dmp_record_table,
    patient_table,
    utcnow,
)
from mss.store.outbox import NewItem

T = TypeVar("T")
NOTIFICATION = "notification"
d = dmp_document_table.c
r = dmp_record_table.c
pp = dmp_person_table.c
au = dmp_authorization_table.c

TREATING, BLOCKED = "treating", "blocked"
MASKED, INVISIBLE, HIDDEN_REPR = "MASQUE_PS", "INVISIBLE_PATIENT", "INVISIBLE_REPRESENTANTS_LEGAUX"


@dataclass(frozen=True)
class Settings:
    authorization_days: int = 365  # the lifetime of an authorisation (not published: ours)
    habilitations: Habilitations = field(default_factory=Habilitations.load)


@dataclass(frozen=True)
class NewDocument:
    """A document to deposit, with its metadata (from an XDM, a CDA header or a PDF)."""

    unique_id: str
    content: bytes
    mime_type: str
    title: str = ""
    class_code: str = ""
    type_code: str = ""
    format_code: str = ""
    confidentiality: tuple[str, ...] = ("N",)
    creation_time: dt.datetime | None = None
    service_start: dt.datetime | None = None
    service_stop: dt.datetime | None = None
    replaces: str | None = None  # unique id (or XDM entryUUID) of the version it replaces
    entry_uuid: str = ""  # the XDM ExtrinsicObject id

    @property
    def masked(self) -> bool:
        return MASKED in self.confidentiality

    @property
    def invisible_patient(self) -> bool:
        return INVISIBLE in self.confidentiality

    @property
    def hidden_from_representatives(self) -> bool:
        return HIDDEN_REPR in self.confidentiality


@dataclass(frozen=True)
class Deposited:
    document_id: int
    unique_id: str
    version: int
    duplicate: bool = False  # the same unique id was already there: nothing written


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    """Aware UTC (the store's convention); a naive time is taken as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


# --- the record ------------------------------------------------------------------------------


def _record_row(conn: Connection, ins: str) -> Any:
    return conn.execute(select(dmp_record_table).where(r.ins == ins)).first()


def record_state(conn: Connection, ins: str) -> RecordState | None:
    """The DMP of a patient known here (None: unknown patient). A patient whose profile
    is closed has a closed DMP (seed 004: no feeding)."""
    patient = conn.execute(
        select(patient_table.c.profile_status, patient_table.c.identity_status).where(
            patient_table.c.ins == ins
        )
    ).first()
    if patient is None:
        return None
    row = _record_row(conn, ins)
    people = conn.execute(
        select(pp.role, pp.national_id)
        .join(dmp_record_table, r.id == pp.record_id)
        .where(r.ins == ins)
    ).all()
    return RecordState(
        ins=ins,
        closed=bool(row and row.closed) or patient.profile_status == ProfileStatus.CLOSED.value,
        oppose_bris_de_glace=bool(row and row.oppose_bris_de_glace),
        oppose_centre15=bool(row and row.oppose_centre15),
        blocked=frozenset(n for role, n in people if role == BLOCKED),
        treating=frozenset(n for role, n in people if role == TREATING),
        qualified=patient.identity_status == "QUAL",
    )


def _record_id(tx: Tx, ins: str) -> int:
    """The record row, created on first use (a known patient has a DMP)."""
    row = _record_row(tx.conn, ins)
    if row is not None:
        return int(row.id)
    result = tx.conn.execute(insert(dmp_record_table).values(ins=ins, closed=False))
    return _new_id(result)


def _new_id(result: Any) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _require(conn: Connection, ins: str) -> RecordState:
    state = record_state(conn, ins)
    if state is None:
        raise DMPPatientNotFound("ce patient n'a pas de DMP (patient inconnu)")
    return state


def _notify(tx: Tx, kind: str, ins: str, payload: dict[str, Any]) -> None:
    """A patient notification event, sent after the commit (outbox kind `notification`)."""
    event = NewItem({"ins": ins, "event": kind, **payload})
    outbox.add(tx, NOTIFICATION, [event], int(time.time()))


# --- deposit -----------------------------------------------------------------------------------


def deposit(
    tx: Tx,
    cipher: BlobCipher,
    ins: str,
    author: Professional,
    documents: Sequence[NewDocument],
    *,
    source: str = "api",
    source_message_id: str | None = None,
) -> list[Deposited]:
    """Deposit documents into a DMP (all or none). Depositing a unique id already there
    changes nothing (a mail processed twice deposits once)."""
    state = check_feed(record_state(tx.conn, ins), author)
    record_id = _record_id(tx, state.ins)
    out = []
    for doc in documents:
        existing = tx.conn.execute(
            select(d.id, d.version).where(d.record_id == record_id, d.unique_id == doc.unique_id)
        ).first()
        if existing is not None:
            out.append(Deposited(int(existing.id), doc.unique_id, int(existing.version), True))
            continue
        set_id, version, previous = doc.unique_id, 1, None
        if doc.replaces:
            previous = tx.conn.execute(
                select(d.id, d.set_id, d.version, d.author_national_id, d.superseded_by).where(
                    d.record_id == record_id,
                    or_(d.unique_id == doc.replaces, d.entry_uuid == doc.replaces),
                )
            ).first()
            if previous is None:
                raise DocumentError(f"the document {doc.replaces} to replace is not in the DMP")
            if previous.author_national_id != author.national_id:
                raise DocumentError("only the author of a document may replace it", 901)
            if previous.superseded_by is not None:
                raise DocumentError(f"{doc.replaces} was already replaced by a newer version")
            set_id, version = previous.set_id, previous.version + 1
        blob_id = insert_blob(tx, cipher.encrypt(doc.content))
        result = tx.conn.execute(
            insert(dmp_document_table).values(
                record_id=record_id, unique_id=doc.unique_id, entry_uuid=doc.entry_uuid[:128],
                set_id=set_id, version=version,
                title=doc.title[:500], class_code=doc.class_code, type_code=doc.type_code,
                format_code=doc.format_code, mime_type=doc.mime_type,
                confidentiality=" ".join(doc.confidentiality), masked=doc.masked,
                invisible_patient=doc.invisible_patient,
                hidden_from_representatives=doc.hidden_from_representatives,
                author_national_id=author.national_id, author_name=author.name[:200],
                author_profession=author.profession, creation_time=_utc(doc.creation_time),
                service_start=_utc(doc.service_start), service_stop=_utc(doc.service_stop),
                size=len(doc.content), sha1=hashlib.sha1(doc.content).hexdigest(),  # noqa: S324
                blob_id=blob_id, source=source, source_message_id=source_message_id,
            )
        )  # fmt: skip
        document_id = _new_id(result)
        if previous is not None:
            tx.conn.execute(
                update(dmp_document_table)
                .where(d.id == previous.id)
                .values(superseded_by=document_id)
            )
        traces.append(
            tx, ins, Actor.PROFESSIONAL.value, author.national_id, "deposit",
            document_id=document_id,
            detail={"unique_id": doc.unique_id, "version": version, "source": source},
        )  # fmt: skip
        if not doc.invisible_patient:
            _notify(tx, "new_document", ins, {"document_id": document_id, "title": doc.title})
        out.append(Deposited(document_id, doc.unique_id, version))
    return out


# --- professionals -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Refused:
    error: DMPError


async def consult(store: Store, fn: Callable[[Tx], T]) -> T:
    """Run a consultation in the group commit. A refusal that was traced commits (the
    trace of a refused access must stay) and is raised after the commit; any other
    error rolls the transaction back."""

    def run(tx: Tx) -> T | _Refused:
        try:
            return fn(tx)
        except DMPError as exc:
            if exc.traced:
                return _Refused(exc)
            raise

    result = await store.write(run)
    if isinstance(result, _Refused):
        raise result.error
    return result


@dataclass(frozen=True)
class Search:
    class_codes: tuple[str, ...] = ()
    type_codes: tuple[str, ...] = ()
    author: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    include_superseded: bool = False
    limit: int = 100
    offset: int = 0


DOC_COLUMNS = (
    d.id, d.unique_id, d.set_id, d.version, d.superseded_by, d.title, d.class_code, d.type_code,
    d.format_code, d.mime_type, d.confidentiality, d.masked, d.invisible_patient,
    d.hidden_from_representatives, d.author_national_id, d.author_name, d.author_profession,
    d.creation_time, d.service_start, d.service_stop, d.deposited_at, d.size, d.sha1,
)  # fmt: skip


def _state(row: Any) -> DocumentState:
    return DocumentState(
        class_code=row.class_code,
        type_code=row.type_code,
        author_national_id=row.author_national_id,
        masked=bool(row.masked),
        invisible_patient=bool(row.invisible_patient),
        hidden_from_representatives=bool(row.hidden_from_representatives),
    )


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat() if value is not None else None


def document_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row.id, "unique_id": row.unique_id, "set_id": row.set_id, "version": row.version,
        "superseded_by": row.superseded_by, "title": row.title, "class_code": row.class_code,
        "type_code": row.type_code, "format_code": row.format_code, "mime_type": row.mime_type,
        "confidentiality": row.confidentiality.split(), "masked": bool(row.masked),
        "invisible_patient": bool(row.invisible_patient),
        "hidden_from_representatives": bool(row.hidden_from_representatives),
        "author": {"national_id": row.author_national_id, "name": row.author_name,
                   "profession": row.author_profession},
        "creation_time": _iso(row.creation_time), "service_start": _iso(row.service_start),
        "service_stop": _iso(row.service_stop), "deposited_at": _iso(row.deposited_at),
        "size": row.size, "sha1": row.sha1,
    }  # fmt: skip


def authorize(
    tx: Tx, settings: Settings, ins: str, professional: Professional, basis: str = "explicit"
) -> dt.datetime:
    """Declare the patient's consent (presumed for the care team, explicit otherwise):
    an authorisation valid `authorization_days`. A blocked professional gets none."""
    if basis not in ("presumed", "explicit"):
        raise DMPError("the basis of an authorisation is 'presumed' or 'explicit'")
    check_open(record_state(tx.conn, ins), professional)
    record_id = _record_id(tx, ins)
    expires = utcnow() + dt.timedelta(days=settings.authorization_days)
    tx.conn.execute(
        delete(dmp_authorization_table).where(
            au.record_id == record_id, au.national_id == professional.national_id
        )
    )
    tx.conn.execute(
        insert(dmp_authorization_table).values(
            record_id=record_id, national_id=professional.national_id, basis=basis,
            granted_at=utcnow(), expires_at=expires,
        )
    )  # fmt: skip
    traces.append(tx, ins, Actor.PROFESSIONAL.value, professional.national_id, "authorize",
                  detail={"basis": basis, "expires_at": expires.isoformat()})  # fmt: skip
    return expires


def _consult(tx: Tx, ins: str, professional: Professional, mode: Mode) -> RecordState:
    state = record_state(tx.conn, ins)
    expires = None
    if state is not None:
        expires = tx.conn.execute(
            select(au.expires_at)
            .join(dmp_record_table, r.id == au.record_id)
            .where(r.ins == ins, au.national_id == professional.national_id)
        ).scalar()
    try:
        return check_consult(state, professional, mode, expires, utcnow())
    except DMPError as exc:
        if state is not None:  # refused accesses are traced too
            traces.append(tx, ins, Actor.PROFESSIONAL.value, professional.national_id,
                          "refused", mode=mode.value, detail={"error": exc.name})  # fmt: skip
            exc.traced = True
        raise


def _first_access(tx: Tx, ins: str, professional: Professional) -> None:
    if not traces.has_trace(tx.conn, ins, professional.national_id, "consult"):
        _notify(tx, "first_access", ins, {"national_id": professional.national_id,
                                          "name": professional.name})  # fmt: skip


def search_documents(
    tx: Tx, settings: Settings, ins: str, professional: Professional, mode: Mode, query: Search
) -> list[dict[str, Any]]:
    """The documents this professional may see, newest first; traced."""
    state = _consult(tx, ins, professional, mode)
    where = [r.ins == ins]
    if not query.include_superseded:
        where.append(d.superseded_by.is_(None))
    if query.class_codes:
        where.append(d.class_code.in_(query.class_codes))
    if query.type_codes:
        where.append(d.type_code.in_(query.type_codes))
    if query.author:
        where.append(d.author_national_id == query.author)
    if query.since:
        where.append(d.creation_time >= _utc(query.since))
    if query.until:
        where.append(d.creation_time < _utc(query.until))
    where.append(_visible_to(professional, state, settings.habilitations))
    rows = tx.conn.execute(
        select(*DOC_COLUMNS)
        .join(dmp_record_table, r.id == d.record_id)
        .where(*where)
        .order_by(d.creation_time.desc(), d.id.desc())
        .limit(query.limit)
        .offset(query.offset)
    ).all()
    _first_access(tx, ins, professional)
    traces.append(tx, ins, Actor.PROFESSIONAL.value, professional.national_id, "consult",
                  mode=mode.value, detail={"search": True, "found": len(rows)})  # fmt: skip
    return [document_dict(row) for row in rows]


def _visible_to(professional: Professional, state: RecordState, matrix: Habilitations) -> Any:
    """`access.professional_sees` as SQL (so that paging happens in the database):
    the author's own documents, or those the matrix allows and, when masked, only
    to a médecin traitant DMP."""
    classes, types, denied = matrix.rules(professional.profession)
    allowed: list[Any] = []
    if "*" in classes:
        allowed.append(true())
    else:
        allowed += [d.class_code.in_(sorted(classes)), d.type_code.in_(sorted(types))]
    rule: Any = or_(*allowed)
    if denied:
        rule = and_(rule, d.type_code.not_in(sorted(denied)))
    if professional.national_id not in state.treating:
        rule = and_(rule, d.masked.is_(False))
    return or_(d.author_national_id == professional.national_id, rule)


def _document(conn: Connection, ins: str, document_id: int) -> Any:
    row = conn.execute(
        select(*DOC_COLUMNS, d.blob_id)
        .join(dmp_record_table, r.id == d.record_id)
        .where(r.ins == ins, d.id == document_id)
    ).first()
    if row is None:
        raise DMPError(f"document {document_id} is not in this DMP")
    return row


def read_document(
    tx: Tx, settings: Settings, cipher: BlobCipher, ins: str, professional: Professional,
    mode: Mode, document_id: int,
) -> tuple[dict[str, Any], bytes]:  # fmt: skip
    """One document and its bytes, for a professional allowed to see it; traced."""
    state = _consult(tx, ins, professional, mode)
    row = _document(tx.conn, ins, document_id)
    if not professional_sees(_state(row), state, professional, settings.habilitations):
        traces.append(tx, ins, Actor.PROFESSIONAL.value, professional.national_id, "refused",
                      mode=mode.value, document_id=document_id,
                      detail={"error": "DMPAccessForbidden"})  # fmt: skip
        refused = DMPAccessForbidden("ce document n'est pas accessible à ce professionnel")
        refused.traced = True
        raise refused
    _first_access(tx, ins, professional)
    traces.append(tx, ins, Actor.PROFESSIONAL.value, professional.national_id, "consult",
                  mode=mode.value, document_id=document_id)  # fmt: skip
    return document_dict(row), read_blob(tx.conn, cipher, row.blob_id)


# --- changes to a document ---------------------------------------------------------------------


def set_masked(
    tx: Tx, ins: str, actor: Actor, actor_id: str, document_id: int, masked: bool
) -> None:
    """Mask (the patient) or unmask (the patient, a médecin traitant DMP, the author)."""
    state = _require(tx.conn, ins)
    row = _document(tx.conn, ins, document_id)
    if masked:
        check_mask(actor)
    else:
        check_unmask(_state(row), state, actor, actor_id)
    tx.conn.execute(update(dmp_document_table).where(d.id == document_id).values(masked=masked))
    traces.append(tx, ins, actor.value, actor_id, "mask" if masked else "unmask",
                  document_id=document_id)  # fmt: skip


def reveal_to_patient(
    tx: Tx, settings: Settings, ins: str, professional: Professional, mode: Mode, document_id: int
) -> None:
    """An authorised professional makes an invisible document visible to the patient
    (for good: it can never become invisible again)."""
    state = _consult(tx, ins, professional, mode)
    row = _document(tx.conn, ins, document_id)
    if not professional_sees(_state(row), state, professional, settings.habilitations):
        raise DMPAccessForbidden("ce document n'est pas accessible à ce professionnel")
    check_reveal_to_patient(_state(row))
    tx.conn.execute(
        update(dmp_document_table).where(d.id == document_id).values(invisible_patient=False)
    )
    traces.append(tx, ins, Actor.PROFESSIONAL.value, professional.national_id, "reveal",
                  document_id=document_id)  # fmt: skip
    _notify(tx, "new_document", ins, {"document_id": document_id, "title": row.title})


# --- the patient -------------------------------------------------------------------------------


def patient_documents(tx: Tx, ins: str, today: dt.date | None = None) -> list[dict[str, Any]]:
    """The patient's documents, without those invisible to them; traced."""
    _require(tx.conn, ins)
    birth = tx.conn.execute(
        select(patient_table.c.birth_date).where(patient_table.c.ins == ins)
    ).scalar()
    adult = birth is None or is_adult(birth, today or dt.date.today())
    rows = tx.conn.execute(
        select(*DOC_COLUMNS)
        .join(dmp_record_table, r.id == d.record_id)
        .where(r.ins == ins, d.superseded_by.is_(None))
        .order_by(d.creation_time.desc(), d.id.desc())
    )
    out = [document_dict(row) for row in rows if patient_sees(_state(row), adult)]
    traces.append(tx, ins, Actor.PATIENT.value, ins, "consult", detail={"found": len(out)})
    return out


def set_people(
    tx: Tx, ins: str, actor: Actor, actor_id: str, role: str, national_id: str, present: bool
) -> None:
    """Name/remove a médecin traitant DMP (the patient), block/unblock a professional
    (the patient, or a médecin traitant DMP on the patient's behalf)."""
    state = _require(tx.conn, ins)
    if role == TREATING:
        if actor is not Actor.PATIENT:
            raise DMPAccessForbidden("seul le patient nomme ses médecins traitants DMP")
        wanted = state.treating | {national_id} if present else state.treating - {national_id}
        check_treating_doctors(wanted)
    elif role == BLOCKED:
        if present:
            check_block(actor, actor_id, state, national_id)
        elif actor is Actor.PROFESSIONAL and actor_id not in state.treating:
            raise DMPAccessForbidden("seuls le patient et ses médecins traitants DMP débloquent")
    else:
        raise DMPError(f"unknown role {role!r}")
    record_id = _record_id(tx, ins)
    tx.conn.execute(
        delete(dmp_person_table).where(
            pp.record_id == record_id, pp.role == role, pp.national_id == national_id
        )
    )
    if present:
        tx.conn.execute(
            insert(dmp_person_table).values(record_id=record_id, role=role, national_id=national_id)
        )
        if role == BLOCKED:  # a blocked professional loses their authorisation
            tx.conn.execute(
                delete(dmp_authorization_table).where(
                    au.record_id == record_id, au.national_id == national_id
                )
            )
    action = {(TREATING, True): "name_treating", (TREATING, False): "remove_treating",
              (BLOCKED, True): "block", (BLOCKED, False): "unblock"}[(role, present)]  # fmt: skip
    traces.append(tx, ins, actor.value, actor_id, action, detail={"national_id": national_id})


def set_record(
    tx: Tx, ins: str, *, closed: bool | None = None, oppose_bris_de_glace: bool | None = None,
    oppose_centre15: bool | None = None,
) -> None:  # fmt: skip
    """The patient closes/reopens the DMP, sets or lifts the oppositions."""
    _require(tx.conn, ins)
    record_id = _record_id(tx, ins)
    values: dict[str, Any] = {}
    if closed is not None:
        values["closed"] = closed
        values["closed_at"] = utcnow() if closed else None
    if oppose_bris_de_glace is not None:
        values["oppose_bris_de_glace"] = oppose_bris_de_glace
    if oppose_centre15 is not None:
        values["oppose_centre15"] = oppose_centre15
    if not values:
        return
    tx.conn.execute(update(dmp_record_table).where(r.id == record_id).values(**values))
    detail = {k: v for k, v in values.items() if k != "closed_at"}
    traces.append(tx, ins, Actor.PATIENT.value, ins, "settings", detail=detail)


def read_traces(
    conn: Connection, ins: str, actor: Actor, actor_id: str, limit: int = 500
) -> list[dict[str, Any]]:
    state = _require(conn, ins)
    check_read_traces(actor, actor_id, state)
    return traces.history(conn, ins, limit)


def count_documents(conn: Connection, ins: str) -> int:
    return int(
        conn.execute(
            select(func.count()).select_from(dmp_document_table)
            .join(dmp_record_table, r.id == d.record_id).where(r.ins == ins)
        ).scalar_one()
    )  # fmt: skip
