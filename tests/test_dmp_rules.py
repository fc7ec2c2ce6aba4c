"""The DMP's rules (DOMAIN.md §5), one test each, on SQLite and PostgreSQL.

The service functions run in the store's group commit, as the API and the
mail deposit will call them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import update

from mss.core.identity import build_patient
from mss.dmp import service, traces
from mss.dmp.access import Actor, Habilitations, Mode, Professional
from mss.dmp.errors import (
    DMPAccessForbidden,
    DMPAuthorizationExpired,
    DMPAuthorizationNotFound,
    DMPClosed,
    DMPPatientNotFound,
    DocumentError,
)
from mss.dmp.service import BLOCKED, TREATING, NewDocument, Search, Settings
from mss.store.accounts import add_patients
from mss.store.api import Store
from mss.store.models import dmp_authorization_table, dmp_trace_table, utcnow

INS = "279035121518989"
MINOR = "162018885045327"
AUTHOR = Professional("810003456789", "10", "Dr Jean DUPONT")  # médecin
DOCTOR = Professional("810001122334", "10", "Dr François DOE-MARTIN")
NURSE = Professional("0131234567", "60", "Hélène LÉVÊQUE")
PHARMACIST = Professional("810007654321", "21", "Sophie MARTIN")
SETTINGS = Settings(authorization_days=365, habilitations=Habilitations.load())


def doc(n: int, **kwargs: Any) -> NewDocument:
    values: dict[str, Any] = {
        "unique_id": f"1.2.250.1.999.1.{n}", "content": f"document {n}".encode(),
        "mime_type": "text/xml", "title": f"Document {n}", "class_code": "10",
        "type_code": "11488-4", "creation_time": dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
        + dt.timedelta(days=n),
    }  # fmt: skip
    values.update(kwargs)
    return NewDocument(**values)


@pytest.fixture
async def dmp(store: Store) -> Store:
    minor_birth = (dt.date.today() - dt.timedelta(days=365 * 10)).isoformat()
    patients = [
        build_patient({"ins": INS, "family": "DE VINCI", "given": "RUTH",
                       "birth_date": "1979-03-17", "sex": "F"}),
        build_patient({"ins": MINOR, "family": "PETIT", "given": "LEO",
                       "birth_date": minor_birth, "sex": "M"}),
    ]  # fmt: skip
    await store.write(lambda tx: add_patients(tx, patients, "patient.mssante.fr"))
    return store


async def deposit(store: Store, *docs: NewDocument, author: Professional = AUTHOR, ins: str = INS):  # type: ignore[no-untyped-def]
    return await store.write(lambda tx: service.deposit(tx, store.blobs, ins, author, list(docs)))


async def authorize(store: Store, who: Professional, ins: str = INS) -> None:
    await store.write(lambda tx: service.authorize(tx, SETTINGS, ins, who))


async def search(
    store: Store, who: Professional, mode: Mode = Mode.NORMAL, ins: str = INS, **q: Any
) -> list[str]:  # type: ignore[no-untyped-def]
    found = await store.write(
        lambda tx: service.search_documents(tx, SETTINGS, ins, who, mode, Search(**q))
    )
    return [f["unique_id"] for f in found]


async def test_unknown_patient_is_dmp_patient_not_found(dmp: Store) -> None:
    with pytest.raises(DMPPatientNotFound) as info:
        await deposit(dmp, doc(1), ins="288091234567823")
    assert info.value.mdn_code == 902


async def test_closed_dmp_refuses_deposits_and_consultation(dmp: Store) -> None:
    await authorize(dmp, DOCTOR)
    await dmp.write(lambda tx: service.set_record(tx, INS, closed=True))
    with pytest.raises(DMPClosed):
        await deposit(dmp, doc(1))
    with pytest.raises(DMPClosed):
        await search(dmp, DOCTOR)
    await dmp.write(lambda tx: service.set_record(tx, INS, closed=False))
    assert [d.unique_id for d in await deposit(dmp, doc(1))] == ["1.2.250.1.999.1.1"]


async def test_blocked_professional_cannot_feed_or_consult(dmp: Store) -> None:
    await authorize(dmp, DOCTOR)
    await dmp.write(lambda tx: service.set_people(tx, INS, Actor.PATIENT, INS, BLOCKED,
                                                  DOCTOR.national_id, True))  # fmt: skip
    with pytest.raises(DMPAccessForbidden):
        await deposit(dmp, doc(1), author=DOCTOR)
    with pytest.raises(DMPAccessForbidden):
        await search(dmp, DOCTOR)
    with pytest.raises(DMPAccessForbidden):
        await authorize(dmp, DOCTOR)


async def test_feeding_needs_a_qualified_ins(dmp: Store) -> None:
    from mss.store.models import patient_table

    not_qualified = update(patient_table).where(patient_table.c.ins == INS)
    await dmp.write(lambda tx: tx.conn.execute(not_qualified.values(identity_status="VALI")))
    with pytest.raises(DocumentError) as info:
        await deposit(dmp, doc(1))
    assert info.value.mdn_code == 905


async def test_authorisations_govern_consultation_not_feeding(dmp: Store) -> None:
    """A professional with no authorisation deposits (consent to feed is presumed)."""
    [done] = await deposit(dmp, doc(1), author=NURSE)
    assert done.version == 1
    with pytest.raises(DMPAuthorizationNotFound):
        await search(dmp, NURSE)


async def test_consultation_needs_an_authorisation(dmp: Store) -> None:
    await deposit(dmp, doc(1))
    with pytest.raises(DMPAuthorizationNotFound):
        await search(dmp, DOCTOR)
    await authorize(dmp, DOCTOR)
    assert await search(dmp, DOCTOR) == ["1.2.250.1.999.1.1"]


async def test_an_expired_authorisation_is_dmp_authorization_expired(dmp: Store) -> None:
    await authorize(dmp, DOCTOR)
    past = utcnow() - dt.timedelta(days=1)
    await dmp.write(lambda tx: tx.conn.execute(
        update(dmp_authorization_table).values(expires_at=past)))  # fmt: skip
    with pytest.raises(DMPAuthorizationExpired):
        await search(dmp, DOCTOR)


async def test_bris_de_glace_and_centre15_are_refused_when_the_patient_opposed(
    dmp: Store,
) -> None:
    await deposit(dmp, doc(1))
    assert await search(dmp, DOCTOR, Mode.BRIS_DE_GLACE) == ["1.2.250.1.999.1.1"]
    assert await search(dmp, DOCTOR, Mode.CENTRE_15) == ["1.2.250.1.999.1.1"]
    await dmp.write(lambda tx: service.set_record(tx, INS, oppose_bris_de_glace=True,
                                                  oppose_centre15=True))  # fmt: skip
    with pytest.raises(DMPAccessForbidden, match="bris de glace"):
        await search(dmp, DOCTOR, Mode.BRIS_DE_GLACE)
    with pytest.raises(DMPAccessForbidden, match="centre 15"):
        await search(dmp, DOCTOR, Mode.CENTRE_15)


async def test_rights_by_profession_follow_the_habilitation_matrix(dmp: Store) -> None:
    await deposit(dmp, doc(1, class_code="10"), doc(2, class_code="31", type_code="18748-4"),
                  doc(3, class_code="42", type_code="57833-6"))  # fmt: skip
    for who in (DOCTOR, PHARMACIST, NURSE):
        await authorize(dmp, who)
    assert len(await search(dmp, DOCTOR)) == 3  # doctors see (almost) everything
    assert sorted(await search(dmp, PHARMACIST)) == ["1.2.250.1.999.1.1", "1.2.250.1.999.1.3"]
    assert "1.2.250.1.999.1.2" not in await search(dmp, NURSE)  # no imaging for nurses


async def test_a_masked_document_is_seen_by_its_author_the_patient_and_treating_doctors_only(
    dmp: Store,
) -> None:
    await deposit(dmp, doc(1, confidentiality=("N", "MASQUE_PS")))
    for who in (DOCTOR, AUTHOR):
        await authorize(dmp, who)
    assert await search(dmp, DOCTOR) == []
    assert await search(dmp, AUTHOR) == ["1.2.250.1.999.1.1"]
    mine = await dmp.write(lambda tx: service.patient_documents(tx, INS))
    assert [d["unique_id"] for d in mine] == ["1.2.250.1.999.1.1"]
    await dmp.write(lambda tx: service.set_people(tx, INS, Actor.PATIENT, INS, TREATING,
                                                  DOCTOR.national_id, True))  # fmt: skip
    assert await search(dmp, DOCTOR) == ["1.2.250.1.999.1.1"]


async def test_masking_is_reversible_by_patient_treating_doctor_and_author_only(dmp: Store) -> None:
    [d] = await deposit(dmp, doc(1))
    await dmp.write(lambda tx: service.set_masked(tx, INS, Actor.PATIENT, INS, d.document_id, True))
    with pytest.raises(DMPAccessForbidden):  # a professional masks only at deposit
        await dmp.write(lambda tx: service.set_masked(
            tx, INS, Actor.PROFESSIONAL, AUTHOR.national_id, d.document_id, True))  # fmt: skip
    with pytest.raises(DMPAccessForbidden):
        await dmp.write(lambda tx: service.set_masked(
            tx, INS, Actor.PROFESSIONAL, DOCTOR.national_id, d.document_id, False))  # fmt: skip
    await dmp.write(lambda tx: service.set_masked(
        tx, INS, Actor.PROFESSIONAL, AUTHOR.national_id, d.document_id, False))  # fmt: skip
    await authorize(dmp, DOCTOR)
    assert await search(dmp, DOCTOR) == ["1.2.250.1.999.1.1"]


async def test_an_invisible_document_is_hidden_from_the_patient_until_revealed_for_good(
    dmp: Store,
) -> None:
    [d] = await deposit(dmp, doc(1, confidentiality=("N", "INVISIBLE_PATIENT")))
    assert await dmp.write(lambda tx: service.patient_documents(tx, INS)) == []
    await authorize(dmp, DOCTOR)
    assert await search(dmp, DOCTOR) == ["1.2.250.1.999.1.1"]  # professionals see it
    await dmp.write(lambda tx: service.reveal_to_patient(tx, SETTINGS, INS, DOCTOR, Mode.NORMAL,
                                                         d.document_id))  # fmt: skip
    mine = await dmp.write(lambda tx: service.patient_documents(tx, INS))
    assert [m["unique_id"] for m in mine] == ["1.2.250.1.999.1.1"]
    from mss.dmp.errors import DMPError

    with pytest.raises(DMPError, match="déjà visible"):
        await dmp.write(lambda tx: service.reveal_to_patient(
            tx, SETTINGS, INS, DOCTOR, Mode.NORMAL, d.document_id))  # fmt: skip


async def test_documents_hidden_from_representatives_appear_at_majority(dmp: Store) -> None:
    await deposit(dmp, doc(1, confidentiality=("N", "INVISIBLE_REPRESENTANTS_LEGAUX")),
                  doc(2), ins=MINOR)  # fmt: skip
    now = await dmp.write(lambda tx: service.patient_documents(tx, MINOR))
    assert [d["unique_id"] for d in now] == ["1.2.250.1.999.1.2"]
    later = dt.date.today() + dt.timedelta(days=365 * 9)
    adult = await dmp.write(lambda tx: service.patient_documents(tx, MINOR, today=later))
    assert len(adult) == 2


async def test_at_most_seven_treating_doctors(dmp: Store) -> None:
    for n in range(7):
        await dmp.write(lambda tx, n=n: service.set_people(
            tx, INS, Actor.PATIENT, INS, TREATING, f"8100000000{n:02d}", True))  # fmt: skip
    from mss.dmp.errors import DMPError

    with pytest.raises(DMPError, match="au plus 7"):
        await dmp.write(lambda tx: service.set_people(
            tx, INS, Actor.PATIENT, INS, TREATING, "810000000099", True))  # fmt: skip


async def test_a_treating_doctor_may_block_a_professional_for_the_patient(dmp: Store) -> None:
    await dmp.write(lambda tx: service.set_people(tx, INS, Actor.PATIENT, INS, TREATING,
                                                  DOCTOR.national_id, True))  # fmt: skip
    with pytest.raises(DMPAccessForbidden):  # another professional may not
        await dmp.write(lambda tx: service.set_people(
            tx, INS, Actor.PROFESSIONAL, NURSE.national_id, BLOCKED, AUTHOR.national_id,
            True))  # fmt: skip
    await dmp.write(lambda tx: service.set_people(
        tx, INS, Actor.PROFESSIONAL, DOCTOR.national_id, BLOCKED, AUTHOR.national_id,
        True))  # fmt: skip
    with pytest.raises(DMPAccessForbidden):
        await deposit(dmp, doc(1))


async def test_traces_are_read_by_the_patient_and_treating_doctors_only(dmp: Store) -> None:
    await deposit(dmp, doc(1))
    await authorize(dmp, DOCTOR)
    await search(dmp, DOCTOR)
    mine = await dmp.read(lambda c: service.read_traces(c, INS, Actor.PATIENT, INS))
    assert [t["action"] for t in mine] == ["consult", "authorize", "deposit"]
    with pytest.raises(DMPAccessForbidden):
        await dmp.read(lambda c: service.read_traces(c, INS, Actor.PROFESSIONAL,
                                                     DOCTOR.national_id))  # fmt: skip


async def test_a_new_version_keeps_the_history_and_only_its_author_may_replace(dmp: Store) -> None:
    await deposit(dmp, doc(1))
    with pytest.raises(DocumentError) as info:
        await deposit(dmp, doc(2, replaces="1.2.250.1.999.1.1"), author=DOCTOR)
    assert info.value.mdn_code == 901
    [v2] = await deposit(dmp, doc(2, replaces="1.2.250.1.999.1.1"))
    assert v2.version == 2
    await authorize(dmp, DOCTOR)
    assert await search(dmp, DOCTOR) == ["1.2.250.1.999.1.2"]
    history = await search(dmp, DOCTOR, include_superseded=True)
    assert sorted(history) == ["1.2.250.1.999.1.1", "1.2.250.1.999.1.2"]


async def test_the_same_document_deposited_twice_is_stored_once(dmp: Store) -> None:
    [first] = await deposit(dmp, doc(1))
    [again] = await deposit(dmp, doc(1))
    assert again.duplicate and again.document_id == first.document_id
    count = await dmp.read(lambda c: service.count_documents(c, INS))
    assert count == 1


async def test_first_access_and_new_document_are_notification_events(dmp: Store) -> None:
    from mss.store.outbox import list_items

    await deposit(dmp, doc(1), doc(2, confidentiality=("INVISIBLE_PATIENT",)))
    await authorize(dmp, DOCTOR)
    await search(dmp, DOCTOR)
    await search(dmp, DOCTOR)
    rows = await dmp.read(lambda c: list_items(c, kinds=["notification"]))
    kinds = [r.payload["event"] for r in rows if r.payload["event"] != "profile_created"]
    assert kinds == ["new_document", "first_access"]  # not for the invisible one, once


async def test_verify_traces_detects_a_modified_or_deleted_trace(dmp: Store) -> None:
    from sqlalchemy import delete, select

    await deposit(dmp, doc(1), doc(2), doc(3))
    report = await dmp.read(traces.verify)
    assert report.ok and report.traces == 3
    t = dmp_trace_table.c
    second = await dmp.read(lambda c: c.execute(select(t.id).order_by(t.id)).all()[1][0])
    await dmp.write(lambda tx: tx.conn.execute(
        update(dmp_trace_table).where(t.id == second).values(actor="810000000000")))  # fmt: skip
    assert any("modified" in p for p in (await dmp.read(traces.verify)).problems)
    await dmp.write(lambda tx: tx.conn.execute(delete(dmp_trace_table).where(t.id == second)))
    assert any("deleted" in p for p in (await dmp.read(traces.verify)).problems)


async def test_cli_verify_traces_exits_1_on_a_modified_trace(instance: Any) -> None:
    import sqlite3
    from contextlib import closing

    from .conftest import run_mss

    intact = run_mss("dmp", "verify-traces", "--data-dir", str(instance))
    assert intact.returncode == 0 and intact.stdout.startswith("0 traces, chain intact")
    store = Store.open(f"sqlite:///{instance / 'mss.db'}", instance / "keys" / "blob.keys")
    store.start()
    try:
        patient = build_patient({"ins": INS, "family": "DE VINCI", "given": "RUTH",
                                 "birth_date": "1979-03-17", "sex": "F"})  # fmt: skip
        await store.write(lambda tx: add_patients(tx, [patient], "patient.mssante.fr"))
        await deposit(store, doc(1), doc(2))
    finally:
        await store.close()
    assert run_mss("dmp", "verify-traces", "--data-dir", str(instance)).returncode == 0
    with closing(sqlite3.connect(instance / "mss.db")) as db, db:
        db.execute("UPDATE dmp_trace SET action = 'consult' WHERE id = 1")
    broken = run_mss("dmp", "verify-traces", "--data-dir", str(instance))
    assert broken.returncode == 1 and "BROKEN" in broken.stdout
    assert "trace 1: modified" in broken.stderr
