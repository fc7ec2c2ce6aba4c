"""An account the operator switched off and a profile not active (the hostile review of
issue 12): no session shows such a patient (their representatives' neither), the web
door refuses to send as them, a patient's own closure leaves their session the settings
only (to reopen), reopening never undoes the operator's switch, and the operator's
closure ends every session showing the patient (reopening is then the operator's)."""

from __future__ import annotations

import pytest

from mss.delivery.checks import Door
from mss.delivery.inbound import SessionInfo
from mss.errors import Rejection
from mss.security.auth import LoginIdentity
from mss.store.accounts import get_account, set_profile_status
from mss.store.models import AccountKind
from mss.store.space import end_sessions_of
from mss.store.space_patients import set_account_disabled

from .harness import Running
from .space import OTHER_INS, PATIENT_INS, patient_client, representative_client
from .space_login import Space, space_fixture  # noqa: F401  (the fixture `space`)
from .space_mail import JEAN, PATIENT, add_people, imap_inbox, pro_writes
from .test_space_login_guards import ready

DOMAIN = "patient.mssante.fr"


def conversation_ids(page: str) -> list[str]:
    import re

    return re.findall(r'href="/espace/messages/(\d+)"', page)


async def _disable(mss: Running, ins: str) -> None:
    """What `mss patient disable INS` did before: the patient's own sessions only."""
    address = f"{ins}@{DOMAIN}"

    def job(tx: object) -> None:
        set_account_disabled(tx, address, True)  # type: ignore[arg-type]
        end_sessions_of(tx, address)  # type: ignore[arg-type]

    await mss.store.write(job)


async def _account_disabled(mss: Running, ins: str) -> bool:
    found = await mss.store.read(lambda c: get_account(c, f"{ins}@{DOMAIN}"))
    assert found is not None
    return bool(found.disabled)


async def _with_minor(mss: Running, mail_to_minor: bool = False) -> None:
    await add_people(mss, PATIENT_INS)
    await mss.add_patient(OTHER_INS, birth_date="2015-03-01")
    if mail_to_minor:
        await pro_writes(mss, JEAN, f"{OTHER_INS}@{DOMAIN}", "<m1@pro.mssante.test>")


async def test_a_representative_session_ends_when_the_patients_account_is_disabled(
    mss: Running,
) -> None:
    await _with_minor(mss, mail_to_minor=True)
    async with representative_client(mss, PATIENT_INS, OTHER_INS) as (client, _csrf):
        assert (await client.get("/espace/messages")).status_code == 200
        await _disable(mss, OTHER_INS)
        after = await client.get("/espace/messages")
    assert after.status_code == 303 and "/connexion" in after.headers["location"]


async def test_a_representative_cannot_reenable_an_account_the_operator_disabled(
    mss: Running,
) -> None:
    await _with_minor(mss)
    async with representative_client(mss, PATIENT_INS, OTHER_INS) as (client, csrf):
        await _disable(mss, OTHER_INS)
        await client.post("/espace/parametres/profil/rouvrir", data={"csrf": csrf})
    assert await _account_disabled(mss, OTHER_INS)


async def test_a_profile_the_operator_closed_is_not_reopened_by_a_session_left_open(
    mss: Running,
) -> None:
    await add_people(mss, PATIENT_INS)
    async with patient_client(mss, PATIENT_INS) as (client, csrf):
        await mss.set_patient_status(PATIENT_INS, "closed")
        reopened = await client.post("/espace/parametres/profil/rouvrir", data={"csrf": csrf})
    assert reopened.status_code == 401  # the session ended with the operator's closure
    assert await _account_disabled(mss, PATIENT_INS)


async def test_the_operators_closure_ends_the_representatives_sessions_too(mss: Running) -> None:
    await _with_minor(mss, mail_to_minor=True)
    async with representative_client(mss, PATIENT_INS, OTHER_INS) as (client, _csrf):
        await mss.set_patient_status(OTHER_INS, "opposed")
        after = await client.get("/espace/messages")
    assert after.status_code == 303 and "/connexion" in after.headers["location"]


async def test_a_representative_of_a_disabled_account_cannot_send_mail_as_the_patient(
    mss: Running,
) -> None:
    await _with_minor(mss, mail_to_minor=True)
    async with representative_client(mss, PATIENT_INS, OTHER_INS) as (client, csrf):
        [conversation] = conversation_ids((await client.get("/espace/messages")).text)
        await _disable(mss, OTHER_INS)
        await client.post(f"/espace/messages/{conversation}/repondre",
                          data={"csrf": csrf, "texte": "Bonjour docteur"})  # fmt: skip
    assert await imap_inbox(mss, JEAN) == []


async def test_a_patient_whose_profile_is_closed_sends_no_mail_from_the_space(
    mss: Running,
) -> None:
    await add_people(mss, PATIENT_INS)
    await pro_writes(mss, JEAN, PATIENT, "<m1@pro.mssante.test>")
    async with patient_client(mss, PATIENT_INS) as (client, csrf):
        [conversation] = conversation_ids((await client.get("/espace/messages")).text)
        closed = await client.post(
            "/espace/parametres/profil/fermer", data={"csrf": csrf, "confirmer": "oui"}
        )
        assert closed.status_code == 303
        sent = await client.post(
            f"/espace/messages/{conversation}/repondre",
            data={"csrf": csrf, "texte": "Bonjour docteur"},
        )
    assert sent.status_code == 403
    assert await imap_inbox(mss, JEAN) == []


async def test_a_closed_profile_shows_its_patient_the_settings_only_to_reopen_it(
    mss: Running,
) -> None:
    await add_people(mss, PATIENT_INS)
    async with patient_client(mss, PATIENT_INS) as (client, csrf):
        await client.post(
            "/espace/parametres/profil/fermer", data={"csrf": csrf, "confirmer": "oui"}
        )
        assert (await client.get("/espace/messages")).status_code == 403
        assert (await client.get("/espace/documents")).status_code == 403
        assert (await client.get("/espace/parametres")).status_code == 200
        export = await client.get("/espace/parametres/export")
        assert export.status_code == 200 and export.content.startswith(b"PK")
        home = await client.get("/espace/")
        assert home.headers["location"] == "/espace/parametres"
        reopened = await client.post("/espace/parametres/profil/rouvrir", data={"csrf": csrf})
        assert reopened.status_code == 303
        assert (await client.get("/espace/messages")).status_code == 200
    assert not await _account_disabled(mss, PATIENT_INS)


async def test_reopening_a_profile_does_not_undo_the_operators_switch(mss: Running) -> None:
    await add_people(mss, PATIENT_INS)
    address = f"{PATIENT_INS}@{DOMAIN}"
    await mss.store.write(lambda tx: set_account_disabled(tx, address, True))
    for status in ("closed", "active"):
        await mss.store.write(
            lambda tx, s=status: set_profile_status(tx, PATIENT_INS, s, DOMAIN, by_patient=True)  # type: ignore[misc]
        )
    assert await _account_disabled(mss, PATIENT_INS)
    await mss.store.write(lambda tx: set_account_disabled(tx, address, False))
    assert not await _account_disabled(mss, PATIENT_INS)


async def test_the_web_door_refuses_a_sender_whose_account_is_switched_off(space: Space) -> None:
    await ready(space)
    address = f"{PATIENT_INS}@{DOMAIN}"
    login = LoginIdentity(address, AccountKind.PATIENT.value, None, "space", "Dominique")
    session = SessionInfo(Door.WEB, "espace-patient", "127.0.0.1", True, login)
    pipeline = space.deps.pipeline
    assert pipeline is not None
    assert (await pipeline.sender(session, address)).patient_ins == PATIENT_INS
    await space.mss.store.write(lambda tx: set_account_disabled(tx, address, True))
    with pytest.raises(Rejection, match="désactivé"):
        await pipeline.sender(session, address)
    await space.mss.store.write(lambda tx: set_account_disabled(tx, address, False))
    await space.mss.set_patient_status(PATIENT_INS, "closed")
    with pytest.raises(Rejection, match="profil est fermé"):
        await pipeline.sender(session, address)
