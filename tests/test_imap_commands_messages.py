"""IMAP4rev1 transcripts of the message commands: FETCH, STORE, SEARCH, COPY, MOVE,
EXPUNGE, CONDSTORE, and what other sessions and IDLE see (RFC 3501 and extensions).
The session, authentication and mailbox commands are in test_imap_commands.py."""

from __future__ import annotations

import asyncio
import base64

import pytest

from mss.testing.imapclient import RawIMAP

from .harness import Running
from .test_imap_commands import (
    ATTACHMENT,
    SIMPLE,
    deliver,
    imap,
    mailbox,
    selected,
    selected_session,
)

__all__ = ["imap", "mailbox"]  # fixtures shared with test_imap_commands.py


# --- FETCH -------------------------------------------------------------------------------------


async def test_fetch_envelope_and_sizes(imap: RawIMAP) -> None:
    await selected(imap)
    text = (await imap.command("FETCH 1 (ENVELOPE RFC822.SIZE UID)")).text()
    assert (
        'ENVELOPE ("Sun, 22 Nov 2026 10:00:00 +0100" "Compte rendu" '
        '(("Dr Jean Dupont" NIL "jean.dupont" "pro.mssante.test")) '
        '(("Dr Jean Dupont" NIL "jean.dupont" "pro.mssante.test")) '
        '(("Dr Jean Dupont" NIL "jean.dupont" "pro.mssante.test")) '
        '((NIL NIL "marie.martin" "pro.mssante.test")) NIL NIL NIL "<simple@pro.mssante.test>")'
    ) in text
    assert f"RFC822.SIZE {len(SIMPLE)}" in text and "UID 1" in text


async def test_fetch_bodystructure_of_a_multipart_with_a_nested_message(imap: RawIMAP) -> None:
    await selected(imap)
    text = (await imap.command("FETCH 2 BODYSTRUCTURE")).text()
    assert text.startswith(
        '* 2 FETCH (BODYSTRUCTURE (("text" "plain" ("charset" "utf-8") NIL NIL "8bit" '
    )
    assert '("application" "pdf" ("name" "resultats.pdf") NIL NIL "base64" ' in text
    assert '("attachment" ("filename" "resultats.pdf"))' in text
    assert '("message" "rfc822" NIL NIL NIL "7bit" ' in text
    assert '(NIL "Transfert" ((NIL NIL "labo" "hopital.mssante.test"))' in text
    assert '"mixed" ("boundary" "frontiere") NIL NIL NIL))' in text
    body = (await imap.command("FETCH 2 BODY")).text()
    assert '"mixed")' in body and "frontiere" not in body  # BODY: no extension data


async def test_fetch_sections_and_partial(imap: RawIMAP) -> None:
    await selected(imap)
    reply = await imap.command(
        "FETCH 2 (BODY.PEEK[1] BODY.PEEK[2.MIME] BODY.PEEK[3.HEADER] BODY.PEEK[3.TEXT] "
        "BODY.PEEK[3.1] BODY.PEEK[HEADER.FIELDS (SUBJECT DATE)] BODY.PEEK[TEXT]<0.11>)"
    )
    text = reply.text()
    assert "BODY[1] {" in text and "Les r\u00e9sultats sont normaux." in text
    assert "BODY[2.MIME] {" in text and "Content-Type: application/pdf; name=resultats.pdf" in text
    assert "BODY[3.HEADER] {" in text and "Subject: Transfert\r\n\r\n" in text
    # the CRLF before a boundary belongs to the boundary (RFC 2046 §5.1.1)
    assert "BODY[3.TEXT] {14}\r\nMessage joint." in text
    assert "BODY[3.1] {14}\r\nMessage joint." in text
    assert "BODY[HEADER.FIELDS (SUBJECT DATE)] {" in text
    assert (
        "Subject: =?utf-8?q?R=C3=A9sultats?=\r\nDate: Mon, 23 Nov 2026 09:30:00 +0100\r\n\r\n"
        in text
    )
    assert "BODY[TEXT]<0> {11}\r\n--frontiere" in text
    assert "\\Seen" not in text


async def test_fetch_body_sets_seen_and_reports_flags(imap: RawIMAP) -> None:
    await selected(imap)
    text = (await imap.command("FETCH 1 BODY[]")).text()
    assert f"BODY[] {{{len(SIMPLE)}}}" in text
    assert "FLAGS (\\Seen \\Recent)" in text
    again = (await imap.command("FETCH 1 FLAGS")).text()
    assert "FLAGS (\\Seen \\Recent)" in again


async def test_fetch_rfc822_items_and_macros(imap: RawIMAP) -> None:
    await selected(imap)
    text = (await imap.command("FETCH 1 (RFC822.HEADER RFC822.TEXT)")).text()
    assert "RFC822.HEADER {" in text and "RFC822.TEXT {" in text
    all_ = (await imap.command("FETCH 1:2 ALL")).text()
    assert all_.count("ENVELOPE") == 2 and "INTERNALDATE" in all_
    assert "BODY (" in (await imap.command("FETCH 1 FULL")).text()


async def test_fetch_binary_decodes_the_transfer_encoding(imap: RawIMAP) -> None:
    await selected(imap)
    text = (await imap.command("FETCH 2 (BINARY.PEEK[2] BINARY.SIZE[2])")).text()
    decoded = base64.b64decode(ATTACHMENT)
    assert f"BINARY[2] {{{len(decoded)}}}\r\n" in text
    assert decoded.decode() in text
    assert f"BINARY.SIZE[2] {len(decoded)}" in text


async def test_fetch_missing_section_is_nil(imap: RawIMAP) -> None:
    await selected(imap)
    assert "BODY[9] NIL" in (await imap.command("FETCH 2 BODY.PEEK[9]")).text()


async def test_fetch_of_a_sequence_number_out_of_range_is_bad(imap: RawIMAP) -> None:
    await selected(imap)
    assert (await imap.command("FETCH 5 FLAGS")).status == "BAD"
    assert len((await imap.command("UID FETCH 5:* FLAGS")).untagged("FETCH")) == 1  # 5:* has UID 2


async def test_uid_fetch_always_includes_the_uid(imap: RawIMAP) -> None:
    await selected(imap)
    text = (await imap.command("UID FETCH 1:* FLAGS")).text()
    assert "* 1 FETCH (UID 1 FLAGS" in text and "* 2 FETCH (UID 2 FLAGS" in text


# --- STORE -------------------------------------------------------------------------------------


async def test_store_add_remove_replace_and_silent(imap: RawIMAP) -> None:
    await selected(imap)
    added = (await imap.command("STORE 1 +FLAGS ($Urgent \\Flagged)")).text()
    assert "FLAGS (\\Flagged $Urgent \\Recent)" in added
    assert "FLAGS ($Urgent \\Recent)" in (await imap.command("STORE 1 -FLAGS (\\Flagged)")).text()
    assert "FLAGS (\\Seen \\Recent)" in (await imap.command("STORE 1 FLAGS (\\Seen)")).text()
    silent = await imap.command("STORE 1:2 +FLAGS.SILENT (\\Answered)")
    assert silent.ok and not silent.untagged("FETCH")
    assert "\\Answered" in (await imap.command("FETCH 2 FLAGS")).text()


async def test_keyword_is_announced_in_flags_before_any_message_shows_it(
    mailbox: Running, imap: RawIMAP
) -> None:
    """RFC 3501 §7.2.6: FLAGS lists the keywords; a new one is announced before use."""
    await selected(imap)
    other = await selected_session(mailbox)
    stored = await other.command("STORE 1 +FLAGS ($Urgent)")
    lines = [line.decode() for line in stored.lines]
    assert lines[0].startswith("* FLAGS (") and "$Urgent" in lines[0]
    assert lines[1].startswith("* OK [PERMANENTFLAGS (") and "$Urgent \\*)" in lines[1]
    assert "FETCH" in lines[2] and "$Urgent" in lines[2]
    # the first session learns of it at its next command, FLAGS first
    noop = [line.decode() for line in (await imap.command("NOOP")).lines]
    flags_at = next(i for i, line in enumerate(noop) if line.startswith("* FLAGS ("))
    fetch_at = next(i for i, line in enumerate(noop) if "FETCH" in line)
    assert flags_at < fetch_at and "$Urgent" in noop[flags_at]
    # APPEND with a keyword, then a new SELECT: FLAGS and PERMANENTFLAGS list both
    assert (await other.command("APPEND INBOX ($Suivi) {12+}\r\nSubject: x\r\n")).ok
    text = (await other.command("SELECT INBOX")).text()
    assert "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Suivi $Urgent)" in text
    assert (
        "[PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Suivi $Urgent \\*)]"
        in text
    )
    await other.close()


async def test_uid_store(imap: RawIMAP) -> None:
    await selected(imap)
    text = (await imap.command("UID STORE 2 +FLAGS (\\Deleted)")).text()
    assert "* 2 FETCH (FLAGS (\\Deleted \\Recent) UID 2)" in text


# --- SEARCH ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        ("ALL", "1 2"),
        ('SUBJECT "compte"', "1"),
        ('FROM "jean.dupont"', "1"),
        ('FROM "élodie"', "2"),  # encoded words are decoded
        ("TO secr\u00e9tariat", "2"),
        ('HEADER Message-ID "multi@"', "2"),
        ('BODY "normaux"', "2"),
        ('TEXT "transfert"', "2"),  # in the nested message's header
        ('BODY "compte rendu"', "1"),
        ("LARGER 500", "2"),
        ("SMALLER 500", "1"),
        ('OR SUBJECT "compte" BODY "normaux"', "1 2"),
        ('NOT FROM "jean"', "2"),
        ("SENTON 23-Nov-2026", "2"),
        ("SENTBEFORE 23-Nov-2026", "1"),
        ("UNSEEN", "1 2"),
        ("SEEN", ""),
        ("NEW", "1 2"),
        ("2", "2"),
        ("UID 1", "1"),
        ("1:* NOT UID 2", "1"),
        ("(SUBJECT compte) (LARGER 10)", "1"),
    ],
)
async def test_search(imap: RawIMAP, criteria: str, expected: str) -> None:
    await selected(imap)
    reply = await imap.command(f"SEARCH CHARSET UTF-8 {criteria}".encode())
    assert reply.ok, reply.text()
    assert reply.untagged("SEARCH") == [
        f"* SEARCH{' ' + expected if expected else ''}\r\n".encode()
    ]


async def test_search_flags_keywords_and_uid_search(imap: RawIMAP) -> None:
    await selected(imap)
    await imap.command("STORE 2 +FLAGS (\\Flagged $Labo)")
    assert (await imap.command("SEARCH FLAGGED")).lines[0] == b"* SEARCH 2\r\n"
    assert (await imap.command("SEARCH KEYWORD $Labo")).lines[0] == b"* SEARCH 2\r\n"
    assert (await imap.command("SEARCH UNKEYWORD $Labo")).lines[0] == b"* SEARCH 1\r\n"
    assert (await imap.command("UID SEARCH UNFLAGGED")).lines[0] == b"* SEARCH 1\r\n"


async def test_search_with_an_unknown_charset_is_badcharset(imap: RawIMAP) -> None:
    await selected(imap)
    reply = await imap.command("SEARCH CHARSET KOI8-R SUBJECT x")
    assert reply.response.startswith(b"NO [BADCHARSET")


async def test_esearch_return_options(imap: RawIMAP) -> None:
    await selected(imap)
    reply = await imap.command("SEARCH RETURN (MIN MAX COUNT) ALL")
    assert reply.lines == [b'* ESEARCH (TAG "t3") MIN 1 MAX 2 COUNT 2\r\n']


# --- COPY, MOVE, EXPUNGE -------------------------------------------------------------------------


async def test_copy_keeps_flags_and_returns_copyuid(imap: RawIMAP) -> None:
    await selected(imap)
    await imap.command("STORE 1 +FLAGS (\\Flagged $Gardé)")
    reply = await imap.command("COPY 1:2 Archive")
    assert reply.ok and b"[COPYUID " in reply.tagged and b" 1:2 1:2]" in reply.tagged
    status = (await imap.command("STATUS Archive (MESSAGES)")).lines[0]
    assert b"MESSAGES 2" in status
    await imap.command("SELECT Archive")
    assert "\\Flagged" in (await imap.command("FETCH 1 FLAGS")).text()
    assert (await imap.command("COPY 1 Nulle-part")).response.startswith(b"NO [TRYCREATE]")


async def test_move_sends_copyuid_then_expunge(imap: RawIMAP) -> None:
    await selected(imap)
    reply = await imap.command("MOVE 1 Archive")
    text = reply.text()
    assert "* OK [COPYUID " in text and "* 1 EXPUNGE" in text
    assert text.index("COPYUID") < text.index("EXPUNGE")
    assert b"MESSAGES 1" in (await imap.command("STATUS INBOX (MESSAGES)")).lines[0]


async def test_expunge_and_uid_expunge(imap: RawIMAP) -> None:
    await selected(imap)
    await imap.command("STORE 1:2 +FLAGS.SILENT (\\Deleted)")
    reply = await imap.command("UID EXPUNGE 2")
    assert reply.untagged("EXPUNGE") == [b"* 2 EXPUNGE\r\n"]
    reply = await imap.command("EXPUNGE")
    assert reply.untagged("EXPUNGE") == [b"* 1 EXPUNGE\r\n"]


async def test_close_expunges_silently_and_unselect_does_not(imap: RawIMAP) -> None:
    await selected(imap)
    await imap.command("STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert not (await imap.command("UNSELECT")).untagged("EXPUNGE")
    await selected(imap)
    reply = await imap.command("CLOSE")
    assert reply.ok and not reply.untagged("EXPUNGE")
    assert b"MESSAGES 1" in (await imap.command("STATUS INBOX (MESSAGES)")).lines[0]


# --- CONDSTORE ---------------------------------------------------------------------------------


async def test_condstore_modseq_changedsince_unchangedsince(imap: RawIMAP) -> None:
    reply = await imap.command("SELECT INBOX (CONDSTORE)")
    assert b"[HIGHESTMODSEQ " in b"".join(reply.lines)
    before = (await imap.command("FETCH 1:2 (MODSEQ)")).text()
    modseq = int(before.split("MODSEQ (")[1].split(")")[0])
    await imap.command("STORE 2 +FLAGS (\\Seen)")
    changed = (await imap.command(f"FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq + 1})")).text()
    assert "* 2 FETCH" in changed and "* 1 FETCH" not in changed
    refused = await imap.command(f"STORE 1:2 (UNCHANGEDSINCE {modseq + 1}) +FLAGS (\\Flagged)")
    assert b"[MODIFIED 2]" in refused.tagged
    assert (await imap.command("SEARCH MODSEQ 1")).lines[0].startswith(b"* SEARCH 1 2 (MODSEQ ")


# --- several sessions --------------------------------------------------------------------------


async def test_other_sessions_see_new_mail_flags_and_expunges(
    mailbox: Running, imap: RawIMAP
) -> None:
    await selected(imap)
    other = await selected_session(mailbox)
    await imap.command("STORE 1 +FLAGS (\\Flagged)")
    assert b"* 1 FETCH (FLAGS (\\Flagged) UID 1)\r\n" in (await other.command("NOOP")).lines
    await deliver(mailbox, SIMPLE.replace(b"simple@", b"trois@"))
    assert b"* 3 EXISTS\r\n" in (await other.command("NOOP")).lines
    await imap.command("STORE 1 +FLAGS.SILENT (\\Deleted)")
    await imap.command("EXPUNGE")
    # not during FETCH (RFC 3501 §7.4.1) ...
    during = await other.command("FETCH 1:* FLAGS")
    assert not during.untagged("EXPUNGE")
    # ... but at the next NOOP
    assert (await other.command("NOOP")).untagged("EXPUNGE") == [b"* 1 EXPUNGE\r\n"]
    assert len((await other.command("FETCH 1:* UID")).untagged("FETCH")) == 2
    await other.close()


async def test_idle_wakes_up_on_new_mail(mailbox: Running, imap: RawIMAP) -> None:
    await selected(imap)
    await imap.send(b"i1 IDLE\r\n")
    assert (await imap.read_line()).startswith(b"+ ")
    started = asyncio.get_running_loop().time()
    await deliver(mailbox, SIMPLE.replace(b"simple@", b"idle@"))
    # no IDLE polls: without the change feed nothing would come (3 s: a loaded machine)
    line = await asyncio.wait_for(imap.read_line(), 3.0)
    assert line == b"* 3 EXISTS\r\n"
    assert asyncio.get_running_loop().time() - started < 3.0
    await imap.send(b"DONE\r\n")
    reply = await imap.until("i1")
    assert reply.ok
