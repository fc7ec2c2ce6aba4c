"""Run a real mss (every listener, on ephemeral loopback ports) inside a test.

`Running` gives the ports, the store and helpers to create accounts and read
mailboxes; clients are real (`smtplib`, `aiosmtplib`, swaks) over real TLS
with the instance's development PKI.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import smtplib
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosmtplib

from mss.app import Application
from mss.config import Settings, load_settings
from mss.core.identity import build_patient
from mss.security.passwords import hash_password
from mss.security.pki import DevPKI
from mss.store.accounts import add_account, add_patients, set_profile_status
from mss.store.api import Store
from mss.store.mailboxes import INBOX, list_messages, mailbox_id
from mss.store.models import AccountKind
from mss.store.sql import Tx
from mss.store.trust import replace_whitelist
from mss.wiring import TLSContexts

PASSWORD = "mot-de-passe-de-test"
PORTS = dict.fromkeys(("mx", "submission", "submissions", "imap", "imaps", "https"), 0)
PATIENT_DOMAIN = "patient.mssante.fr"


@dataclass
class Running:
    app: Application
    settings: Settings
    ports: dict[str, int]
    data_dir: Path

    @property
    def store(self) -> Store:
        assert self.app.store is not None
        return self.app.store

    @property
    def ca(self) -> Path:
        return self.data_dir / "certs" / "ca.crt"

    def client_tls(self, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca))
        if cert is not None:
            ctx.load_cert_chain(str(cert), str(key) if key else None)
        return ctx

    @property
    def pki(self) -> DevPKI:
        return DevPKI(self.data_dir / "certs")

    # --- accounts -------------------------------------------------------------------------

    async def add_pro(
        self,
        address: str,
        *,
        password: str | None = PASSWORD,
        kind: AccountKind = AccountKind.PROFESSIONAL,
        national_id: str | None = None,
        name: str | None = None,
    ) -> int:
        hashed = hash_password(password) if password else None

        def job(tx: Tx) -> int:
            account = add_account(
                tx, address=address, kind=kind, password_hash=hashed, national_id=national_id,
                display_name=name, bal_type="APP" if kind is AccountKind.APPLICATIVE else "PER",
            )  # fmt: skip
            return mailbox_id(tx.conn, account, INBOX)

        return await self.store.write(job)

    async def add_patient(
        self, ins: str, *, status: str = "active", password: str | None = None, **traits: str
    ) -> str:
        values = {"ins": ins, "family": "PATIENT", "given": "TEST", "birth_date": "1980-01-01",
                  "sex": "F", "status": status, **traits}  # fmt: skip
        identity = build_patient(values)
        await self.store.write(lambda tx: add_patients(tx, [identity], PATIENT_DOMAIN))
        address = f"{identity.ins.matricule}@{PATIENT_DOMAIN}"
        if password is not None:
            from mss.store.accounts import set_password

            hashed = hash_password(password)
            await self.store.write(lambda tx: set_password(tx, address, hashed))
        return address

    async def set_patient_status(self, ins: str, status: str) -> None:
        await self.store.write(lambda tx: set_profile_status(tx, ins, status, PATIENT_DOMAIN))

    async def trust(self, *domains: str) -> None:
        await self.store.write(lambda tx: replace_whitelist(tx, list(domains)))
        assert self.app.mail is not None
        await self.app.mail.trust.refresh()

    async def inbox(self, address: str) -> list[bytes]:
        """The messages in the INBOX of `address`, oldest first."""
        from mss.store.accounts import get_account

        def read(conn: Any) -> int:
            account = get_account(conn, address)
            assert account is not None, address
            return mailbox_id(conn, account.id, INBOX)

        box = await self.store.read(read)
        records = await self.store.read(lambda c: list_messages(c, box))
        return [await self.store.message_bytes(box, r.uid) for r in records]

    # --- clients ----------------------------------------------------------------------------

    def smtp(self, port_name: str = "submission", **kwargs: Any) -> aiosmtplib.SMTP:
        return aiosmtplib.SMTP(
            hostname="localhost", port=self.ports[port_name], start_tls=False, timeout=30,
            tls_context=kwargs.pop("tls_context", self.client_tls()), **kwargs,
        )  # fmt: skip

    async def submit(
        self,
        user: str,
        message: bytes,
        recipients: list[str],
        *,
        mail_from: str | None = None,
        password: str = PASSWORD,
        mail_options: list[str] | None = None,
        rcpt_options: list[str] | None = None,
    ) -> aiosmtplib.SMTPResponse:
        """Submit over STARTTLS + AUTH PLAIN; return the DATA reply (raises on refusal)."""
        client = self.smtp()
        await client.connect()
        try:
            await client.starttls()
            await client.login(user, password)
            await client.mail(mail_from or user, options=mail_options or [])
            for rcpt in recipients:
                await client.rcpt(rcpt, options=rcpt_options or [])
            return await client.data(message)
        finally:
            client.close()

    def smtplib_client(self, port_name: str = "submission") -> smtplib.SMTP:
        client = smtplib.SMTP("localhost", self.ports[port_name], timeout=30)
        client.starttls(context=self.client_tls())
        return client


def message(
    sender: str,
    to: str,
    subject: str = "Compte rendu",
    body: str = "Bonjour,\r\nvoici le compte rendu.\r\n",
    *,
    message_id: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> bytes:
    lines = [
        f"From: {sender}",
        f"To: {to}",
        f"Subject: {subject}",
        "Date: Sun, 22 Nov 2026 10:00:00 +0100",
    ]
    if message_id:
        lines.append(f"Message-ID: {message_id}")
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    lines += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "", body]
    return "\r\n".join(lines).encode()


@contextlib.asynccontextmanager
async def running(
    data_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    workers: int = 1,
    tls_from: Callable[[Settings], TLSContexts] | None = None,
) -> AsyncIterator[Running]:
    """Start every listener of the instance in `data_dir`; stop them afterwards.

    `workers` above 1: behave as one of several processes sharing the database
    (cross-process IMAP notifications on), as `mss serve` workers do. `tls_from`:
    the TLS contexts built before the start, as `mss serve`'s supervisor does."""
    settings = load_settings(
        data_dir / "mss.toml",
        env={"MSS_POLICY_PATIENT_SMTP_LOGIN": "true", **(env or {})},
        overrides={"listen": PORTS, **(overrides or {})},
    )
    tls = tls_from(settings) if tls_from is not None else None
    app = Application(settings, workers=workers, tls=tls)
    stop = asyncio.Event()
    ready: asyncio.Future[dict[str, int]] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(app.run(stop, ready=ready.set_result))
    done, _ = await asyncio.wait([task, ready], return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()  # start-up failed: raise its error
    try:
        yield Running(app, settings, ready.result(), data_dir)
    finally:
        stop.set()
        await task


def copy_instance(template: Path, target: Path) -> Path:
    shutil.copytree(template, target)
    return target
