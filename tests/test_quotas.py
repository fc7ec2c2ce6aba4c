"""Per-account quotas (issue 14): mailboxes, messages and storage, with clear errors.

SMTP refuses a recipient already full at RCPT (452 4.2.2, the others still get the
message); IMAP refuses APPEND and COPY past the quota (NO [OVERQUOTA], RFC 9208 §4.3)
and CREATE past the mailboxes (NO [LIMIT], RFC 5530), and tells usage and limits
(GETQUOTAROOT, GETQUOTA). Over real clients (smtplib, imaplib, raw IMAP over TLS).
"""

from __future__ import annotations

import asyncio
import html
import imaplib
import smtplib
from collections.abc import AsyncIterator, Mapping
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from mss.dmp import service
from mss.store.accounts import get_account
from mss.store.quotas import Quota, account_quota, set_account_quota
from mss.testing.imapclient import RawIMAP
from mss.testing.xdmgen import INS

from .conftest import run_mss
from .harness import PASSWORD, Running, message, running
from .space import PATIENT_INS, patient_client
from .space_mail import PATIENT as SPACE_PATIENT
from .space_mail import add_people, pro_writes

JEAN = "jean.dupont@pro.mssante.test"
MARIE = "marie.martin@pro.mssante.test"
PAUL = "paul.petit@pro.mssante.test"
PATIENT = f"{INS}@patient.mssante.fr"
PEER_DOMAIN, PEER_HOST = "autre.mssante.test", "mx.autre.mssante.test"
PEER_PRO = f"paul.durand@{PEER_DOMAIN}"
SMALL = b"From: jean.dupont@pro.mssante.test\r\nSubject: petit\r\n\r\n" + b"x" * 1000 + b"\r\n"


def _limits(**limits: int) -> Mapping[str, Mapping[str, Any]]:
    return {"limits": limits}


async def _imap(mss: Running, user: str = MARIE) -> RawIMAP:
    client = await RawIMAP.connect(mss.ports["imaps"], mss.client_tls())
    assert (await client.login(user, PASSWORD)).ok
    return client


def _lit(data: bytes) -> bytes:
    return b"{%d+}\r\n" % len(data) + data


async def _append(client: RawIMAP, raw: bytes = SMALL, box: str = "INBOX") -> Any:
    return await client.command(f"APPEND {box} ".encode() + _lit(raw))


async def _usage(mss: Running, address: str) -> tuple[int, int, int]:
    def read(conn: Any) -> tuple[int, int, int]:
        account = get_account(conn, address)
        assert account is not None and account.id is not None
        _, used = account_quota(conn, account.id, Quota())
        return used.folders, used.messages, used.storage

    return await mss.store.read(read)


@pytest.fixture
async def three(instance: Path) -> AsyncIterator[Running]:
    """Jean writes; Marie and Paul may each hold two messages."""
    async with running(instance, overrides=_limits(max_messages=2)) as mss:
        for address in (JEAN, MARIE, PAUL):
            await mss.add_pro(address)
        yield mss


# --- SMTP --------------------------------------------------------------------------------


def _send(mss: Running, to: list[str]) -> dict[str, tuple[int, bytes]]:
    with mss.smtplib_client() as client:
        client.login(JEAN, PASSWORD)
        return client.sendmail(JEAN, to, message(JEAN, ", ".join(to)))


async def test_smtp_to_a_full_mailbox_is_refused_at_rcpt_with_452_4_2_2(three: Running) -> None:
    for _ in range(2):
        assert await asyncio.to_thread(_send, three, [MARIE]) == {}
    with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
        await asyncio.to_thread(_send, three, [MARIE])
    code, reply = info.value.recipients[MARIE]
    assert code == 452 and reply.startswith(b"4.2.2 ")
    assert "pleine" in reply.decode() and "(mailbox full" in reply.decode()
    assert len(await three.inbox(MARIE)) == 2


async def test_other_recipients_of_the_same_message_are_still_delivered(three: Running) -> None:
    for _ in range(2):
        await asyncio.to_thread(_send, three, [MARIE])
    refused = await asyncio.to_thread(_send, three, [MARIE, PAUL])
    assert list(refused) == [MARIE] and refused[MARIE][0] == 452
    assert len(await three.inbox(PAUL)) == 1
    assert len(await three.inbox(MARIE)) == 2


async def test_the_mx_refuses_a_full_mailbox_and_delivers_the_others(three: Running) -> None:
    """Another operator's mail: the same refusal at RCPT, the same message for the rest."""
    for _ in range(2):
        await asyncio.to_thread(_send, three, [MARIE])
    await three.trust(PEER_DOMAIN)
    tls = three.client_tls(*three.pki.issue_operator(PEER_HOST, [PEER_DOMAIN]))
    client = three.smtp("mx", tls_context=tls)
    await client.connect()
    await client.starttls()
    try:
        refused, _ = await client.sendmail(PEER_PRO, [MARIE, PAUL], message(PEER_PRO, PAUL))
    finally:
        client.close()
    assert refused[MARIE].code == 452 and refused[MARIE].message.startswith("4.2.2 ")
    assert len(await three.inbox(PAUL)) == 1 and len(await three.inbox(MARIE)) == 2


async def test_storage_quota_refuses_smtp_once_the_bytes_are_used(instance: Path) -> None:
    async with running(instance, overrides=_limits(max_storage=3000)) as mss:
        for address in (JEAN, MARIE):
            await mss.add_pro(address)
        big = message(JEAN, MARIE, body=("y" * 70 + "\r\n") * 45)  # over 3000 bytes

        def send_both() -> None:
            with mss.smtplib_client() as client:
                client.login(JEAN, PASSWORD)
                # accepted at RCPT while not full, then delivered whatever its size
                assert client.sendmail(JEAN, [MARIE], big) == {}
                client.sendmail(JEAN, [MARIE], message(JEAN, MARIE))

        with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
            await asyncio.to_thread(send_both)
        assert info.value.recipients[MARIE][0] == 452


# --- IMAP --------------------------------------------------------------------------------


def _imaplib_append(mss: Running, raw: bytes) -> tuple[str, list[Any]]:
    client = imaplib.IMAP4_SSL("localhost", mss.ports["imaps"], ssl_context=mss.client_tls())
    try:
        client.login(MARIE, PASSWORD)
        try:
            return client.append("INBOX", None, None, raw)
        except imaplib.IMAP4.error as exc:
            return "NO", [str(exc).encode()]
    finally:
        client.logout()


async def test_imap_append_over_quota_is_no_overquota(three: Running) -> None:
    for _ in range(2):
        status, _ = await asyncio.to_thread(_imaplib_append, three, SMALL)
        assert status == "OK"
    status, data = await asyncio.to_thread(_imaplib_append, three, SMALL)
    assert status == "NO"
    assert b"[OVERQUOTA]" in data[0] and b"(account message quota exceeded)" in data[0]
    assert (await _usage(three, MARIE))[1] == 2


async def test_imap_append_past_the_storage_is_refused_before_it_is_written(
    instance: Path,
) -> None:
    async with running(instance, overrides=_limits(max_storage=2500)) as mss:
        await mss.add_pro(MARIE)
        client = await _imap(mss)
        assert (await _append(client)).ok
        assert (await _append(client)).ok  # 2 x 1050 bytes
        reply = await _append(client)  # a third would pass 2500
        assert reply.response.startswith(b"NO [OVERQUOTA] ")
        assert "(account storage quota exceeded)" in reply.response.decode()
        # MULTIAPPEND: the first would fit, not the second: none is stored
        many = await client.command(b"APPEND INBOX " + _lit(b"a: b\r\n\r\nc") + b" " + _lit(SMALL))
        assert many.response.startswith(b"NO [OVERQUOTA]")
        assert (await _usage(mss, MARIE))[1] == 2
        await client.close()


async def test_concurrent_appends_never_pass_the_quota(instance: Path) -> None:
    """Sessions appending at once share the writer's batches: each APPEND's check sees
    those committed before it in the same transaction."""
    async with running(instance, overrides=_limits(max_messages=5)) as mss:
        await mss.add_pro(MARIE)
        clients = [await _imap(mss) for _ in range(6)]

        async def twice(client: RawIMAP) -> list[Any]:
            return [await _append(client) for _ in range(2)]

        replies = [r for pair in await asyncio.gather(*map(twice, clients)) for r in pair]
        assert sum(r.ok for r in replies) == 5
        assert all(r.response.startswith(b"NO [OVERQUOTA]") for r in replies if not r.ok)
        assert (await _usage(mss, MARIE))[1] == 5
        for client in clients:
            await client.close()


async def test_imap_copy_over_quota_is_no_overquota_and_move_is_not(three: Running) -> None:
    client = await _imap(three)
    assert (await _append(client)).ok and (await _append(client)).ok
    assert (await client.command("SELECT INBOX")).ok
    reply = await client.command("COPY 1 Archive")
    assert reply.response.startswith(b"NO [OVERQUOTA]")
    assert (await client.command("MOVE 1 Archive")).ok  # the account holds no more
    assert (await _usage(three, MARIE))[1:] == (2, 2 * len(SMALL))
    status = (await client.command("STATUS Archive (MESSAGES)")).text()
    assert "MESSAGES 1" in status
    await client.close()


async def test_create_beyond_the_folder_limit_is_no_limit(instance: Path) -> None:
    async with running(instance, overrides=_limits(max_folders=8)) as mss:
        await mss.add_pro(MARIE)  # INBOX, Sent, Drafts, Trash, Junk, Archive
        client = await _imap(mss)
        assert (await client.command("CREATE Patients")).ok
        deep = await client.command("CREATE Dossiers/2026")  # two more: one too many
        assert deep.response.startswith(b"NO [LIMIT] ")
        assert "(too many mailboxes, at most 8)" in deep.response.decode()
        listed = (await client.command('LIST "" "Dossiers*"')).lines
        assert listed == []  # nothing of the refused CREATE is left
        assert (await client.command("CREATE Dossiers")).ok
        assert (await client.command("CREATE Encore")).response.startswith(b"NO [LIMIT]")
        renamed = await client.command("RENAME INBOX Ancien")  # would create "Ancien"
        assert renamed.response.startswith(b"NO [LIMIT]")
        assert (await client.command("RENAME Dossiers Classeurs")).ok  # creates nothing
        assert (await client.command("DELETE Patients")).ok
        assert (await client.command("CREATE Encore")).ok
        await client.close()


async def test_getquotaroot_tells_usage_and_limits(instance: Path) -> None:
    limits = _limits(max_storage=10 * 1024 * 1024, max_messages=100, max_folders=50)
    async with running(instance, overrides=limits) as mss:
        await mss.add_pro(MARIE)
        client = await _imap(mss)
        capabilities = (await client.command("CAPABILITY")).text()
        assert "QUOTA " in capabilities and "QUOTA=RES-STORAGE" in capabilities
        assert (await _append(client)).ok
        reply = await client.command("GETQUOTAROOT INBOX")
        assert reply.ok
        assert reply.lines == [
            b'* QUOTAROOT INBOX ""\r\n',
            b'* QUOTA "" (STORAGE 2 10240 MESSAGE 1 100 MAILBOX 6 50)\r\n',
        ]
        again = await client.command('GETQUOTA ""')
        assert again.lines == [reply.lines[1]]
        assert (await client.command('GETQUOTA "autre"')).response.startswith(b"NO [NONEXISTENT]")
        refused = await client.command('SETQUOTA "" (STORAGE 99999999)')
        assert refused.response.startswith(b"NO [NOPERM]")
        await client.close()


async def test_usage_decreases_after_expunge(three: Running) -> None:
    client = await _imap(three)
    assert (await _append(client)).ok and (await _append(client)).ok
    assert not (await _append(client)).ok
    assert (await client.command("SELECT INBOX")).ok
    assert (await client.command("STORE 1 +FLAGS (\\Deleted)")).ok
    status = (await client.command("STATUS INBOX (DELETED DELETED-STORAGE)")).lines[0]
    assert f"(DELETED 1 DELETED-STORAGE {len(SMALL)})".encode() in status  # RFC 9208 §4.3
    assert (await client.command("EXPUNGE")).ok
    assert (await _usage(three, MARIE))[1:] == (1, len(SMALL))
    quota = (await client.command('GETQUOTA ""')).lines[0]
    assert b"MESSAGE 1 2" in quota
    assert (await _append(client)).ok
    await client.close()


# --- the counters ------------------------------------------------------------------------

_TRUE_USAGE = text(
    "SELECT count(*), coalesce(sum(m.size), 0) FROM message m "
    "JOIN mailbox b ON b.id = m.mailbox_id JOIN account a ON a.id = b.account_id "
    "WHERE a.address = :address"
)


async def _true_usage(mss: Running, address: str) -> tuple[int, int]:
    def read(conn: Any) -> tuple[int, int]:
        row = conn.execute(_TRUE_USAGE, {"address": address}).one()
        return int(row[0]), int(row[1])

    return await mss.store.read(read)


async def test_usage_counters_follow_every_change_of_the_messages(mss: Running) -> None:
    """Delivery, APPEND, COPY, MOVE, EXPUNGE, DELETE and RENAME INBOX: the counters kept
    on the mailboxes always equal what the messages hold."""
    for address in (JEAN, MARIE):
        await mss.add_pro(address)
    await asyncio.to_thread(_send, mss, [MARIE])
    client = await _imap(mss)
    steps = [
        "APPEND", "CREATE Dossier", "SELECT INBOX", "COPY 1:* Dossier", "MOVE 1 Archive",
        "SELECT Dossier", "STORE 1 +FLAGS (\\Deleted)", "EXPUNGE", "COPY 1:* Archive",
        "RENAME INBOX Ancien", "DELETE Dossier", "APPEND",
    ]  # fmt: skip
    for step in steps:
        reply = await (_append(client) if step == "APPEND" else client.command(step))
        assert reply.ok, (step, reply.response)
        folders, messages, storage = await _usage(mss, MARIE)
        assert (messages, storage) == await _true_usage(mss, MARIE), step
    await client.close()
    assert folders == 7  # six, Dossier, Ancien (RENAME INBOX), less Dossier


# --- documents per mail ------------------------------------------------------------------


def _pdfs_mail(count: int) -> bytes:
    mail = EmailMessage(policy=default)
    mail["From"], mail["To"] = JEAN, PATIENT
    mail["Subject"] = "XDM/1.0/DDM+Comptes rendus DE VINCI Ruth 17/03/1979"
    mail["Message-ID"] = f"<pdfs-{count}@pro.mssante.test>"
    mail["Disposition-Notification-To"] = JEAN
    mail.set_content("Bonjour, voici vos comptes rendus.")
    for i in range(count):
        mail.add_attachment(b"%%PDF-1.4 rendu %d" % i, maintype="application", subtype="pdf",
                            filename=f"compte-rendu-{i}.pdf")  # fmt: skip
    return mail.as_bytes()


async def _mdn_of(mss: Running, message_id: str) -> bytes:
    for _ in range(200):
        found = [m for m in await mss.inbox(JEAN)
                 if b"disposition-notification" in m and message_id.encode() in m]  # fmt: skip
        if found:
            return found[0]
        await asyncio.sleep(0.05)
    raise AssertionError("no MDN came back")


async def test_documents_per_mail_over_the_limit_are_refused_with_mdn_906(instance: Path) -> None:
    async with running(instance, overrides=_limits(max_documents_per_mail=2)) as mss:
        await mss.add_pro(JEAN, national_id="810003456789", name="Jean DUPONT")
        await mss.add_patient(INS, family="DE VINCI", given="RUTH", birth_date="1979-03-17")
        assert (await mss.submit(JEAN, _pdfs_mail(2), [PATIENT])).code == 250
        await _mdn_of(mss, "<pdfs-2@pro.mssante.test>")
        assert await mss.store.read(lambda c: service.count_documents(c, INS)) == 2
        assert (await mss.submit(JEAN, _pdfs_mail(3), [PATIENT])).code == 250
        mdn = await _mdn_of(mss, "<pdfs-3@pro.mssante.test>")
        assert b"processed/Error: 906^Autre erreur : 3 documents dans ce message, au plus 2" in (
            mdn.replace(b"\r\n ", b" ")
        )
        assert b"(too many documents in one mail)" in mdn.replace(b"\r\n ", b" ")
        assert await mss.store.read(lambda c: service.count_documents(c, INS)) == 2
        assert len(await mss.inbox(PATIENT)) == 2  # the mail itself reached the patient


# --- an account's own limits -------------------------------------------------------------


def _quota_cli(instance: Path, *args: str) -> tuple[int, str]:
    result = run_mss("pro", "quota", *args, "--data-dir", str(instance))
    return result.returncode, result.stdout + result.stderr


async def test_an_account_has_its_own_limits_set_by_mss_pro_quota(instance: Path) -> None:
    async with running(instance) as mss:  # the settings: the defaults (1,000,000 messages)
        for address in (JEAN, MARIE, PAUL):
            await mss.add_pro(address)
        code, out = await asyncio.to_thread(
            _quota_cli, instance, MARIE, "--messages", "1", "--storage", "1M"
        )
        assert code == 0 and "messages: 0 of 1\n" in out and "storage: 0 of 1048576\n" in out
        assert await asyncio.to_thread(_send, mss, [MARIE]) == {}
        refused = await asyncio.to_thread(_send, mss, [MARIE, PAUL])  # Paul: the settings'
        assert list(refused) == [MARIE] and refused[MARIE][0] == 452
        client = await _imap(mss)
        quota = (await client.command('GETQUOTA ""')).lines[0]
        assert b"STORAGE 1 1024 MESSAGE 1 1 MAILBOX 6 1000" in quota
        assert (await _append(client)).response.startswith(b"NO [OVERQUOTA]")
        code, out = await asyncio.to_thread(_quota_cli, instance, MARIE, "--messages", "default")
        assert code == 0 and "messages: 1 of 1000000\n" in out
        assert (await _append(client)).ok
        await client.close()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ([MARIE, "--storage", "5X"], "is not a size"),
        ([MARIE, "--messages", "-1"], "is not a number"),
        (["personne@pro.mssante.test"], "is not a mailbox of this instance"),
    ],
)
def test_mss_pro_quota_refuses_bad_input_in_one_line(
    instance: Path, args: list[str], fragment: str
) -> None:
    assert run_mss("pro", "add", MARIE, "--data-dir", str(instance)).returncode == 0
    code, out = _quota_cli(instance, *args)
    assert code != 0 and fragment in out and out.count("\n") == 1


async def test_the_patient_space_says_a_professional_mailbox_is_full(mss: Running) -> None:
    """The web door asks the same RCPT check: the patient reads why, in French."""
    await add_people(mss)
    await mss.add_patient(PATIENT_INS)
    await pro_writes(mss, JEAN, SPACE_PATIENT, "<m1@pro.mssante.test>")
    await asyncio.to_thread(_send, mss, [JEAN])  # Jean's INBOX: one message

    def one_message_for_jean(tx: Any) -> None:
        account = get_account(tx.conn, JEAN)
        assert account is not None and account.id is not None
        set_account_quota(tx, account.id, messages=1)

    await mss.store.write(one_message_for_jean)
    async with patient_client(mss, PATIENT_INS) as (client, csrf):
        sent = await client.post(
            "/espace/messages/nouveau",
            data={"csrf": csrf, "destinataire": JEAN, "objet": "Question", "texte": "?"},
        )
    assert sent.status_code == 503
    assert "Boîte aux lettres du destinataire pleine" in html.unescape(sent.text)


def test_mss_dmp_check_says_too_many_documents_as_the_deposit_would() -> None:
    from mss.delivery.check import check_file

    raw = _pdfs_mail(3)
    assert check_file("trois.eml", raw, max_documents=3).ok
    report = check_file("trois.eml", raw, max_documents=2)
    [error] = report.to_json()["errors"]
    assert error["code"] == 906 and "au plus 2 (too many documents in one mail)" in error["detail"]
