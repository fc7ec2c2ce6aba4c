"""The patient's DMP and choices (DOMAIN.md §5): their documents, masking, their
médecins traitants DMP, the professionals they block, closing the DMP and the
oppositions to emergency access. Each change is checked by `access.py` and traced.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from mss.dmp import traces
from mss.dmp.access import (
    Actor,
    RecordState,
    check_block,
    check_mask,
    check_treating_doctors,
    check_unmask,
)
from mss.dmp.errors import DMPAccessForbidden, DMPError
from mss.dmp.patient_view import patient_adult, seen_document, seen_documents
from mss.dmp.records import (
    BLOCKED,
    TREATING,
    document_state,
    require_record,
    stored_document,
)
from mss.store import dmp as stored
from mss.store.sql import Tx

PEOPLE_ACTIONS = {
    (TREATING, True): "name_treating", (TREATING, False): "remove_treating",
    (BLOCKED, True): "block", (BLOCKED, False): "unblock",
}  # fmt: skip


def patient_documents(
    tx: Tx, ins: str, today: dt.date | None = None, actor_id: str | None = None
) -> list[dict[str, Any]]:
    """The patient's documents, without those invisible to them (`patient_view`); traced
    as looked at by `actor_id` (the patient, by default, or their legal representative's
    login)."""
    require_record(tx.conn, ins)
    out = seen_documents(tx.conn, ins, patient_adult(tx.conn, ins, today))
    traces.append(tx, ins, Actor.PATIENT.value, actor_id or ins, "consult",
                  detail={"found": len(out)})  # fmt: skip
    return out


def set_masked(
    tx: Tx, ins: str, actor: Actor, actor_id: str, document_id: int, masked: bool
) -> None:
    """Mask (the patient) or unmask (the patient, a médecin traitant DMP, the author). A
    document the patient may not see is, to them, one that does not exist."""
    state = require_record(tx.conn, ins)
    if actor is Actor.PATIENT:
        doc = seen_document(tx.conn, ins, document_id, patient_adult(tx.conn, ins))
    else:
        doc = stored_document(tx.conn, ins, document_id)
    if masked:
        check_mask(actor)
    else:
        check_unmask(document_state(doc), state, actor, actor_id)
    stored.set_document_masked(tx, document_id, masked)
    traces.append(tx, ins, actor.value, actor_id, "mask" if masked else "unmask",
                  document_id=document_id)  # fmt: skip


def set_people(
    tx: Tx, ins: str, actor: Actor, actor_id: str, role: str, national_id: str, present: bool
) -> None:
    """Name/remove a médecin traitant DMP (the patient), block/unblock a professional
    (the patient, or a médecin traitant DMP on the patient's behalf)."""
    state = require_record(tx.conn, ins)
    _check_people(state, actor, actor_id, role, national_id, present)
    record_id = stored.ensure_record(tx, ins)
    stored.set_person(tx, record_id, role, national_id, present)
    if role == BLOCKED and present:  # a blocked professional loses their authorisation
        stored.drop_authorization(tx, record_id, national_id)
    traces.append(tx, ins, actor.value, actor_id, PEOPLE_ACTIONS[(role, present)],
                  detail={"national_id": national_id})  # fmt: skip


def _check_people(
    state: RecordState, actor: Actor, actor_id: str, role: str, national_id: str, present: bool
) -> None:
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
        raise DMPError(f"rôle inconnu (unknown role) {role!r}")


def set_record(
    tx: Tx, ins: str, actor_id: str | None = None, /, *, closed: bool | None = None,
    oppose_bris_de_glace: bool | None = None, oppose_centre15: bool | None = None,
) -> None:  # fmt: skip
    """The patient closes/reopens the DMP, sets or lifts the oppositions; traced as done
    by `actor_id` (the patient, by default, or their legal representative's login)."""
    require_record(tx.conn, ins)
    record_id = stored.ensure_record(tx, ins)
    asked = {"closed": closed, "oppose_bris_de_glace": oppose_bris_de_glace,
             "oppose_centre15": oppose_centre15}  # fmt: skip
    changes = {key: value for key, value in asked.items() if value is not None}
    if not changes:
        return
    stored.update_record(tx, record_id, **changes)
    traces.append(tx, ins, Actor.PATIENT.value, actor_id or ins, "settings", detail=changes)
