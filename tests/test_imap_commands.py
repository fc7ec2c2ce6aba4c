"""IMAP4rev1 transcripts, command by command (RFC 3501 and the extensions offered):
connection, TLS, authentication and mailbox commands, and the helpers and fixtures
shared with test_imap_commands_messages.py (FETCH, STORE, SEARCH, COPY...)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import pytest

from mss.store.mailboxes import Target
from mss.testing.imapclient import RawIMAP

from .harness import PASSWORD, Running

USER = "marie.martin@pro.mssante.test"

SIMPLE = (
    b"From: Dr Jean Dupont <jean.dupont@pro.mssante.test>\r\n"
    b"To: marie.martin@pro.mssante.test\r\n"
    b"Subject: Compte rendu\r\n"
    b"Date: Sun, 22 Nov 2026 10:00:00 +0100\r\n"
    b"Message-ID: <simple@pro.mssante.test>\r\n"
    b"\r\n"
    b"Bonjour Marie,\r\nvoici le compte rendu.\r\n"
)
ATTACHMENT = base64.b64encode(b"%PDF-1.4 fictif\n" * 4)
MULTIPART = (
    b"From: =?utf-8?q?Dr_=C3=89lodie_Durand?= <elodie@hopital.mssante.test>\r\n"
    b'To: marie.martin@pro.mssante.test, "Secr\xc3\xa9tariat" <sec@pro.mssante.test>\r\n'
    b"Subject: =?utf-8?q?R=C3=A9sultats?=\r\n"
    b"Date: Mon, 23 Nov 2026 09:30:00 +0100\r\n"
    b"Message-ID: <multi@hopital.mssante.test>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="frontiere"\r\n'
    b"\r\n"
    b"--frontiere\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"Les r\xc3\xa9sultats sont normaux.\r\n"
    b"--frontiere\r\n"
    b"Content-Type: application/pdf; name=resultats.pdf\r\n"
    b"Content-Disposition: attachment; filename=resultats.pdf\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n" + ATTACHMENT + b"\r\n"
    b"--frontiere\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"\r\n"
    b"From: labo@hopital.mssante.test\r\n"
    b"Subject: Transfert\r\n"
    b"\r\n"
    b"Message joint.\r\n"
    b"--frontiere--\r\n"
)


async def deliver(mss: Running, raw: bytes, mailbox: str = "INBOX", flags: int = 0) -> None:
    from mss.store.accounts import get_account
    from mss.store.mailboxes import mailbox_id

    def box(conn: object) -> int:
        account = get_account(conn, USER)  # type: ignore[arg-type]
        assert account is not None
        return mailbox_id(conn, account.id, mailbox)  # type: ignore[arg-type]

    target = await mss.store.read(box)
    await mss.store.deliver(raw, [Target(target, flags)])


async def connect(mss: Running, port: str = "imaps") -> RawIMAP:
    return await RawIMAP.connect(mss.ports[port], mss.client_tls() if port == "imaps" else None)


@pytest.fixture
async def mailbox(mss: Running) -> Running:
    await mss.add_pro(USER)
    await deliver(mss, SIMPLE)
    await deliver(mss, MULTIPART)
    return mss


@pytest.fixture
async def imap(mailbox: Running) -> AsyncIterator[RawIMAP]:
    client = await connect(mailbox)
    await client.login(USER, PASSWORD)
    yield client
    await client.close()


async def selected(imap: RawIMAP, mailbox: str = "INBOX") -> RawIMAP:
    assert (await imap.command(f"SELECT {mailbox}")).ok
    return imap


async def selected_session(mss: Running) -> RawIMAP:
    """Another session of the same user, INBOX selected."""
    other = await connect(mss)
    await other.login(USER, PASSWORD)
    return await selected(other)


# --- connection, TLS, authentication ------------------------------------------------------


async def test_plain_port_offers_starttls_and_refuses_login(mailbox: Running) -> None:
    client = await connect(mailbox, "imap")
    assert b"STARTTLS" in client.greeting and b"LOGINDISABLED" in client.greeting
    reply = await client.command(f'LOGIN "{USER}" "{PASSWORD}"')
    assert reply.response.startswith(b"NO [PRIVACYREQUIRED]")
    await client.close()


async def test_starttls_then_login(mailbox: Running) -> None:
    client = await connect(mailbox, "imap")
    reply = await client.command("STARTTLS")
    assert reply.ok
    loop = asyncio.get_running_loop()
    transport = client.writer.transport
    protocol = transport.get_protocol()
    tls_transport = await loop.start_tls(
        transport, protocol, mailbox.client_tls(), server_hostname="localhost"
    )
    client.writer._transport = tls_transport  # type: ignore[attr-defined]
    client.reader._transport = tls_transport  # type: ignore[attr-defined]
    caps = await client.command("CAPABILITY")
    assert b"AUTH=PLAIN" in caps.lines[0] and b"STARTTLS" not in caps.lines[0]
    await client.login(USER, PASSWORD)
    await client.close()


async def test_authenticate_plain_with_initial_response_and_continuation(mailbox: Running) -> None:
    token = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    client = await connect(mailbox)
    reply = await client.command(f"AUTHENTICATE PLAIN {token}")
    assert reply.ok and b"[CAPABILITY" in reply.tagged
    await client.close()
    client = await connect(mailbox)
    await client.send(b"a1 AUTHENTICATE PLAIN\r\n")
    assert (await client.read_line()).startswith(b"+ ")
    await client.send(token.encode() + b"\r\n")
    reply = await client.until("a1")
    assert reply.ok
    await client.close()


async def test_authenticate_can_be_cancelled(mailbox: Running) -> None:
    client = await connect(mailbox)
    await client.send(b"a1 AUTHENTICATE PLAIN\r\n")
    await client.read_line()
    await client.send(b"*\r\n")
    reply = await client.until("a1")
    assert reply.status == "BAD"
    await client.close()


async def test_wrong_password_fails_then_throttles(mailbox: Running) -> None:
    client = await connect(mailbox)
    codes = [
        (await client.command(f'LOGIN "{USER}" "mauvais"')).tagged.split(b" ")[2] for _ in range(6)
    ]
    await client.close()
    assert codes[:5] == [b"[AUTHENTICATIONFAILED]"] * 5
    assert codes[5] == b"[UNAVAILABLE]"


async def test_commands_in_the_wrong_state_are_bad(mailbox: Running) -> None:
    client = await connect(mailbox)
    assert (await client.command("SELECT INBOX")).status == "BAD"
    await client.login(USER, PASSWORD)
    assert (await client.command("FETCH 1 FLAGS")).status == "BAD"
    assert (await client.command("LOGIN a b")).status == "BAD"
    await client.close()


async def test_garbage_and_unknown_commands_get_bad(imap: RawIMAP) -> None:
    assert (await imap.command("FROBNICATE")).status == "BAD"
    assert (await imap.command("FETCH 1:x FLAGS")).status == "BAD"
    await imap.send(b"\r\n")
    assert (await imap.read_line()).startswith(b"* BAD")
    assert (await imap.command("NOOP")).ok  # the connection survives


async def test_capability_id_namespace_enable(imap: RawIMAP) -> None:
    caps = (await imap.command("CAPABILITY")).lines[0]
    wanted = b"IMAP4rev1 IDLE UIDPLUS MOVE NAMESPACE SPECIAL-USE ENABLE LITERAL+ SASL-IR UNSELECT"
    for cap in (wanted + b" CHILDREN BINARY CONDSTORE").split():
        assert cap in caps
    assert (await imap.command('ID ("name" "test")')).lines[0].startswith(b'* ID ("name" "mss"')
    assert (await imap.command("NAMESPACE")).lines == [b'* NAMESPACE (("" "/")) NIL NIL\r\n']
    assert (await imap.command("ENABLE CONDSTORE")).lines == [b"* ENABLED CONDSTORE\r\n"]


async def test_patients_have_no_imap_by_default(mss: Running) -> None:
    address = await mss.add_patient("279035121518989", password=PASSWORD)
    client = await connect(mss)
    reply = await client.command(f'LOGIN "{address}" "{PASSWORD}"')
    assert reply.response.startswith(b"NO [AUTHENTICATIONFAILED]")
    await client.close()


async def test_line_too_long_before_login_closes_with_bye(mailbox: Running) -> None:
    client = await connect(mailbox)
    await client.send(b"a1 LOGIN " + b"x" * 50000 + b"\r\n")  # over 40 KB before login
    assert (await client.read_line()).startswith(b"* BYE")
    await client.close()


async def test_big_literal_before_login_is_refused(mailbox: Running) -> None:
    client = await connect(mailbox)
    reply = await client.command("LOGIN {100000}")
    assert reply.response.startswith(b"NO [TOOBIG]")
    await client.close()


# --- mailboxes ---------------------------------------------------------------------------------


async def test_select_reports_the_mailbox_state(imap: RawIMAP) -> None:
    reply = await imap.command("SELECT INBOX")
    text = reply.text()
    assert reply.response.startswith(b"OK [READ-WRITE]")
    assert "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)" in text
    assert "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)]" in text
    assert "* 2 EXISTS" in text and "* 2 RECENT" in text
    assert "[UNSEEN 1]" in text and "[UIDNEXT 3]" in text and "[UIDVALIDITY " in text
    # a second session does not see them as \Recent any more
    assert "* 0 RECENT" in (await imap.command("SELECT inbox")).text()


async def test_examine_is_read_only(imap: RawIMAP) -> None:
    reply = await imap.command("EXAMINE INBOX")
    assert reply.response.startswith(b"OK [READ-ONLY]")
    assert b"[PERMANENTFLAGS ()]" in b"".join(reply.lines)
    assert (await imap.command("STORE 1 +FLAGS (\\Seen)")).response.startswith(b"NO [READ-ONLY]")
    fetched = await imap.command("FETCH 1 BODY[]")
    assert b"\\Seen" not in b"".join(fetched.lines)


async def test_select_a_missing_mailbox(imap: RawIMAP) -> None:
    assert (await imap.command("SELECT Nulle-part")).response.startswith(b"NO [NONEXISTENT]")


async def test_list_with_hierarchy_special_use_and_wildcards(imap: RawIMAP) -> None:
    assert (await imap.command("CREATE Patients/2026/Novembre")).ok
    all_ = (await imap.command('LIST "" "*"')).text()
    assert '* LIST (\\HasNoChildren \\Sent) "/" Sent' in all_
    assert '* LIST (\\HasChildren) "/" Patients' in all_  # parents were created
    assert '* LIST (\\HasNoChildren) "/" Patients/2026/Novembre' in all_
    top = (await imap.command('LIST "" "%"')).text()
    assert "Patients/2026" not in top and '"/" Patients' in top
    level = (await imap.command('LIST "Patients/" "%"')).text()
    assert "Patients/2026\r\n" in level and "Novembre" not in level
    assert (await imap.command('LIST "" ""')).lines == [b'* LIST (\\Noselect) "/" ""\r\n']
    special = (await imap.command('LIST (SPECIAL-USE) "" "*"')).text()
    assert "Patients" not in special and "\\Trash" in special
    assert "INBOX" in (await imap.command('LIST "" "inbox"')).text()


async def test_create_rename_delete(imap: RawIMAP) -> None:
    assert (await imap.command("CREATE Projets/A")).ok
    assert (await imap.command("CREATE Projets/A")).response.startswith(b"NO [ALREADYEXISTS]")
    assert (await imap.command("RENAME Projets Dossiers")).ok
    listing = (await imap.command('LIST "" "*"')).text()
    assert "Dossiers/A" in listing and "Projets" not in listing
    assert (await imap.command("DELETE Dossiers")).response.startswith(b"NO [INUSE]")
    assert (await imap.command("DELETE Dossiers/A")).ok
    assert (await imap.command("DELETE Dossiers")).ok
    assert (await imap.command("DELETE INBOX")).status == "NO"
    assert (await imap.command("DELETE Nulle-part")).response.startswith(b"NO [NONEXISTENT]")


async def test_recreated_mailbox_gets_a_greater_uidvalidity(imap: RawIMAP) -> None:
    await imap.command("CREATE Temp")
    first = (await imap.command("STATUS Temp (UIDVALIDITY)")).lines[0]
    await imap.command("DELETE Temp")
    await imap.command("CREATE Temp")
    second = (await imap.command("STATUS Temp (UIDVALIDITY)")).lines[0]
    value = lambda line: int(line.split(b"UIDVALIDITY ")[1].split(b")")[0])  # noqa: E731
    assert value(second) > value(first)


async def test_rename_inbox_moves_its_messages(imap: RawIMAP) -> None:
    assert (await imap.command("RENAME INBOX Ancien")).ok
    assert b"MESSAGES 0" in (await imap.command("STATUS INBOX (MESSAGES)")).lines[0]
    assert b"MESSAGES 2" in (await imap.command("STATUS Ancien (MESSAGES)")).lines[0]


async def test_modified_utf7_names(imap: RawIMAP) -> None:
    assert (await imap.command('CREATE "Envoy&AOk-s r&AOk-cents"')).ok
    assert b'"/" "Envoy&AOk-s r&AOk-cents"' in b"".join(
        (await imap.command('LIST "" "Envoy*"')).lines
    )
    assert (await imap.command("CREATE &Jjo-bad")).ok  # decodable: allowed
    # a valid command about a name that is not modified UTF-7: NO, not BAD (RFC 3501 §5.1.3)
    assert (await imap.command("CREATE &-AB&")).response.startswith(b"NO [CANNOT]")


async def test_subscribe_and_lsub(imap: RawIMAP) -> None:
    await imap.command("CREATE Lu")
    assert (await imap.command("UNSUBSCRIBE Lu")).ok
    assert b"Lu" not in b"".join((await imap.command('LSUB "" "*"')).lines)
    assert (await imap.command("SUBSCRIBE Lu")).ok
    assert b'* LSUB () "/" Lu' in b"".join((await imap.command('LSUB "" "*"')).lines)


async def test_status(imap: RawIMAP) -> None:
    reply = await imap.command(
        "STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)"
    )
    line = reply.lines[0].decode()
    assert line.startswith("* STATUS INBOX (MESSAGES 2 RECENT 2 UIDNEXT 3 UIDVALIDITY ")
    assert "UNSEEN 2" in line and "HIGHESTMODSEQ" in line


async def test_append_with_flags_date_and_appenduid(imap: RawIMAP) -> None:
    message = b"From: marie.martin@pro.mssante.test\r\nSubject: brouillon\r\n\r\nTexte\r\n"
    await imap.send(
        b'a1 APPEND Drafts (\\Draft $Important) "05-Jan-2026 14:30:00 +0100" {%d}\r\n'
        % len(message)
    )
    assert (await imap.read_line()).startswith(b"+")
    await imap.send(message + b"\r\n")
    reply = await imap.until("a1")
    assert reply.ok and b"[APPENDUID " in reply.tagged
    await selected(imap, "Drafts")
    fetched = (await imap.command("FETCH 1 (FLAGS INTERNALDATE BODY.PEEK[])")).text()
    assert "\\Draft" in fetched and "$Important" in fetched
    assert 'INTERNALDATE "05-Jan-2026 13:30:00 +0000"' in fetched
    assert "Subject: brouillon" in fetched


async def test_append_with_literal_plus_and_to_a_missing_mailbox(imap: RawIMAP) -> None:
    reply = await imap.command(b"APPEND Sent {5+}\r\nHello")
    assert reply.ok
    reply = await imap.command(b"APPEND Nulle-part {5+}\r\nHello")
    assert reply.response.startswith(b"NO [TRYCREATE]")
