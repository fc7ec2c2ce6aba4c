"""Conversation records (DOMAIN.md §2): what the policy will look up."""

from __future__ import annotations

from mss.core.identity import build_patient
from mss.store.accounts import add_patients
from mss.store.api import Store
from mss.store.conversations import (
    PATIENT,
    PROFESSIONAL,
    add_participant,
    conversations_of_patient,
    end_conversation,
    find_by_message_ids,
    get_conversation,
    open_conversation,
    participants,
    record_message,
)
from mss.store.db import Tx

PATIENT_VALUES = {
    "ins": "279035121518989",
    "family": "PAT-TROIS",
    "given": "DOMINIQUE",
    "birth_date": "1979-03-28",
    "sex": "F",
}


async def test_conversation_is_found_again_by_the_message_ids_of_a_reply(store: Store) -> None:
    [patient_id] = await store.write(
        lambda tx: add_patients(tx, [build_patient(PATIENT_VALUES)], "patient.mssante.fr")
    )

    def start(tx: Tx) -> int:
        cid = open_conversation(
            tx,
            patient_id=patient_id,
            professional="jean@pro.mssante.test",
            subject="Résultats",
            display_name="Dr Jean Dupont",
        )
        record_message(
            tx,
            cid,
            message_id="<a1@pro.mssante.test>",
            sender="jean@pro.mssante.test",
            from_patient=False,
        )
        add_participant(tx, cid, "marie@pro.mssante.test", PROFESSIONAL)
        add_participant(tx, cid, "jean@pro.mssante.test", PROFESSIONAL)  # already there: no-op
        return cid

    cid = await store.write(start)
    found = await store.read(
        lambda c: find_by_message_ids(c, patient_id, ["<unknown@x>", "<a1@pro.mssante.test>"])
    )
    assert found is not None and found.id == cid and found.open
    assert await store.read(lambda c: participants(c, cid, PROFESSIONAL)) == [
        "jean@pro.mssante.test",
        "marie@pro.mssante.test",
    ]
    assert await store.read(lambda c: participants(c, cid, PATIENT)) == []
    assert await store.read(lambda c: find_by_message_ids(c, patient_id, [])) is None
    assert (
        await store.read(
            lambda c: find_by_message_ids(c, patient_id + 1, ["<a1@pro.mssante.test>"])
        )
        is None
    )


async def test_ended_conversation_is_no_longer_open(store: Store) -> None:
    [patient_id] = await store.write(
        lambda tx: add_patients(tx, [build_patient(PATIENT_VALUES)], "patient.mssante.fr")
    )
    cid = await store.write(
        lambda tx: open_conversation(
            tx, patient_id=patient_id, professional="jean@pro.mssante.test", subject=None
        )
    )
    await store.write(lambda tx: end_conversation(tx, cid, by="jean@pro.mssante.test"))
    record = await store.read(lambda c: get_conversation(c, cid))
    assert record is not None and not record.open and record.ended_by == "jean@pro.mssante.test"
    assert [c.id for c in await store.read(lambda c: conversations_of_patient(c, patient_id))] == [
        cid
    ]
