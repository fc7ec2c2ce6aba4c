"""Conversation records (DOMAIN.md §2): what the policy looks up."""

from __future__ import annotations

import datetime as dt

from mss.store.api import Store
from mss.store.conversations import (
    PATIENT,
    PROFESSIONAL,
    add_participant,
    conversations_of_patient,
    end_conversation,
    find_by_message_ids,
    get_conversation,
    last_professional_message_at,
    open_conversation,
    open_conversations_with,
    participants,
    record_message,
)
from mss.store.sql import Tx

INS = "279035121518989"
JEAN = "jean@pro.mssante.test"


async def _start(store: Store) -> int:
    def job(tx: Tx) -> int:
        cid = open_conversation(
            tx, patient_ins=INS, professional=JEAN, subject="Résultats", display_name="Dr Dupont"
        )
        record_message(tx, cid, message_id="<a1@pro.mssante.test>", sender=JEAN, from_patient=False)
        add_participant(tx, cid, "marie@pro.mssante.test", PROFESSIONAL)
        add_participant(tx, cid, JEAN, PROFESSIONAL)  # already there: no-op
        return cid

    return await store.write(job)


async def test_conversation_is_found_again_by_the_message_ids_of_a_reply(store: Store) -> None:
    cid = await _start(store)
    found = await store.read(
        lambda c: find_by_message_ids(c, INS, ["<unknown@x>", "<a1@pro.mssante.test>"])
    )
    assert found is not None and found.id == cid and found.open
    assert await store.read(lambda c: participants(c, cid, PROFESSIONAL)) == [
        JEAN,
        "marie@pro.mssante.test",
    ]
    assert await store.read(lambda c: participants(c, cid, PATIENT)) == []
    assert await store.read(lambda c: find_by_message_ids(c, INS, [])) is None
    other = "188102B17295165"
    assert (
        await store.read(lambda c: find_by_message_ids(c, other, ["<a1@pro.mssante.test>"])) is None
    )


async def test_last_professional_message_time_ignores_patient_replies(store: Store) -> None:
    cid = await _start(store)
    first = await store.read(lambda c: last_professional_message_at(c, cid))
    assert first is not None and first.tzinfo is not None
    await store.write(
        lambda tx: record_message(
            tx,
            cid,
            message_id="<r1@patient>",
            sender=f"{INS}@patient.mssante.fr",
            from_patient=True,
        )
    )
    assert await store.read(lambda c: last_professional_message_at(c, cid)) == first
    assert first <= dt.datetime.now(dt.UTC)


async def test_ended_conversation_is_no_longer_open(store: Store) -> None:
    cid = await _start(store)
    assert [c.id for c in await store.read(lambda c: open_conversations_with(c, INS, JEAN))] == [
        cid
    ]
    await store.write(lambda tx: end_conversation(tx, cid, by=JEAN))
    record = await store.read(lambda c: get_conversation(c, cid))
    assert record is not None and not record.open and record.ended_by == JEAN
    assert [c.id for c in await store.read(lambda c: conversations_of_patient(c, INS))] == [cid]
    assert await store.read(lambda c: open_conversations_with(c, INS, JEAN)) == []


async def test_a_message_moves_the_last_activity_unless_its_conversation_opened_with_it(
    store: Store,
) -> None:
    def first(tx: Tx) -> int:
        cid = open_conversation(tx, patient_ins=INS, professional=JEAN, subject="Résultats")
        record_message(tx, cid, message_id="<b1@pro.mssante.test>", sender=JEAN,
                       from_patient=False, touch=False)  # fmt: skip
        return cid

    cid = await store.write(first)
    opened = await store.read(lambda c: get_conversation(c, cid))
    assert opened is not None and opened.last_activity == opened.started_at
    await store.write(lambda tx: record_message(
        tx, cid, message_id="<b2@pro.mssante.test>", sender=JEAN, from_patient=False))  # fmt: skip
    later = await store.read(lambda c: get_conversation(c, cid))
    assert later is not None and later.last_activity > opened.last_activity
