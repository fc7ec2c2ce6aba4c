"""QRESYNC (RFC 7162 §3.2): a client back after a while learns in its SELECT what
vanished and what changed since the modseq it knew; once enabled, expunges are told by
UID (VANISHED); UID FETCH … (CHANGEDSINCE n VANISHED). Over real IMAPS."""

from __future__ import annotations

import re

from mss.testing.imapclient import RawIMAP

from .harness import PASSWORD, Running
from .test_imap_commands import SIMPLE, USER, connect, deliver, imap, mailbox

__all__ = ["imap", "mailbox"]  # fixtures shared with test_imap_commands.py


def _text(lines: list[bytes]) -> str:
    return b"".join(lines).decode()


async def _marks(imap: RawIMAP) -> tuple[int, int]:
    """UIDVALIDITY and HIGHESTMODSEQ of INBOX, as SELECT tells them."""
    told = _text((await imap.command("SELECT INBOX")).lines)
    validity = re.search(r"UIDVALIDITY (\d+)", told)
    modseq = re.search(r"HIGHESTMODSEQ (\d+)", told)
    assert validity and modseq
    return int(validity.group(1)), int(modseq.group(1))


async def _other(mss: Running) -> RawIMAP:
    other = await connect(mss)
    await other.login(USER, PASSWORD)
    assert (await other.command("SELECT INBOX")).ok
    return other


async def test_select_qresync_needs_enable_first(imap: RawIMAP) -> None:
    assert b"QRESYNC" in (await imap.command("CAPABILITY")).lines[0]
    reply = await imap.command("SELECT INBOX (QRESYNC (1 1))")
    assert reply.status == "BAD"
    assert (await imap.command("ENABLE QRESYNC")).lines == [b"* ENABLED QRESYNC\r\n"]
    assert (await imap.command("SELECT INBOX (QRESYNC (1 1))")).ok


async def test_select_qresync_tells_what_vanished_and_what_changed(
    mailbox: Running, imap: RawIMAP
) -> None:
    validity, modseq = await _marks(imap)
    other = await _other(mailbox)
    assert (await other.command("STORE 1 +FLAGS (\\Flagged)")).ok
    assert (await other.command("STORE 2 +FLAGS (\\Deleted)")).ok
    assert (await other.command("EXPUNGE")).ok
    await deliver(mailbox, SIMPLE.replace(b"<simple@", b"<third@"))  # UID 3
    assert (await imap.command("ENABLE QRESYNC")).ok
    told = _text((await imap.command(f"SELECT INBOX (QRESYNC ({validity} {modseq}))")).lines)
    assert "* VANISHED (EARLIER) 2\r\n" in told
    assert re.search(r"\* 1 FETCH \(FLAGS \(\\Flagged\) UID 1 MODSEQ \(\d+\)\)", told)
    # UID 3 came in meanwhile (its \\Recent went to this session's ENABLE, selected then)
    assert re.search(r"\* 2 FETCH \(FLAGS \(\) UID 3 MODSEQ \(\d+\)\)", told)
    # known UIDs: only those are told vanished
    told = _text((await imap.command(f"SELECT INBOX (QRESYNC ({validity} {modseq} 1))")).lines)
    assert "VANISHED" not in told
    # another UIDVALIDITY: the client must start again, nothing is told
    told = _text((await imap.command(f"SELECT INBOX (QRESYNC ({validity + 1} {modseq}))")).lines)
    assert "VANISHED" not in told and "FETCH" not in told
    await other.close()


async def test_once_enabled_expunges_are_told_by_uid(mailbox: Running, imap: RawIMAP) -> None:
    assert (await imap.command("ENABLE QRESYNC")).ok
    assert (await imap.command("SELECT INBOX")).ok
    other = await _other(mailbox)
    assert (await imap.command("UID STORE 2 +FLAGS (\\Deleted)")).ok
    assert (await imap.command("EXPUNGE")).lines == [b"* VANISHED 2\r\n"]
    assert (await other.command("STORE 1 +FLAGS (\\Deleted)")).ok
    told = (await other.command("EXPUNGE")).lines  # not enabled there: by number
    assert told == [b"* 2 EXPUNGE\r\n", b"* 1 EXPUNGE\r\n"]
    assert b"* VANISHED 1\r\n" in (await imap.command("NOOP")).lines
    await other.close()


async def test_uid_fetch_changedsince_vanished(mailbox: Running, imap: RawIMAP) -> None:
    _validity, modseq = await _marks(imap)
    reply = await imap.command(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")
    assert reply.status == "BAD"  # QRESYNC not enabled
    assert (await imap.command("ENABLE QRESYNC")).ok
    assert (await imap.command("UID FETCH 1:* (FLAGS) (VANISHED)")).status == "BAD"
    assert (await imap.command(f"FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")).status == (
        "BAD"
    )
    other = await _other(mailbox)
    assert (await other.command("STORE 1 +FLAGS (\\Deleted \\Seen)")).ok
    assert (await other.command("EXPUNGE")).ok
    assert (await other.command("STORE 1 +FLAGS (\\Answered)")).ok  # UID 2
    reply = await imap.command(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")
    assert reply.lines[0] == b"* VANISHED (EARLIER) 1\r\n"
    # UID 1 is gone but not yet told by number (no expunge during FETCH): UID 2 is still 2
    assert re.match(rb"\* 2 FETCH \(UID 2 FLAGS \(\\Answered \\Recent\) MODSEQ", reply.lines[1])
    reply = await imap.command(f"UID FETCH 2:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")
    assert not any(line.startswith(b"* VANISHED") for line in reply.lines)  # 1 not in 2:*
    await other.close()
