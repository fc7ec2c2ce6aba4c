"""Helpers for the messagerie's tests: professionals writing to a patient over real SMTP
submission, and reading their own mailbox over real IMAP (imaplib, TLS)."""

from __future__ import annotations

import asyncio
import base64
import email
import imaplib
from email.message import Message
from email.policy import default

from mss.store.accounts import get_account
from mss.store.mailboxes import INBOX, list_messages, mailbox_id

from .harness import PASSWORD, Running, message
from .space import PATIENT_INS

PATIENT = f"{PATIENT_INS}@patient.mssante.fr"
JEAN = "jean.dupont@pro.mssante.test"
MARIE = "marie.martin@pro.mssante.test"
PDF_BYTES = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG_BYTES = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


async def add_people(mss: Running, *patients: str) -> None:
    await mss.add_pro(JEAN, name="Jean Dupont", national_id="810001234567")
    await mss.add_pro(MARIE, name="Marie Martin")
    for ins in patients:
        await mss.add_patient(ins)


async def pro_writes(
    mss: Running,
    pro: str,
    to: str,
    msgid: str,
    subject: str = "Compte rendu",
    body: str = "Bonjour,\r\nvoici le compte rendu.\r\n",
    headers: dict[str, str] | None = None,
) -> None:
    raw = message(f"Dr {pro.split('.')[0].title()} <{pro}>", to, subject, body,
                  message_id=msgid, headers=headers)  # fmt: skip
    reply = await mss.submit(pro, raw, [to])
    assert reply.code == 250


def multipart(
    pro: str, to: str, msgid: str, html: str, files: list[tuple[str, str, bytes]]
) -> bytes:
    """A professional's HTML mail with attachments (name, type, bytes)."""
    boundary = "frontiere-42"
    parts = [
        f"From: {pro}\r\nTo: {to}\r\nSubject: Résultats\r\nMessage-ID: {msgid}\r\n"
        f"Date: Sun, 22 Nov 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n',
        f"--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n",
    ]
    for name, kind, data in files:
        encoded = base64.encodebytes(data).decode().replace("\n", "\r\n")
        parts.append(
            f"--{boundary}\r\nContent-Type: {kind}\r\nContent-Transfer-Encoding: base64\r\n"
            f'Content-Disposition: attachment; filename="{name}"\r\n\r\n{encoded}'
        )
    parts.append(f"--{boundary}--\r\n")
    return "".join(parts).encode()


async def imap_inbox(mss: Running, user: str) -> list[Message]:
    """The INBOX of `user` read over IMAPS, as their mail client would."""

    def session() -> list[bytes]:
        client = imaplib.IMAP4_SSL("localhost", mss.ports["imaps"], ssl_context=mss.client_tls())
        try:
            client.login(user, PASSWORD)
            client.select("INBOX")
            _, found = client.search(None, "ALL")
            numbers = found[0].split() if found and found[0] else []
            bodies = []
            for number in numbers:
                _, data = client.fetch(number, "(BODY.PEEK[])")
                bodies.append(data[0][1])  # type: ignore[index]
            return bodies  # type: ignore[return-value]
        finally:
            client.logout()

    raws = await asyncio.to_thread(session)
    return [email.message_from_bytes(raw, policy=default) for raw in raws]


async def flags_of(mss: Running, address: str, box: str = INBOX) -> list[int]:
    def read(conn: object) -> list[int]:
        account = get_account(conn, address)  # type: ignore[arg-type]
        assert account is not None
        found = mailbox_id(conn, account.id, box)  # type: ignore[arg-type]
        return [r.flags for r in list_messages(conn, found)]  # type: ignore[arg-type]

    return await mss.store.read(read)
