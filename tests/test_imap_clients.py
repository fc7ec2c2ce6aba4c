"""Real IMAP clients: imaplib, aioimaplib, and mbsync (isync) syncing both ways."""

from __future__ import annotations

import asyncio
import imaplib
import shutil
import subprocess
from pathlib import Path

import aioimaplib
import pytest

from mss.store.messages import flag_names, rows_for
from mss.store.models import message_table

from .harness import PASSWORD, Running, message
from .test_imap_commands import MULTIPART, SIMPLE, USER, deliver


@pytest.fixture
async def mailbox(mss: Running) -> Running:
    await mss.add_pro(USER)
    await deliver(mss, SIMPLE)
    await deliver(mss, MULTIPART)
    return mss


async def test_imaplib_session(mailbox: Running) -> None:
    def session() -> list[object]:
        client = imaplib.IMAP4_SSL(
            "localhost", mailbox.ports["imaps"], ssl_context=mailbox.client_tls()
        )
        out: list[object] = [client.login(USER, PASSWORD)[0]]
        out.append(client.select("INBOX"))
        out.append(client.search(None, "UNSEEN"))
        out.append(client.fetch("1", "(RFC822)")[1][0][1])  # type: ignore[index]
        out.append(client.store("2", "+FLAGS", "(\\Flagged)")[0])
        out.append(client.copy("1", "Archive")[0])
        out.append(client.status("Archive", "(MESSAGES)"))
        client.logout()
        return out

    login, select, unseen, body, stored, copied, status = await asyncio.to_thread(session)
    assert login == "OK"
    assert select == ("OK", [b"2"])
    assert unseen == ("OK", [b"1 2"])
    assert body == SIMPLE
    assert stored == "OK" and copied == "OK"
    assert status == ("OK", [b"Archive (MESSAGES 1)"])


async def test_aioimaplib_session_with_idle(mailbox: Running) -> None:
    client = aioimaplib.IMAP4_SSL(
        host="localhost", port=mailbox.ports["imaps"], ssl_context=mailbox.client_tls()
    )
    await client.wait_hello_from_server()
    assert (await client.login(USER, PASSWORD)).result == "OK"
    assert (await client.select("INBOX")).result == "OK"
    fetched = await client.fetch("1:2", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert fetched.result == "OK"
    assert any(
        b"Subject: Compte rendu" in line
        for line in fetched.lines
        if isinstance(line, bytes | bytearray)
    )
    idle = await client.idle_start(timeout=5)
    await deliver(mailbox, SIMPLE.replace(b"simple@", b"async@"))
    pushed = await client.wait_server_push(timeout=5)
    client.idle_done()
    await asyncio.wait_for(idle, 5)
    assert any(b"3 EXISTS" in line for line in pushed)
    await client.logout()


def _mbsync_config(mss: Running, maildir: Path) -> Path:
    config = maildir.parent / "mbsyncrc"
    config.write_text(
        f"""IMAPAccount mss
Host localhost
Port {mss.ports["imaps"]}
User {USER}
Pass {PASSWORD}
SSLType IMAPS
CertificateFile {mss.ca}

IMAPStore remote
Account mss

MaildirStore local
Path {maildir}/
Inbox {maildir}/INBOX
SubFolders Verbatim

Channel everything
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
"""
    )
    return config


def _mbsync(config: Path) -> str:
    result = subprocess.run(
        ["mbsync", "-c", str(config), "-a"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _plain(data: bytes) -> bytes:
    """A maildir file as mbsync writes it: LF line ends and its own X-TUID header."""
    lines = [
        line
        for line in data.replace(b"\r\n", b"\n").split(b"\n")
        if not line.startswith(b"X-TUID:")
    ]
    return b"\n".join(lines)


def _files(folder: Path) -> list[Path]:
    return sorted(p for sub in ("new", "cur") for p in (folder / sub).glob("*") if p.is_file())


async def test_mbsync_syncs_both_ways(mailbox: Running, tmp_path: Path) -> None:
    if shutil.which("mbsync") is None:
        pytest.skip("mbsync is not installed (apt-get install isync)")
    maildir = tmp_path / "Mail"
    maildir.mkdir()
    config = _mbsync_config(mailbox, maildir)

    # 1. server → local: the two messages, and every folder
    await asyncio.to_thread(_mbsync, config)
    inbox = maildir / "INBOX"
    local = _files(inbox)
    assert len(local) == 2
    assert {_plain(p.read_bytes()) for p in local} == {_plain(SIMPLE), _plain(MULTIPART)}
    assert (maildir / "Sent").is_dir() and (maildir / "Archive").is_dir()

    # 2. local → server: a message written locally, a message marked read locally
    new = inbox / "cur" / "1700000000.local_1.host:2,S"
    new.write_bytes(
        message("marie.martin@pro.mssante.test", "x@pro.mssante.test", "Écrit hors ligne")
    )
    simple = next(p for p in local if _plain(p.read_bytes()) == _plain(SIMPLE))
    base = simple.name.split(":2,")[0]
    simple.rename(inbox / "cur" / f"{base}:2,S")
    await asyncio.to_thread(_mbsync, config)

    def server_state(conn: object) -> list[tuple[str | None, list[str]]]:
        from mss.store.accounts import get_account
        from mss.store.mailboxes import mailbox_id

        account = get_account(conn, USER)  # type: ignore[arg-type]
        assert account is not None
        box = mailbox_id(conn, account.id, "INBOX")  # type: ignore[arg-type]
        columns = [message_table.c.subject, message_table.c.flags, message_table.c.keywords]
        rows = rows_for(conn, box, list(range(1, 10)), columns)  # type: ignore[arg-type]
        return [(row[1], flag_names(row[2], row[3])) for _, row in sorted(rows.items())]

    state = await mailbox.store.read(server_state)
    assert len(state) == 3
    assert ("Compte rendu", ["\\Seen"]) in state
    assert any(
        "Écrit hors ligne" in (subject or "") or "=?" in (subject or "") for subject, _ in state
    )

    # 3. a message removed on the server disappears locally
    def remove_second() -> None:
        client = imaplib.IMAP4_SSL(
            "localhost", mailbox.ports["imaps"], ssl_context=mailbox.client_tls()
        )
        client.login(USER, PASSWORD)
        client.select("INBOX")
        client.store("2", "+FLAGS", "(\\Deleted)")
        client.expunge()
        client.logout()

    await asyncio.to_thread(remove_second)
    await asyncio.to_thread(_mbsync, config)
    assert len(_files(inbox)) == 2
    assert _plain(MULTIPART) not in {_plain(p.read_bytes()) for p in _files(inbox)}


async def test_mbsync_accepts_the_dev_certificate_on_the_loopback_address(
    mailbox: Running, tmp_path: Path
) -> None:
    """Issue 17: `Host 127.0.0.1` (mbsync matches dNSNames only, not IP SANs)."""
    if shutil.which("mbsync") is None:
        pytest.skip("mbsync is not installed (apt-get install isync)")
    maildir = tmp_path / "Mail"
    maildir.mkdir()
    config = _mbsync_config(mailbox, maildir)
    config.write_text(config.read_text().replace("Host localhost", "Host 127.0.0.1"))
    await asyncio.to_thread(_mbsync, config)
    assert len(_files(maildir / "INBOX")) == 2
