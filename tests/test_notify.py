"""Patients' notices end to end: events written with their cause, the outbox runner, the
e-mail channel through a real smarthost (an aiosmtpd sink over STARTTLS in the test),
and nothing about the patient's health in any notice (DOMAIN.md §8)."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import ssl
from collections.abc import AsyncIterator
from email import policy
from pathlib import Path

import pytest

from mss.dmp import service
from mss.dmp.access import Mode, Professional
from mss.dmp.service import NewDocument, Search, Settings
from mss.notify.base import EVENTS, ChannelName
from mss.notify.templates import TEXTS, render
from mss.store import notify as notes
from mss.store import outbox
from mss.store.notifications import add_notification

from .harness import Running, message, running
from .notifying import Sink, notify_settings, until

PRO = "jean.dupont@pro.mssante.test"
INS = "279035121518989"
PATIENT = f"{INS}@patient.mssante.fr"
EMAIL = "ruth.devinci@exemple.fr"
# unique strings: none of them may appear in a notice
SECRET_SUBJECT = "Resultats-biopsie-7f3a9c"
SECRET_SENDER = "Docteur Zebulon Quenouille"
SECRET_TITLE = "Compte-rendu-oncologie-51e2"
DOCTOR = Professional("810001122334", "10", SECRET_SENDER)


@pytest.fixture
async def patient_space(instance: Path, sink: tuple[Sink, int]) -> AsyncIterator[Running]:
    async with running(instance, overrides=notify_settings(sink[1])) as mss:
        await mss.add_pro(PRO, national_id="810003456789", name=SECRET_SENDER)
        await mss.add_patient(INS, email=EMAIL)
        yield mss


def texts_of(raw: bytes) -> str:
    parsed = email.message_from_bytes(raw, policy=policy.default)
    body = parsed.get_body(("plain",))
    assert body is not None
    return f"{parsed['Subject']}\n{body.get_content()}"


async def log_of(mss: Running, event: str) -> list[notes.LogEntry]:
    entries = await mss.store.read(lambda c: notes.log_entries(c, ins=INS))
    return [e for e in entries if e.event == event]


async def test_a_message_to_a_patient_sends_one_notice_without_health_data(
    patient_space: Running, sink: tuple[Sink, int]
) -> None:
    box, _ = sink
    await until(lambda: _count(box, 1))  # the profile was created: « … a été créé »
    mail = message(PRO, PATIENT, SECRET_SUBJECT, body="Tumeur bénigne, rien d'inquiétant.")
    assert (await patient_space.submit(PRO, mail, [PATIENT])).code == 250
    await until(lambda: _count(box, 2))
    mail_from, rcpts, raw = box.mail[1]
    assert rcpts == [EMAIL]
    assert mail_from.startswith("bounces+") and mail_from.endswith("@pro.mssante.test")
    text = texts_of(raw)
    assert "Vous avez reçu un nouveau message dans votre messagerie de santé" in text
    assert "https://espace.test/" in text
    for secret in (SECRET_SUBJECT, SECRET_SENDER, "Tumeur", "jean.dupont", PRO):
        assert secret not in raw.decode("utf-8", "replace")
    [entry] = await log_of(patient_space, "new_message")
    assert (entry.status, entry.channel, entry.destination) == ("sent", "email",
                                                                 "r***@exemple.fr")  # fmt: skip
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert parsed["X-MSS-Notification-Id"] == entry.notice_id  # the receiver drops repeats
    assert parsed["Auto-Submitted"] == "auto-generated"


async def test_ten_messages_in_a_minute_make_one_notice(
    patient_space: Running, sink: tuple[Sink, int]
) -> None:
    box, _ = sink
    await until(lambda: _count(box, 1))
    for n in range(10):
        await patient_space.submit(PRO, message(PRO, PATIENT, f"Message {n}"), [PATIENT])
    await until(lambda: _logged(patient_space, "new_message", 10))
    statuses = sorted(e.status for e in await log_of(patient_space, "new_message"))
    assert statuses.count("coalesced") == 9 and statuses.count("sent") + statuses.count(
        "queued") == 1  # fmt: skip
    await until(lambda: _count(box, 2))
    await asyncio.sleep(0.5)
    assert len(box.mail) == 2  # the profile's notice and one for the ten messages


async def test_a_deposited_document_and_a_first_consultation_notify_once_each(
    patient_space: Running, sink: tuple[Sink, int]
) -> None:
    box, _ = sink
    await until(lambda: _count(box, 1))
    store, settings = patient_space.store, Settings()
    document = NewDocument(
        unique_id="1.2.250.1.999.9.1", content=b"<ClinicalDocument/>", mime_type="text/xml",
        title=SECRET_TITLE, class_code="10", type_code="11488-4",
        creation_time=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
    )  # fmt: skip
    await store.write(lambda tx: service.deposit(tx, store.blobs, INS, DOCTOR, [document]))
    await until(lambda: _count(box, 2))
    await store.write(lambda tx: service.authorize(tx, settings, INS, DOCTOR))
    for _ in range(2):  # the first consultation only
        await store.write(
            lambda tx: service.search_documents(tx, settings, INS, DOCTOR, Mode.NORMAL, Search())
        )
    await until(lambda: _count(box, 3))
    await asyncio.sleep(0.5)
    assert len(box.mail) == 3
    document_notice, access_notice = texts_of(box.mail[1][2]), texts_of(box.mail[2][2])
    assert "Un nouveau document a été ajouté à votre dossier médical" in document_notice
    assert "a consulté votre dossier médical" in access_notice
    for raw in (box.mail[1][2], box.mail[2][2]):
        for secret in (SECRET_TITLE, SECRET_SENDER, "11488-4", "Quenouille"):
            assert secret not in raw.decode("utf-8", "replace")


def test_no_template_can_carry_health_data() -> None:
    """Every event on every channel: the texts take the link, the service's name and a
    code, nothing else (a unique string passed anywhere else would show)."""
    for event in EVENTS:
        for channel in ChannelName:
            subject, text = render(event, channel, link="https://l/", service="S", code="424242")
            assert "https://l/" in text or event == "login_code"
            for value in (SECRET_SUBJECT, SECRET_SENDER, SECRET_TITLE):
                assert value not in subject + text
    assert set(TEXTS) == set(EVENTS)


async def test_a_patient_without_contact_gets_a_clear_status(
    instance: Path, sink: tuple[Sink, int]
) -> None:
    async with running(instance, overrides=notify_settings(sink[1])) as mss:
        await mss.add_pro(PRO)
        await mss.add_patient(INS)  # no e-mail, no phone
        await mss.submit(PRO, message(PRO, PATIENT, "Bonjour"), [PATIENT])
        await until(lambda: _logged(mss, "new_message", 1))
        [entry] = await log_of(mss, "new_message")
        assert entry.status == "no_contact"
        assert "no e-mail address" in entry.detail and "no phone number" in entry.detail


async def test_an_unreachable_smarthost_leaves_a_clear_status_and_retries(
    instance: Path,
) -> None:
    async with running(instance, overrides=notify_settings(9)) as mss:  # nothing on port 9
        await mss.add_patient(INS, email=EMAIL)
        await until(lambda: _logged(mss, "profile_created", 1, status="retrying"))
        [entry] = await log_of(mss, "profile_created")
        assert "smarthost 127.0.0.1" in entry.detail


async def test_an_address_refused_for_good_is_marked_failing_and_not_used_again(
    patient_space: Running, sink: tuple[Sink, int]
) -> None:
    box, _ = sink
    await until(lambda: _count(box, 1))
    box.refuse.add(EMAIL)
    await patient_space.submit(PRO, message(PRO, PATIENT, "Un"), [PATIENT])
    await until(lambda: _logged(patient_space, "new_message", 1, status="failed"))
    who = await patient_space.store.read(lambda c: notes.recipient(c, INS))
    assert who is not None and EMAIL in who.failing
    await patient_space.store.write(lambda tx: tx.conn.exec_driver_sql(
        "DELETE FROM notify_log WHERE event = 'new_message'"))  # no coalescing  # fmt: skip
    await patient_space.submit(PRO, message(PRO, PATIENT, "Deux"), [PATIENT])
    await until(lambda: _logged(patient_space, "new_message", 1, status="no_contact"))


async def _count(box: Sink, n: int) -> bool:
    return len(box.mail) >= n


async def _logged(mss: Running, event: str, n: int, *, status: str | None = None) -> bool:
    entries = await log_of(mss, event)
    return len([e for e in entries if status is None or e.status == status]) >= n


def test_every_sms_is_plain_gsm_7_and_fits_in_two_segments() -> None:
    """Letters outside GSM-7 (ç, ê…) would make an SMS a UCS-2 one: three times the price."""
    from mss.core.gsm7 import is_gsm7, segments

    link = "https://espace-sante.exemple.fr/espace/"
    for event in EVENTS:
        _, text = render(event, ChannelName.SMS, link=link, service="Mon espace santé",
                         code="424242")  # fmt: skip
        assert is_gsm7(text), (event, text)
        assert segments(text) <= 2, (event, text)


def _dsn_for(recipient: str) -> bytes:
    from mss.delivery.dsn import RecipientStatus, build_dsn

    now = dt.datetime.now(dt.UTC)
    original = b"From: x@y\r\nSubject: notice\r\n\r\n"
    return build_dsn(
        reporting_mta="relais.exemple.fr", to="bounces@pro.mssante.test", original=original,
        statuses=[RecipientStatus(recipient, "failed", "5.1.1",
                                  diagnostic="smtp; 550 5.1.1 user unknown")],
        ret=None, envid=None, arrival=now, now=now,
    )  # fmt: skip


async def test_a_dsn_about_a_notice_marks_the_address_failing(
    patient_space: Running, sink: tuple[Sink, int]
) -> None:
    """The smarthost's DSN comes back to the notice's VERP return path through the MX:
    read (never stored), the address marked failing; a DSN naming another address, or
    for a notice that does not exist, changes nothing."""
    from .test_smtp_mx import PEER_DOMAIN, _peer_client

    box, _ = sink
    await until(lambda: _count(box, 1))
    return_path = box.mail[0][0]
    await patient_space.trust(PEER_DOMAIN)
    client = await _peer_client(patient_space)
    try:
        await client.sendmail("", ["bounces+999-email-0@pro.mssante.test"],
                              _dsn_for(EMAIL))  # fmt: skip
        await client.sendmail("", [return_path], _dsn_for("quelquun@autre.fr"))
        who = await patient_space.store.read(lambda c: notes.recipient(c, INS))
        assert who is not None and not who.failing
        await client.sendmail("", [return_path], _dsn_for(EMAIL))
    finally:
        await client.quit()
    who = await patient_space.store.read(lambda c: notes.recipient(c, INS))
    assert who is not None and who.failing == {EMAIL}
    [entry] = await log_of(patient_space, "profile_created")
    assert entry.status == "bounced" and "5.1.1" in entry.detail


async def test_metrics_count_notices_and_their_lag_by_channel(
    patient_space: Running, sink: tuple[Sink, int]
) -> None:
    import httpx

    box, _ = sink
    await until(lambda: _count(box, 1))
    await until(lambda: _logged(patient_space, "profile_created", 1, status="sent"))
    trust = ssl.create_default_context(cafile=str(patient_space.data_dir / "certs" / "ca.crt"))
    async with httpx.AsyncClient(verify=trust) as client:
        url = f"https://localhost:{patient_space.ports['https']}/metrics"
        text = (await client.get(url)).text
    assert 'mss_notify_notices{channel="email",status="sent"} 1' in text
    assert 'mss_notify_lag_p99_seconds{channel="email"}' in text


async def test_notices_on_postgresql(
    instance: Path, sink: tuple[Sink, int], postgres_url: str
) -> None:
    """The same path on PostgreSQL: a notice sent, a burst coalesced, a refused address
    marked failing and no longer used."""
    box, port = sink
    env = {"MSS_STORAGE_URL": postgres_url}
    async with running(instance, env=env, overrides=notify_settings(port)) as mss:
        await mss.add_pro(PRO)
        await mss.add_patient(INS, email=EMAIL)
        await until(lambda: _count(box, 1))
        for n in range(3):
            await mss.submit(PRO, message(PRO, PATIENT, f"Message {n}"), [PATIENT])
        await until(lambda: _logged(mss, "new_message", 3))
        await until(lambda: _count(box, 2))
        statuses = sorted(e.status for e in await log_of(mss, "new_message"))
        assert statuses.count("coalesced") == 2
        box.refuse.add(EMAIL)
        await mss.store.write(lambda tx: tx.conn.exec_driver_sql(
            "DELETE FROM notify_log WHERE event = 'new_message'"))  # fmt: skip
        await mss.submit(PRO, message(PRO, PATIENT, "Encore"), [PATIENT])
        await until(lambda: _logged(mss, "new_message", 1, status="failed"))
        who = await mss.store.read(lambda c: notes.recipient(c, INS))
        assert who is not None and who.failing == {EMAIL}


async def test_while_a_notice_is_retrying_the_next_events_coalesce(instance: Path) -> None:
    async with running(instance, overrides=notify_settings(9)) as mss:  # nothing on port 9
        await mss.add_pro(PRO)
        await mss.add_patient(INS, email=EMAIL)
        await mss.submit(PRO, message(PRO, PATIENT, "Un"), [PATIENT])
        await until(lambda: _logged(mss, "new_message", 1, status="retrying"))
        for n in range(3):
            await mss.submit(PRO, message(PRO, PATIENT, f"Encore {n}"), [PATIENT])
        await until(lambda: _logged(mss, "new_message", 3, status="coalesced"))
        statuses = sorted(e.status for e in await log_of(mss, "new_message"))
        assert statuses == ["coalesced"] * 3 + ["retrying"]


async def test_a_smarthost_down_for_too_long_does_not_mark_the_patients_address_failing(
    instance: Path,
) -> None:
    from mss.notify.dispatch import NoticeHandler, Texts
    from mss.notify.email import SmarthostChannel

    async with running(instance, overrides=notify_settings(9)) as mss:
        await mss.add_patient(INS, email=EMAIL)
        await until(lambda: _logged(mss, "profile_created", 1, status="retrying"))
        [item] = await mss.store.read(lambda c: outbox.list_items(c, kinds=["notice_email"]))
        channel = SmarthostChannel(host="127.0.0.1", port=9, tls="starttls", sender="a@b.fr",
                                   return_path="r@b.fr", hostname="h", service="S")  # fmt: skip
        await NoticeHandler(mss.store, channel, Texts(link="https://x/")).on_dead([item])
        who = await mss.store.read(lambda c: notes.recipient(c, INS))
        assert who is not None and who.failing == set()
        [entry] = await log_of(mss, "profile_created")
        assert entry.status == "failed" and entry.detail == "gave up after retries"


async def test_an_event_about_a_closed_profile_is_logged_on_postgresql_too(
    instance: Path, sink: tuple[Sink, int], postgres_url: str
) -> None:
    env = {"MSS_STORAGE_URL": postgres_url}
    async with running(instance, env=env, overrides=notify_settings(sink[1])) as mss:
        await mss.add_patient(INS, email=EMAIL, status="closed")
        await mss.store.write(lambda tx: add_notification(tx, "new_document", INS))
        await until(lambda: _logged(mss, "new_document", 1, status="profile_closed"))
