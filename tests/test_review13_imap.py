"""Hostile review of issue 13's IMAP work (NOTIFY, CATENATE, THREAD, SORT, CONTEXT,
QRESYNC, LIST, BINARY, nested message/rfc822), over real IMAP on loopback.

Fifteen of them failed on main as reviewed (wildcards and base subjects costing an
exponent or a square of the event loop, NOTIFY's event rules, SELECTED-DELAYED, fetch
attributes, FlagChange and its set, a deleted selected mailbox, CATENATE's UTF-8 URLs,
RENAME past the name limit, QRESYNC's [CLOSED], BINARY of a missing part) and were
fixed; one stays marked xfail (not done); the others are regression tests."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from mss.testing.imapclient import RawIMAP

from .harness import PASSWORD, Running
from .test_imap_commands import SIMPLE, USER, connect, deliver, imap, mailbox

__all__ = ["imap", "mailbox"]


async def _unasked(client: RawIMAP, pattern: bytes, seconds: float = 5.0) -> bytes:
    while True:
        line = await asyncio.wait_for(client.read_line(), seconds)
        if re.match(pattern, line):
            return line


async def _heard(client: RawIMAP, seconds: float = 1.0) -> list[bytes]:
    """Every line the server sends unasked within `seconds`."""
    lines = []
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        try:
            lines.append(await asyncio.wait_for(client.read_line(), left))
        except TimeoutError:
            break
    return lines


def _message(n: int, extra: bytes = b"") -> bytes:
    return extra + SIMPLE.replace(b"<simple@", f"<review{n}@".encode())


async def _other(mailbox: Running) -> RawIMAP:
    other = await connect(mailbox)
    await other.login(USER, PASSWORD)
    assert (await other.command("SELECT INBOX")).ok
    return other


def _lit(data: bytes) -> bytes:
    return b"{%d+}\r\n" % len(data) + data


# --- NOTIFY (RFC 5465) ---------------------------------------------------------------------


async def test_notify_selected_delayed_holds_expunges_until_a_command_allows_them(
    mailbox: Running, imap: RawIMAP
) -> None:
    """RFC 5465 §6.1 SELECTED-DELAYED: expunges of the selected mailbox wait for
    a command where EXPUNGE is allowed; no unsolicited EXPUNGE between commands."""
    assert (await imap.command("SELECT INBOX")).ok
    assert (
        await imap.command("NOTIFY SET (SELECTED-DELAYED (MessageNew MessageExpunge FlagChange))")
    ).ok
    other = await _other(mailbox)
    assert (await other.command("STORE 1 +FLAGS (\\Deleted)")).ok
    assert (await other.command("EXPUNGE")).ok
    heard = await _heard(imap, 1.0)
    assert not [line for line in heard if b"EXPUNGE" in line], heard
    reply = await imap.command("NOOP")
    assert b"* 1 EXPUNGE\r\n" in reply.lines
    await other.close()


async def test_notify_messagenew_sends_the_fetch_attributes_asked(
    mailbox: Running, imap: RawIMAP
) -> None:
    """RFC 5465 §5.2: MessageNew (fetch-att…) on SELECTED: each new message is
    told with an unsolicited FETCH of those attributes, after its EXISTS."""
    assert (await imap.command("SELECT INBOX")).ok
    assert (
        await imap.command(
            "NOTIFY SET (SELECTED (MessageNew (UID BODY.PEEK[HEADER.FIELDS (Subject)]) "
            "MessageExpunge))"
        )
    ).ok
    await deliver(mailbox, _message(1))
    assert await _unasked(imap, rb"\* 3 EXISTS") == b"* 3 EXISTS\r\n"
    line = await _unasked(imap, rb"\* 3 FETCH", 3.0)
    assert b"UID 3" in line


async def test_notify_other_account_mailbox_is_never_told(mailbox: Running, imap: RawIMAP) -> None:
    """RFC 5465 §6: NOTIFY names the user's own mailboxes; another account's delivery
    is never told (no STATUS of a mailbox of another account)."""
    other_user = "paul.durand@pro.mssante.test"
    await mailbox.add_pro(other_user)
    assert (await imap.command("NOTIFY SET (PERSONAL (MessageNew MessageExpunge))")).ok
    from mss.store.accounts import get_account
    from mss.store.mailboxes import Target, mailbox_id

    def box(conn: object) -> int:
        account = get_account(conn, other_user)  # type: ignore[arg-type]
        assert account is not None
        return mailbox_id(conn, account.id, "INBOX")  # type: ignore[arg-type]

    target = await mailbox.store.read(box)
    await mailbox.store.deliver(_message(9), [Target(target, 0)])
    heard = await _heard(imap, 1.0)
    assert heard == [], heard


async def test_notify_stops_after_logout_and_the_session_ends_cleanly(
    mailbox: Running, imap: RawIMAP
) -> None:
    """A NOTIFY task does not outlive its session: after LOGOUT a delivery writes
    nothing and other sessions keep working."""
    assert (await imap.command("CREATE Dossier")).ok
    assert (await imap.command("NOTIFY SET (PERSONAL (MessageNew MessageExpunge))")).ok
    reply = await imap.command("LOGOUT")
    assert reply.ok
    for n in range(3):
        await deliver(mailbox, _message(n), "Dossier")
    other = await _other(mailbox)
    assert (await other.command("NOOP")).ok
    await other.close()


async def test_notify_during_idle_then_done_no_deadlock(mailbox: Running, imap: RawIMAP) -> None:
    """IDLE leaves the turn to NOTIFY; DONE amid a burst of news still ends IDLE and the
    next command is answered (no deadlock between `turn`, IDLE and the NOTIFY task)."""
    assert (await imap.command("CREATE Dossier")).ok
    assert (await imap.command("SELECT INBOX")).ok
    assert (
        await imap.command(
            "NOTIFY SET (SELECTED (MessageNew MessageExpunge FlagChange)) "
            "(MAILBOXES Dossier (MessageNew MessageExpunge))"
        )
    ).ok
    await imap.send(b"i1 IDLE\r\n")
    assert (await imap.read_line()).startswith(b"+")
    burst = [deliver(mailbox, _message(n), "Dossier" if n % 2 else "INBOX") for n in range(10)]
    await asyncio.gather(*burst)
    await imap.send(b"DONE\r\n")
    assert (await asyncio.wait_for(imap.until("i1"), 5)).ok
    assert (await asyncio.wait_for(imap.command("NOOP"), 5)).ok


async def test_notify_huge_mailbox_list_does_not_block_other_sessions(
    mailbox: Running, imap: RawIMAP
) -> None:
    """One NOTIFY naming many mailboxes (literals lift the line limit) must not
    stall the event loop: another session's NOOP answers within a second."""
    for n in range(20):
        assert (await imap.command(f"CREATE D{n}")).ok
    names = b" ".join(b"{6+}\r\nx%05d" % i for i in range(60000))
    command = b"n1 NOTIFY SET (MAILBOXES (" + names + b") (MessageNew MessageExpunge))\r\n"
    other = await _other(mailbox)
    await imap.send(command)
    await asyncio.sleep(0.3)
    start = time.monotonic()
    assert (await asyncio.wait_for(other.command("NOOP"), 30)).ok
    waited = time.monotonic() - start
    await asyncio.wait_for(imap.until("n1"), 120)
    assert waited < 1.0, f"another session waited {waited:.1f} s"
    await other.close()


# --- SORT and THREAD on odd data (RFC 5256) ------------------------------------------------


def _with_subject(subject: bytes, n: int, extra: bytes = b"") -> bytes:
    head = b"Subject: " + subject + b"\r\n" + extra
    return SIMPLE.replace(b"Subject: Compte rendu\r\n", head).replace(
        b"<simple@", f"<odd{n}@".encode()
    )


def _folded_blobs(count: int) -> bytes:
    """`[a] [a] … x`, folded every 20 blobs (a header any SMTP client may send)."""
    lines = [b"[a] " * 20 for _ in range(count // 20)]
    return b"\r\n ".join(lines) + b"x"


async def test_sort_subject_of_many_blobs_is_not_quadratic(mailbox: Running, imap: RawIMAP) -> None:
    """RFC 5256 §2.1 base subject: one delivered message whose Subject holds
    thousands of `[blob]`s must not cost seconds of event-loop CPU in SORT (SUBJECT);
    another session's NOOP answers meanwhile."""
    await deliver(mailbox, _with_subject(_folded_blobs(8000), 1))
    assert (await imap.command("SELECT INBOX")).ok
    other = await _other(mailbox)
    start = time.monotonic()
    await imap.send(b"s1 SORT (SUBJECT) UTF-8 ALL\r\n")
    await asyncio.sleep(0.05)
    assert (await asyncio.wait_for(other.command("NOOP"), 60)).ok
    other_waited = time.monotonic() - start
    assert (await asyncio.wait_for(imap.until("s1"), 60)).ok
    took = time.monotonic() - start
    await other.close()
    assert took < 5.0 and other_waited < 5.0, (took, other_waited)


async def test_thread_subject_of_many_blobs_is_not_quadratic(
    mailbox: Running, imap: RawIMAP
) -> None:
    """RFC 5256 §2.1: THREAD=ORDEREDSUBJECT over a message whose Subject holds
    thousands of `[blob]`s answers in well under a second (base subject is linear)."""
    await deliver(mailbox, _with_subject(_folded_blobs(8000), 1))
    assert (await imap.command("SELECT INBOX")).ok
    start = time.monotonic()
    reply = await asyncio.wait_for(imap.command("THREAD ORDEREDSUBJECT UTF-8 ALL"), 60)
    took = time.monotonic() - start
    assert reply.ok
    assert took < 5.0, f"THREAD took {took:.1f} s"


async def test_sort_subject_fwd_trailers_and_wrapping_are_not_quadratic(
    mailbox: Running, imap: RawIMAP
) -> None:
    """RFC 5256 §2.1 steps 2 and 6 ((fwd) trailers, [fwd: …] wrapping): a
    subject of thousands of them is stripped in linear time."""
    trailers = b"x" + b"\r\n ".join([b"(fwd)" * 100] * 80)
    wrapped = b"\r\n ".join([b"[fwd: " * 50] * 100) + b"x" + b"]" * 5000
    await deliver(mailbox, _with_subject(trailers, 1))
    await deliver(mailbox, _with_subject(wrapped, 2))
    assert (await imap.command("SELECT INBOX")).ok
    start = time.monotonic()
    reply = await asyncio.wait_for(imap.command("SORT (SUBJECT) UTF-8 ALL"), 60)
    took = time.monotonic() - start
    assert reply.ok
    assert took < 5.0, f"SORT took {took:.1f} s"


async def test_thread_references_with_cycles_lists_every_message_once(
    mailbox: Running, imap: RawIMAP
) -> None:
    """RFC 5256 §2.2 REFERENCES: a loop of References (a→b→a, a message naming itself,
    a duplicate Message-ID) threads every message exactly once, no BAD nor SERVERBUG."""

    def mail(mid: bytes, refs: bytes, subject: bytes = b"Boucle") -> bytes:
        return (
            b"From: a@pro.mssante.test\r\nSubject: " + subject + b"\r\n"
            b"Date: Sun, 22 Nov 2026 10:00:00 +0100\r\nMessage-ID: " + mid + b"\r\n"
            b"References: " + refs + b"\r\n\r\nx\r\n"
        )

    await deliver(mailbox, mail(b"<a@x>", b"<b@x>"))
    await deliver(mailbox, mail(b"<b@x>", b"<a@x>"))
    await deliver(mailbox, mail(b"<c@x>", b"<c@x>"))
    await deliver(mailbox, mail(b"<a@x>", b"<c@x> <b@x> <a@x>"))
    await deliver(mailbox, mail(b"<d@x>", b"<e@x> <d@x> <e@x>", b"Re: Boucle"))
    assert (await imap.command("SELECT INBOX")).ok
    for algorithm in ("REFERENCES", "ORDEREDSUBJECT"):
        reply = await asyncio.wait_for(imap.command(f"THREAD {algorithm} UTF-8 ALL"), 10)
        assert reply.ok, reply.response
        line = reply.untagged("THREAD")[0]
        numbers = sorted(int(n) for n in re.findall(rb"\d+", line))
        assert numbers == list(range(1, 8)), (algorithm, line)


# --- nested messages, BINARY (RFC 3501 §6.4.5, RFC 3516) -----------------------------------


def _nested(depth: int) -> bytes:
    raw = b"Subject: fond\r\n\r\nau fond\r\n"
    for _ in range(depth):
        raw = b"Subject: niveau\r\nMIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n" + raw
    return b"From: a@pro.mssante.test\r\n" + raw


async def test_deeply_nested_message_rfc822_is_answered(mailbox: Running, imap: RawIMAP) -> None:
    """A message of 400 nested message/rfc822 parts is stored and fetched: BODYSTRUCTURE
    and BODY[1.1…] answer OK or NO, never NO [SERVERBUG] nor a dropped connection."""
    raw = _nested(400)
    reply = await imap.command(b"APPEND INBOX " + _lit(raw))
    assert reply.ok or reply.status == "NO", reply.response
    assert b"SERVERBUG" not in reply.response
    if reply.ok:
        assert (await imap.command("SELECT INBOX")).ok
        for item in (
            "BODYSTRUCTURE",
            "BODY.PEEK[" + ".".join(["1"] * 300) + "]",
            "BINARY.PEEK[" + ".".join(["1"] * 300) + "]",
            "ENVELOPE",
        ):
            got = await asyncio.wait_for(imap.command(f"FETCH 3 ({item})"), 20)
            assert b"SERVERBUG" not in got.response and got.status in ("OK", "NO"), (
                item,
                got.response,
            )
    assert (await imap.command("NOOP")).ok


async def test_binary_of_unknown_encoding_is_unknown_cte(mailbox: Running, imap: RawIMAP) -> None:
    """RFC 3516 §4.3: BINARY of a part whose Content-Transfer-Encoding is unknown is
    NO [UNKNOWN-CTE]; BINARY.SIZE too."""
    raw = (
        b"From: a@pro.mssante.test\r\nSubject: cte\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n"
        b"begin 644 f\r\n#86)C\r\n`\r\nend\r\n"
    )
    assert (await imap.command(b"APPEND INBOX " + _lit(raw))).ok
    assert (await imap.command("SELECT INBOX")).ok
    for item in ("BINARY.PEEK[1]", "BINARY.SIZE[1]", "BINARY.PEEK[]"):
        got = await imap.command(f"FETCH 3 ({item})")
        assert got.status == "NO" and b"UNKNOWN-CTE" in got.response, (item, got.response)


async def test_binary_of_a_message_rfc822_part_is_answered(mailbox: Running, imap: RawIMAP) -> None:
    """RFC 3516 §4.2: BINARY[3] of MULTIPART's message/rfc822 part (7bit) is its bytes;
    BINARY[3.1] its encapsulated body; no SERVERBUG."""
    assert (await imap.command("SELECT INBOX")).ok
    for item in (
        "BINARY.PEEK[3]",
        "BINARY.PEEK[3.1]",
        "BINARY.SIZE[3]",
        "BODY.PEEK[3.HEADER]",
        "BODY.PEEK[3.TEXT]",
        "BODY.PEEK[3.1.MIME]",
        "BINARY.PEEK[3.2]",
    ):
        got = await imap.command(f"FETCH 2 ({item})")
        assert b"SERVERBUG" not in got.response, (item, got.response)
        if item != "BINARY.PEEK[3.2]":
            assert got.ok, (item, got.response)


# --- QRESYNC (RFC 7162) --------------------------------------------------------------------


async def test_qresync_no_vanished_during_fetch_then_numbers_follow(
    mailbox: Running, imap: RawIMAP
) -> None:
    """RFC 7162 §3.2.10 with RFC 3501 §7.4.1: no VANISHED while answering FETCH, STORE,
    SEARCH, SORT or THREAD; told at NOOP, after which numbers follow the expunge."""
    assert (await imap.command("ENABLE QRESYNC")).ok
    assert (await imap.command("SELECT INBOX")).ok
    other = await _other(mailbox)
    assert (await other.command("STORE 1 +FLAGS (\\Deleted)")).ok
    assert (await other.command("EXPUNGE")).ok
    for command in ("FETCH 1:* (UID)", "STORE 2 +FLAGS (\\Seen)", "SEARCH ALL",
                    "SORT (ARRIVAL) UTF-8 ALL", "THREAD ORDEREDSUBJECT UTF-8 ALL",
                    "SEARCH RETURN (MIN MAX) ALL"):  # fmt: skip
        reply = await imap.command(command)
        assert reply.ok, (command, reply.response)
        assert not [x for x in reply.lines if b"VANISHED" in x or b"EXPUNGE" in x], command
    assert b"* VANISHED 1\r\n" in (await imap.command("NOOP")).lines
    assert b"UID 2" in b"".join((await imap.command("FETCH 1 (UID)")).lines)
    await other.close()


async def test_qresync_select_tells_a_moved_message_vanished(
    mailbox: Running, imap: RawIMAP
) -> None:
    """RFC 7162 §3.2.5: a message MOVEd away by another session since the client's
    modseq is in SELECT's VANISHED (EARLIER), like an expunged one."""
    assert (await imap.command("CREATE Dossier")).ok
    reply = await imap.command("STATUS INBOX (UIDVALIDITY HIGHESTMODSEQ)")
    validity, modseq = map(int, re.findall(rb"(?:UIDVALIDITY|HIGHESTMODSEQ) (\d+)",
                                           reply.lines[0]))  # fmt: skip
    other = await _other(mailbox)
    assert (await other.command("MOVE 1 Dossier")).ok
    assert (await imap.command("ENABLE QRESYNC")).ok
    told = b"".join((await imap.command(f"SELECT INBOX (QRESYNC ({validity} {modseq}))")).lines)
    assert b"* VANISHED (EARLIER) 1\r\n" in told, told
    await other.close()


async def test_qresync_select_while_selected_says_closed(mailbox: Running, imap: RawIMAP) -> None:
    """RFC 7162 §3.2.11: with QRESYNC, a SELECT while a mailbox is selected first
    sends `* OK [CLOSED]`, so the client knows which responses belong to which mailbox."""
    assert (await imap.command("ENABLE QRESYNC")).ok
    assert (await imap.command("CREATE Dossier")).ok
    assert (await imap.command("SELECT INBOX")).ok
    reply = await imap.command("SELECT Dossier")
    assert reply.ok
    assert reply.lines[0].startswith(b"* OK [CLOSED]"), reply.lines[:2]


async def test_qresync_uid_fetch_vanished_lists_only_expunged_uids_of_the_set(
    mailbox: Running, imap: RawIMAP
) -> None:
    """RFC 7162 §3.2.6: UID FETCH … (CHANGEDSINCE m VANISHED) lists UIDs of the set expunged
    after m; the messages still there are not in it."""
    assert (await imap.command("ENABLE QRESYNC")).ok
    reply = await imap.command("SELECT INBOX")
    modseq = int(re.search(rb"HIGHESTMODSEQ (\d+)", b"".join(reply.lines))[1])
    for n in range(3):
        await deliver(mailbox, _message(n))
    assert (await imap.command("NOOP")).ok
    assert (await imap.command("UID STORE 3,4 +FLAGS (\\Deleted)")).ok
    assert (await imap.command("UID EXPUNGE 3:4")).ok
    reply = await imap.command(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")
    assert reply.ok
    vanished = [x for x in reply.lines if x.startswith(b"* VANISHED")]
    assert vanished == [b"* VANISHED (EARLIER) 3:4\r\n"], vanished


async def test_mailbox_deleted_under_a_selected_session_does_not_leave_it_half_alive(
    mailbox: Running, imap: RawIMAP
) -> None:
    """RFC 3501 §7.1.5: BYE means the server closes the connection. A session whose
    selected mailbox another session deleted says `* BYE Mailbox deleted` at every command
    and goes on answering OK (FETCH, STORE, COPY of messages that are gone)."""
    assert (await imap.command("CREATE Dossier")).ok
    assert (await imap.command(b"APPEND Dossier " + _lit(_message(1)))).ok
    assert (await imap.command("SELECT Dossier")).ok
    other = await connect(mailbox)
    await other.login(USER, PASSWORD)
    assert (await other.command("DELETE Dossier")).ok
    reply = await imap.command("NOOP")
    if any(x.startswith(b"* BYE") for x in reply.lines):
        try:  # after a BYE the connection ends: no command is answered any more
            later = await asyncio.wait_for(imap.command("COPY 1 INBOX"), 2)
            answered = later.tagged
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, EOFError):
            answered = b""
        assert answered == b"", f"after BYE the session still answers {answered!r}"
    else:  # or the session stays, out of the deleted mailbox (NO/BAD, never OK)
        later = await imap.command("COPY 1 INBOX")
        assert later.status != "OK", later.tagged
    await other.close()


# --- LIST, LSUB, subscriptions (RFC 3501 §6.3.8-9, RFC 5258) -------------------------------


async def test_subscriptions_do_not_leak_across_accounts(mailbox: Running, imap: RawIMAP) -> None:
    """RFC 3501 §6.3.6: subscriptions are the user's own; another account sees none."""
    assert (await imap.command("SUBSCRIBE Secret")).ok
    assert (await imap.command("CREATE Visible")).ok
    assert (await imap.command("SUBSCRIBE Visible")).ok
    other_user = "paul.durand@pro.mssante.test"
    await mailbox.add_pro(other_user)
    paul = await connect(mailbox)
    await paul.login(other_user, PASSWORD)
    for command in ('LSUB "" *', 'LIST (SUBSCRIBED) "" *', 'LIST "" * RETURN (SUBSCRIBED)'):
        reply = await paul.command(command)
        text = b"".join(reply.lines)
        assert b"Secret" not in text and b"Visible" not in text, (command, text)
    await paul.close()


async def test_inbox_in_any_case_lists_and_subscribes_as_inbox(imap: RawIMAP) -> None:
    """RFC 3501 §5.1: INBOX is case-insensitive; `inbox`, `InBox/%`, SUBSCRIBE inbox all
    name INBOX, and LSUB shows it once as INBOX."""
    assert (await imap.command("CREATE INBOX/Sous")).ok
    for pattern, want in (('"" inbox', b'"INBOX"'), ('"" InBoX', b'"INBOX"'),
                          ('"" inbox/%', b"INBOX/Sous"), ('inbox/ %', b"INBOX/Sous")):  # fmt: skip
        text = b"".join((await imap.command(f"LIST {pattern}")).lines)
        assert want.strip(b'"') in text, (pattern, text)
    assert (await imap.command("SUBSCRIBE inbox")).ok
    assert (await imap.command("SUBSCRIBE InBox/Sous")).ok
    lines = [x for x in (await imap.command('LSUB "" *')).lines if b"INBOX" in x.upper()]
    assert sorted(lines) == [b'* LSUB () "/" INBOX\r\n', b'* LSUB () "/" INBOX/Sous\r\n'], lines
    lines = (await imap.command('LIST (SUBSCRIBED) "" *')).lines
    assert not [x for x in lines if b"NonExistent" in x], lines


async def test_list_wildcards_and_specials_in_names_match_literally(imap: RawIMAP) -> None:
    """RFC 3501 §6.3.8: `*`/`%` are wildcards in patterns only; regex specials in names
    (`.`, `(`, `+`, `[`) and modified UTF-7 patterns match literally."""
    for name in ("a.b", "a+b", "x[1]", "&AOk-t&AOk-", "A&-B"):
        assert (await imap.command(f'CREATE "{name}"')).ok, name
    for pattern, want in (("a.b", [b"a.b"]), ("a%b", [b"a+b", b"a.b"]), ("x[1]", [b"x[1]"]),
                          ("&AOk-*", [b"&AOk-t&AOk-"]), ("A&-*", [b"A&-B"]),
                          ("a?b", [])):  # fmt: skip
        lines = (await imap.command(f'LIST "" "{pattern}"')).lines
        got = sorted(x.rsplit(b" ", 1)[1].strip(b'"\r\n') for x in lines)
        assert got == want, (pattern, lines)


async def test_lsub_keeps_subscription_of_a_deleted_then_renamed_mailbox(imap: RawIMAP) -> None:
    """RFC 3501 §6.3.4/§6.3.6: DELETE leaves the subscription; RENAME moves the children's;
    UNSUBSCRIBE of a name without mailbox works."""
    assert (await imap.command("CREATE P/Q")).ok
    assert (await imap.command("SUBSCRIBE P/Q")).ok
    assert (await imap.command("RENAME P R")).ok
    lines = (await imap.command('LSUB "" R*')).lines
    assert lines == [b'* LSUB () "/" R/Q\r\n'], lines
    assert (await imap.command("DELETE R/Q")).ok
    lines = (await imap.command('LIST (SUBSCRIBED) "" R*')).lines
    assert lines == [b'* LIST (\\Subscribed \\NonExistent) "/" R/Q\r\n'], lines
    assert (await imap.command("UNSUBSCRIBE R/Q")).ok
    assert (await imap.command('LSUB "" R*')).lines == []
    assert (await imap.command('LSUB "" P*')).lines == []


# --- CATENATE (RFC 4469, URLs of RFC 5092) -------------------------------------------------


async def test_catenate_url_with_utf8_mailbox_name(mailbox: Running, imap: RawIMAP) -> None:
    """RFC 5092 §3 (enc-mailbox): an IMAP URL's mailbox is UTF-8, %-encoded (not
    modified UTF-7); `/%C3%89t%C3%A9/;UID=1` names the mailbox `Été` (wire `&AMk-t&AOk-`)."""
    assert (await imap.command('CREATE "&AMk-t&AOk-"')).ok
    assert (await imap.command(b'APPEND "&AMk-t&AOk-" ' + _lit(SIMPLE))).ok
    reply = await imap.command(b'APPEND INBOX CATENATE (URL "/%C3%89t%C3%A9/;UID=1")')
    assert reply.ok, reply.response


async def test_catenate_url_never_reaches_another_account(mailbox: Running, imap: RawIMAP) -> None:
    """RFC 4469 §5 / RFC 5092: URLs name this user's messages only; variants that try
    another user's (`//user@host`, `;AUTH=`, `~user`, `%2F`) are BADURL."""
    other_user = "paul.durand@pro.mssante.test"
    await mailbox.add_pro(other_user)
    for url in (f"imap://{other_user}@localhost/INBOX/;UID=1",
                f"//{other_user}@localhost/INBOX/;UID=1", "/~paul.durand/INBOX/;UID=1",
                f"/{other_user}/INBOX/;UID=1", "/%2E%2E/INBOX/;UID=1",
                "/INBOX;AUTH=*/;UID=1"):  # fmt: skip
        reply = await imap.command(f'APPEND INBOX CATENATE (URL "{url}")'.encode())
        assert reply.status == "NO" and b"BADURL" in reply.response, (url, reply.response)


async def test_catenate_partial_past_the_end_and_huge_are_bounded(imap: RawIMAP) -> None:
    """RFC 5092 §3 PARTIAL: an offset past the end gives nothing (the message is empty:
    NO); a length larger than the message takes the rest; never SERVERBUG."""
    for url in ("/INBOX/;UID=1/;PARTIAL=99999999", "/INBOX/;UID=1/;PARTIAL=0.9999999999",
                "/INBOX/;UID=1/;SECTION=1/;PARTIAL=4294967295.4294967295",
                "/INBOX/;UID=2/;SECTION=3.1/;PARTIAL=0.1", "/INBOX/;UID=2/;SECTION=3.HEADER",
                "/INBOX/;UID=2/;SECTION=4.5.6.7.8.9"):  # fmt: skip
        reply = await imap.command(f'APPEND INBOX CATENATE (URL "{url}")'.encode())
        assert b"SERVERBUG" not in reply.response, (url, reply.response)


# --- CONTEXT=SEARCH/SORT (RFC 5267) --------------------------------------------------------


async def test_context_sort_update_positions_follow_the_sort_order(
    mailbox: Running, imap: RawIMAP
) -> None:
    """RFC 5267 §4.3: ADDTO of an updated SORT gives the new message's position in the
    sort order after its EXISTS; REMOVEFROM comes before EXPUNGE."""
    assert (await imap.command("SELECT INBOX")).ok
    reply = await imap.command("SORT RETURN (UPDATE ALL) (ARRIVAL) UTF-8 ALL", tag="s1")
    assert reply.ok, reply.response
    assert b'* ESEARCH (TAG "s1") ALL 1:2\r\n' in reply.lines, reply.lines
    await deliver(mailbox, _message(1))
    lines = (await imap.command("NOOP")).lines
    assert lines.index(b"* 3 EXISTS\r\n") < lines.index(b'* ESEARCH (TAG "s1") ADDTO (3 3)\r\n'), (
        lines
    )
    other = await _other(mailbox)
    assert (await other.command("STORE 2 +FLAGS (\\Deleted)")).ok
    assert (await other.command("EXPUNGE")).ok
    lines = (await imap.command("NOOP")).lines
    assert lines.index(b'* ESEARCH (TAG "s1") REMOVEFROM (2 2)\r\n') < lines.index(
        b"* 2 EXPUNGE\r\n"
    ), lines
    await other.close()


async def test_context_update_not_told_during_fetch_with_numbers_that_move(
    mailbox: Running, imap: RawIMAP
) -> None:
    """RFC 5267 §4.3 with RFC 3501 §7.4.1: while FETCH may not tell an expunge, no update
    may use message numbers the expunge will shift: a REMOVEFROM told during FETCH must
    be followed by that EXPUNGE before any other number is used, or wait for NOOP."""
    assert (await imap.command("SELECT INBOX")).ok
    reply = await imap.command("SEARCH RETURN (UPDATE) ALL", tag="u1")
    assert reply.ok
    other = await _other(mailbox)
    assert (await other.command("STORE 1 +FLAGS (\\Deleted)")).ok
    assert (await other.command("EXPUNGE")).ok
    during = (await imap.command("FETCH 1:* (UID)")).lines
    after = (await imap.command("NOOP")).lines
    removes = [x for x in during + after if b"REMOVEFROM" in x]
    assert removes == [b'* ESEARCH (TAG "u1") REMOVEFROM (0 1)\r\n'], (during, after)
    assert b"* 1 EXPUNGE\r\n" in after
    await other.close()


async def test_context_too_many_updates_say_noupdate(imap: RawIMAP) -> None:
    """RFC 5267 §4.2: past what the server keeps, a search is answered with NOUPDATE, and
    CANCELUPDATE frees room."""
    assert (await imap.command("SELECT INBOX")).ok
    for n in range(10):
        assert (
            b"NOUPDATE"
            not in (await imap.command("SEARCH RETURN (UPDATE) ALL", tag=f"c{n}")).response
        )
    reply = await imap.command("SEARCH RETURN (UPDATE) ALL", tag="c10")
    assert b'NOUPDATE "c10"' in reply.response
    assert (await imap.command('CANCELUPDATE "c0"')).ok
    assert b"NOUPDATE" not in (await imap.command("SEARCH RETURN (UPDATE) ALL", tag="c11")).response


async def test_partial_range_in_either_order_and_past_the_end(imap: RawIMAP) -> None:
    """RFC 5267 §4.4 PARTIAL: `2:1` is the same range as `1:2`; a range past the end gives
    what there is, never BAD nor SERVERBUG."""
    assert (await imap.command("SELECT INBOX")).ok
    a = (await imap.command("SEARCH RETURN (PARTIAL 1:2) ALL", tag="p1")).lines
    b = (await imap.command("SEARCH RETURN (PARTIAL 2:1) ALL", tag="p1")).lines
    assert a == b, (a, b)
    reply = await imap.command("SORT RETURN (PARTIAL 5:4294967295) (ARRIVAL) UTF-8 ALL")
    assert reply.ok, reply.response


# --- SEARCH addresses and SENT* (RFC 3501 §6.4.4) ------------------------------------------


async def test_search_sent_dates_use_the_date_header_in_its_own_zone(
    mailbox: Running, imap: RawIMAP
) -> None:
    """RFC 3501 §6.4.4 SENTON: the Date header's date, in its own time zone, disregarding
    time and zone (a 23:30 -0800 message was sent on its day, not the next UTC one)."""
    late = SIMPLE.replace(b"Date: Sun, 22 Nov 2026 10:00:00 +0100",
                          b"Date: Tue, 01 Dec 2026 23:30:00 -0800").replace(
        b"<simple@", b"<late@")  # fmt: skip
    await deliver(mailbox, late)
    assert (await imap.command("SELECT INBOX")).ok
    assert (await imap.command("SEARCH SENTON 1-Dec-2026")).lines == [b"* SEARCH 3\r\n"]
    assert (await imap.command("SEARCH SENTON 2-Dec-2026")).lines == [b"* SEARCH\r\n"]
    assert (await imap.command("SEARCH SENTBEFORE 2-Dec-2026 SENTSINCE 1-Dec-2026")).lines == [
        b"* SEARCH 3\r\n"
    ]


async def test_search_address_forms_name_comment_and_encoded(
    mailbox: Running, imap: RawIMAP
) -> None:
    """RFC 3501 §6.4.4 FROM/TO/CC: substring of the field, names of every address form
    (comment form, encoded-word, group) included."""
    raw = (
        b"From: jean@pro.mssante.test (Jean Commentaire)\r\n"
        b"To: Equipe: a@x.test, =?utf-8?q?Z=C3=A9lie?= <z@x.test>;\r\n"
        b'Cc: "Dr. Quote, Jr" <q@x.test>\r\n'
        b"Subject: adresses\r\nDate: Sun, 22 Nov 2026 10:00:00 +0100\r\n\r\nx\r\n"
    )
    await deliver(mailbox, raw)
    assert (await imap.command("SELECT INBOX")).ok
    for key in ('FROM "Commentaire"', 'TO "Zélie"', 'TO "Equipe"', 'CC "Quote, Jr"',
                'TO "z@x.test"'):  # fmt: skip
        reply = await imap.command(f"SEARCH CHARSET UTF-8 {key}".encode())
        assert reply.lines == [b"* SEARCH 3\r\n"], (key, reply.lines)


# --- NOTIFY variants -------------------------------------------------------------------


async def test_notify_selected_follows_the_newly_selected_mailbox(
    mailbox: Running, imap: RawIMAP
) -> None:
    """RFC 5465 §6.1 SELECTED: whichever mailbox is selected now; after SELECT Dossier its
    news are told, INBOX's as STATUS (it is in INBOXES), never as EXISTS."""
    assert (await imap.command("CREATE Dossier")).ok
    assert (await imap.command("SELECT INBOX")).ok
    assert (
        await imap.command(
            "NOTIFY SET (SELECTED (MessageNew MessageExpunge)) "
            "(INBOXES (MessageNew MessageExpunge))"
        )
    ).ok
    assert (await imap.command("SELECT Dossier")).ok
    await deliver(mailbox, _message(1), "Dossier")
    assert await _unasked(imap, rb"\* \d+ EXISTS") == b"* 1 EXISTS\r\n"
    await deliver(mailbox, _message(2))
    line = await _unasked(imap, rb"\* (STATUS|\d+ EXISTS)")
    assert line.startswith(b"* STATUS INBOX (MESSAGES 3 "), line


async def test_notify_subtree_with_modified_utf7_and_rename(
    mailbox: Running, imap: RawIMAP
) -> None:
    """RFC 5465 §6.1 SUBTREE names in modified UTF-7; after this session's RENAME of a
    mailbox of the set, news of it are told under its new name."""
    assert (await imap.command('CREATE "&AMk-t&AOk-/Sous"')).ok
    assert (await imap.command('NOTIFY SET (SUBTREE "&AMk-t&AOk-" (MessageNew MessageExpunge))')).ok
    from mss.imap.parsing.utf7 import decode

    await deliver(mailbox, _message(1), decode("&AMk-t&AOk-/Sous"))
    assert (await _unasked(imap, rb"\* STATUS")).startswith(
        b"* STATUS &AMk-t&AOk-/Sous (MESSAGES 1"
    )
    assert (await imap.command('RENAME "&AMk-t&AOk-/Sous" "&AMk-t&AOk-/Autre"')).ok
    await deliver(mailbox, _message(2), decode("&AMk-t&AOk-/Autre"))
    assert await _unasked(imap, rb"\* STATUS &AMk-t&AOk-/Autre \(MESSAGES 2 ")


async def test_notify_status_never_interleaves_a_command_answer(
    mailbox: Running, imap: RawIMAP
) -> None:
    """RFC 5465 §4 / RFC 3501 §7: news are told between commands; a FETCH's literals are
    never cut by a STATUS line, however many deliveries happen meanwhile."""
    assert (await imap.command("CREATE Dossier")).ok
    big = SIMPLE + b"x" * 300_000 + b"\r\n"
    for n in range(3):
        await deliver(mailbox, big.replace(b"<simple@", f"<big{n}@".encode()))
    assert (await imap.command("SELECT INBOX")).ok
    assert (await imap.command("NOTIFY SET (MAILBOXES Dossier (MessageNew MessageExpunge))")).ok
    storm = asyncio.gather(*(deliver(mailbox, _message(n), "Dossier") for n in range(20)))
    for _ in range(3):
        reply = await imap.command("FETCH 1:* (BODY.PEEK[])")
        assert reply.ok
        for line in reply.lines:
            if b"FETCH" in line:
                assert b"STATUS" not in line
    await storm


# --- a hostile client's odd commands ---------------------------------------------------------

ODD_COMMANDS: list[bytes] = [
    b'NOTIFY SET (MAILBOXES "" (MessageNew MessageExpunge))',
    b'NOTIFY SET (MAILBOXES "&&&" (MessageNew MessageExpunge))',
    b"NOTIFY SET (SELECTED (MessageNew (BODY[]<0.10> BINARY[1] RFC822.SIZE) MessageExpunge))",
    b"NOTIFY SET (SELECTED (MessageNew (FOO) MessageExpunge))",
    b"NOTIFY SET STATUS (SELECTED (MessageNew MessageExpunge))",
    b"NOTIFY SET (PERSONAL NONE) (PERSONAL (MessageNew MessageExpunge))",
    b"NOTIFY SET (personal (messagenew messageexpunge flagchange))",
    b"NOTIFY SET (SUBTREE () (MessageNew))",
    b"NOTIFY SET (INBOXES (MessageNew MessageExpunge)) (SELECTED-DELAYED NONE)",
    b"NOTIFY NONE",
    b"SELECT INBOX (QRESYNC (1 1 1:* (1:2 1:2)))",
    b"SELECT INBOX (QRESYNC (0 0))",
    b"SELECT INBOX (QRESYNC (4294967296 1))",
    b"SELECT INBOX (QRESYNC (1 18446744073709551616))",
    b"SELECT INBOX (QRESYNC (1 1 *:1 (1 4294967295)))",
    b"SELECT INBOX",
    b"THREAD REFERENCES UTF-8 (UNDRAFT)",
    b"THREAD FOO UTF-8 ALL",
    b"THREAD REFERENCES ISO-8859-1 ALL",
    b'THREAD REFERENCES UTF-8 SUBJECT "\xc3\xa9"',
    b"UID THREAD REFERENCES US-ASCII 1:* NOT DELETED",
    b"SORT (SUBJECT) X ALL",
    b"SORT (REVERSE) UTF-8 ALL",
    b"SORT (REVERSE REVERSE DATE) UTF-8 ALL",
    b"SORT () UTF-8 ALL",
    b"SORT RETURN (PARTIAL 0:1) (DATE) UTF-8 ALL",
    b"SORT RETURN (UPDATE COUNT MIN MAX ALL) (DISPLAYFROM DISPLAYTO CC TO FROM SIZE) UTF-8 ALL",
    b"SORT RETURN (PARTIAL 1:1 PARTIAL 2:2) (DATE) UTF-8 ALL",
    b"SEARCH RETURN (PARTIAL 1:1 PARTIAL 2:2) ALL",
    b"SEARCH RETURN (UPDATE SAVE) ALL",
    b"SEARCH RETURN (PARTIAL -1:-5) ALL",
    b"SEARCH SENTON 31-Feb-2026",
    b"SEARCH SENTBEFORE 1-Jan-0000",
    b'SEARCH FROM ""',
    b"SEARCH CHARSET UTF-8 FROM {2+}\r\n\xc3\xa9",
    b"SEARCH CHARSET UTF-8 FROM {1+}\r\n\xff",
    b"UID FETCH 1:* (FLAGS) (VANISHED)",
    b"UID FETCH 1:* (FLAGS) (CHANGEDSINCE 0 VANISHED)",
    b"UID FETCH 1:* (FLAGS) (CHANGEDSINCE 18446744073709551615 VANISHED)",
    b"FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)",
    b"FETCH 1 (BINARY[1.2.3]<0.4294967295>)",
    b"FETCH 2 (BINARY.SIZE[3.1.1.1])",
    b"FETCH 2 (BODY.PEEK[3.1.HEADER.FIELDS (Subject)])",
    b"FETCH 2 (BINARY.PEEK[3.MIME])",
    b"FETCH 2 (BINARY.PEEK[0])",
    b"FETCH 2 (BODY.PEEK[3.0])",
    b"FETCH 2 (BINARY.PEEK[2]<4294967295.1>)",
    b"FETCH 2 (BODY.PEEK[2.TEXT])",
    b"FETCH 2 (BODY.PEEK[3.1.1.1.1.TEXT])",
    b'LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN SPECIAL-USE)',
    b'LIST (RECURSIVEMATCH) "" "*"',
    b'LIST "" ("" "*")',
    b'LIST "" (INBOX "")',
    b'LIST "" "&"',
    b'LIST "&" "*"',
    b'LIST (SPECIAL-USE) "" * RETURN (STATUS (MESSAGES UIDNEXT))',
    b'LIST "" % RETURN (STATUS (MESSAGES))',
    b'LSUB "&Jjo" "*"',
    b'LIST () "" "" RETURN ()',
    b'LIST (SUBSCRIBED) "" "*" RETURN (SUBSCRIBED SUBSCRIBED)',
    b'SUBSCRIBE ""',
    b'SUBSCRIBE "&"',
    b'SUBSCRIBE "a//b"',
    b'CANCELUPDATE "nope"',
    b"CANCELUPDATE",
    b'APPEND INBOX (\\Seen) "32-Dec-2026 00:00:00 +0000" {1+}\r\nx',
    b'APPEND INBOX CATENATE (URL "/INBOX/;UID=1/;SECTION=1.2.3.4.5.6.7.8.9.10.11")',
    b'APPEND INBOX CATENATE (URL "/INBOX/;UID=2/;SECTION=3.1.HEADER.FIELDS (Subject)")',
    b'APPEND INBOX CATENATE (URL "/INBOX/;UID=2/;SECTION=3.1.HEADER.FIELDS%20(Subject)")',
    b'APPEND INBOX CATENATE (URL "/INBOX/;UID=99999999999/;SECTION=1")',
    b'APPEND INBOX CATENATE (URL "/INBOX/;UID=0")',
    b"APPEND INBOX CATENATE (TEXT ~{3+}\r\na\x00b)",
    b"APPEND INBOX ~{3+}\r\na\x00b",
    b"APPEND INBOX {1+}\r\nx {1+}\r\ny",
    b"APPEND INBOX {1+}\r\nx ()",
    b'APPEND INBOX CATENATE (TEXT {1+}\r\nx) CATENATE (URL "/INBOX/;UID=1")',
    b"ESEARCH ALL",
    b"UID EXPUNGE 4294967295",
    b"NOOP",
]


async def test_odd_commands_never_crash_nor_leak_python(mailbox: Running, imap: RawIMAP) -> None:
    """RFC 3501 §7.1: every command ends with OK, NO or BAD; never NO [SERVERBUG], a
    dropped connection, or Python text (repr, traceback) in a response."""
    assert (await imap.command("ENABLE QRESYNC")).ok
    assert (await imap.command("SELECT INBOX")).ok
    failures = []
    for command in ODD_COMMANDS:
        reply = await asyncio.wait_for(imap.command(command), 20)
        text = b"".join(reply.lines) + reply.tagged
        if (reply.status not in ("OK", "NO", "BAD") or b"SERVERBUG" in text
                or re.search(rb"b'|b\"|Traceback|Error\(|<[a-z_.]+ object", text)):  # fmt: skip
            failures.append((command, reply.tagged, reply.lines[:3]))
    assert (await imap.command("NOOP")).ok
    assert failures == [], failures


async def test_notify_event_lists_that_rfc5465_forbids_are_bad(imap: RawIMAP) -> None:
    """RFC 5465: fetch-atts only for SELECTED, one SELECTED/SELECTED-DELAYED filter: each
    of these is BAD."""
    wrong = {}
    # (a lone MessageNew, MessageExpunge or FlagChange is accepted, as Dovecot does:
    # imaptest's notify group sends them alone and expects OK)
    for command in ("NOTIFY SET (PERSONAL (MessageNew (UID) MessageExpunge))",
                    "NOTIFY SET (SELECTED (MessageNew MessageExpunge)) "
                    "(SELECTED-DELAYED (MessageNew MessageExpunge))"):  # fmt: skip
        reply = await imap.command(command)
        if reply.status != "BAD":
            wrong[command] = reply.tagged
    assert wrong == {}, wrong


async def test_binary_of_a_part_that_does_not_exist_is_not_unknown_cte(
    mailbox: Running, imap: RawIMAP
) -> None:
    """RFC 3516 §4.3: UNKNOWN-CTE says the part's encoding cannot be undone; a part
    number that names no part (SIMPLE has no part 1.2.3; MULTIPART no part 9) is not that
    (NIL, or NO without UNKNOWN-CTE, as BODY[…] answers NIL)."""
    assert (await imap.command("SELECT INBOX")).ok
    wrong = {}
    for seq, item in ((1, "BINARY.PEEK[1.2.3]"), (2, "BINARY.PEEK[9]"), (2, "BINARY.SIZE[9]"),
                      (1, "BINARY.SIZE[2]")):  # fmt: skip
        reply = await imap.command(f"FETCH {seq} ({item})")
        if b"UNKNOWN-CTE" in reply.tagged:
            wrong[item] = reply.tagged
    assert wrong == {}, wrong


# --- mailbox names past the limit through RENAME ---------------------------------------------


async def test_rename_never_makes_a_child_name_past_the_name_limit(imap: RawIMAP) -> None:
    """A mailbox name is at most 400 characters (`folders._check_name`), and the
    subscription and mailbox columns hold 500: RENAME of a parent that would make a child's
    name longer is refused (NO), not stored past the limit (PostgreSQL: an error)."""
    child = "a/" + "b" * 398
    assert (await imap.command(f'CREATE "{child}"')).ok
    assert (await imap.command(f'SUBSCRIBE "{child}"')).ok
    reply = await imap.command(f'RENAME a "{"c" * 399}"')
    names = [x.rsplit(b" ", 1)[1].strip(b'"\r\n') for x in
             (await imap.command('LIST "" *')).lines]  # fmt: skip
    assert max(map(len, names)) <= 400, (reply.tagged, max(map(len, names)))


# --- two processes on one database (issue 13: seen at the next command) ----------------------


async def test_two_processes_notify_and_moves_into_the_selected_mailbox(instance) -> None:  # type: ignore[no-untyped-def]
    """Issue 13: a MOVE/COPY committed by another process into the selected mailbox is told
    at the next command; a NOTIFY session hears another process's delivery (STATUS)."""
    from .harness import message, running

    async with running(instance, workers=2) as one:
        await one.add_pro(USER)
        async with running(instance, workers=2) as two:
            writer = await RawIMAP.connect(one.ports["imaps"], one.client_tls())
            reader = await RawIMAP.connect(two.ports["imaps"], two.client_tls())
            for client in (writer, reader):
                await client.login(USER, PASSWORD)
            assert (await writer.command("CREATE Dossier")).ok
            assert (await reader.command("SELECT INBOX")).ok
            assert (
                await reader.command(
                    "NOTIFY SET (SELECTED (MessageNew MessageExpunge)) "
                    "(MAILBOXES Dossier (MessageNew MessageExpunge))"
                )
            ).ok
            raw = message("jean.dupont@pro.mssante.test", USER, message_id="<x1@pro.mssante.test>")
            assert (await writer.command(b"APPEND Dossier {%d+}\r\n" % len(raw) + raw)).ok
            await _unasked(reader, rb"\* STATUS Dossier \(MESSAGES 1 ", 3.0)
            assert (await writer.command("SELECT Dossier")).ok
            assert (await writer.command("MOVE 1 INBOX")).ok
            told = await _unasked(reader, rb"\* \d+ EXISTS", 3.0)
            assert told == b"* 1 EXISTS\r\n"
            assert (await writer.command("SELECT INBOX")).ok
            assert (await writer.command("STORE 1 +FLAGS (\\Deleted)")).ok
            assert (await writer.command("EXPUNGE")).ok
            assert await _unasked(reader, rb"\* \d+ EXPUNGE", 3.0) == b"* 1 EXPUNGE\r\n"
            assert (await reader.command("NOOP")).ok
            await writer.close()
            await reader.close()


# --- SORT and ESORT order (RFC 5256, RFC 5267 §3) ---------------------------------------------


async def test_esort_min_max_all_follow_the_sort_order(imap: RawIMAP) -> None:
    """RFC 5267 §3 (ESORT): MIN is the first message in the sort order, MAX the last, ALL
    lists them in sort order (REVERSE DATE of SIMPLE 22 Nov, MULTIPART 23 Nov: 2 then 1)."""
    assert (await imap.command("SELECT INBOX")).ok
    assert (await imap.command("SORT (REVERSE DATE) UTF-8 ALL")).lines == [b"* SORT 2 1\r\n"]
    reply = await imap.command("SORT RETURN (MIN MAX ALL COUNT) (REVERSE DATE) UTF-8 ALL", tag="e1")
    assert reply.lines == [b'* ESEARCH (TAG "e1") MIN 2 MAX 1 ALL 2,1 COUNT 2\r\n'], reply.lines
    reply = await imap.command("UID SORT RETURN (PARTIAL 1:1) (REVERSE DATE) UTF-8 ALL", tag="e2")
    assert reply.lines == [b'* ESEARCH (TAG "e2") UID PARTIAL (1:1 2)\r\n'], reply.lines


async def test_sort_date_without_date_header_uses_internal_date_and_zones(
    mailbox: Running, imap: RawIMAP
) -> None:
    """RFC 5256 §3 SORT DATE: the Date header in UTC (zones applied); a message without a
    usable Date sorts by its internal date."""
    early_zone = SIMPLE.replace(b"Date: Sun, 22 Nov 2026 10:00:00 +0100",
                                b"Date: Sun, 22 Nov 2026 12:00:00 +0500").replace(
        b"<simple@", b"<zone@")  # fmt: skip  # 07:00 UTC: before SIMPLE's 09:00 UTC
    no_date = SIMPLE.replace(b"Date: Sun, 22 Nov 2026 10:00:00 +0100\r\n", b"").replace(
        b"<simple@", b"<nodate@"
    )  # internal date: now, after all
    bad_date = SIMPLE.replace(
        b"Date: Sun, 22 Nov 2026 10:00:00 +0100", b"Date: n'importe quoi"
    ).replace(b"<simple@", b"<baddate@")
    for raw in (early_zone, no_date, bad_date):
        await deliver(mailbox, raw)
    assert (await imap.command("SELECT INBOX")).ok
    reply = await imap.command("SORT (DATE) UTF-8 ALL")
    assert reply.lines == [b"* SORT 3 1 2 4 5\r\n"], reply.lines


# --- MULTIAPPEND (RFC 3502) ------------------------------------------------------------------


async def test_multiappend_all_or_nothing_variants(imap: RawIMAP) -> None:
    """RFC 3502 §6.3.11: if any message of a MULTIAPPEND cannot be appended, none is (an
    empty one, a bad URL, a bad date, too many); no SERVERBUG."""

    async def count() -> int:
        reply = await imap.command("STATUS INBOX (MESSAGES)")
        return int(re.search(rb"MESSAGES (\d+)", reply.lines[0])[1])

    before = await count()
    for tail in (b" {1+}\r\nx {0+}\r\n",
                 b' {1+}\r\nx CATENATE (URL "/INBOX/;UID=77")',
                 b' {1+}\r\nx "31-Feb-2026 00:00:00 +0000" {1+}\r\ny',
                 b" (\\Seen) {1+}\r\nx (\\Bogus \\\\) {1+}\r\ny",
                 b" {1+}\r\nx" * 101):  # fmt: skip
        reply = await imap.command(b"APPEND INBOX" + tail)
        assert reply.status in ("NO", "BAD") and b"SERVERBUG" not in reply.tagged, (
            tail[:60],
            reply.tagged,
        )
        assert await count() == before, tail[:60]
    reply = await imap.command(b"APPEND INBOX" + b" {1+}\r\nx" * 100)
    assert reply.ok and await count() == before + 100


async def test_multiappend_to_the_examined_mailbox_shows_recent(
    mailbox: Running, imap: RawIMAP
) -> None:
    """RFC 3501 §6.3.2/§7.3.2: messages appended by another session to the mailbox a session
    EXAMINEs are \\Recent there (EXAMINE does not claim them), told as EXISTS then RECENT."""
    assert (await imap.command("EXAMINE INBOX")).ok
    other = await connect(mailbox)
    await other.login(USER, PASSWORD)
    assert (await other.command(b"APPEND INBOX " + _lit(_message(1)) + b" " + _lit(_message(2)))).ok
    lines = (await imap.command("NOOP")).lines
    # the fixture's two deliveries were never claimed either: 4 \\Recent in all
    assert lines == [b"* 4 EXISTS\r\n", b"* 4 RECENT\r\n"], lines
    reply = await imap.command("SEARCH RECENT")
    assert reply.lines == [b"* SEARCH 1 2 3 4\r\n"], reply.lines
    await other.close()


async def test_notify_subscribed_set_follows_subscribe_and_unsubscribe(
    mailbox: Running, imap: RawIMAP
) -> None:
    """RFC 5465 §6 (subscribed): the set is the subscription list as it changes;
    after this session's SUBSCRIBE Dossier, a delivery to Dossier is told; after
    UNSUBSCRIBE, not."""
    assert (await imap.command("CREATE Dossier")).ok
    assert (await imap.command("UNSUBSCRIBE Dossier")).ok
    assert (await imap.command("NOTIFY SET (SUBSCRIBED (MessageNew MessageExpunge))")).ok
    assert (await imap.command("SUBSCRIBE Dossier")).ok
    await deliver(mailbox, _message(1), "Dossier")
    await _unasked(imap, rb"\* STATUS Dossier \(MESSAGES 1 ", 3.0)


@pytest.mark.xfail(
    strict=True,
    reason="not done: NOTIFY's set is resolved at NOTIFY and after this session's own "
    "CREATE/DELETE/RENAME/SUBSCRIBE; a mailbox another session creates is not watched "
    "(no mailbox-list change event in the feed yet). Said in the README.",
)
async def test_notify_personal_set_includes_a_mailbox_another_session_creates(
    mailbox: Running, imap: RawIMAP
) -> None:
    """(documented as a limit in notify.py) RFC 5465 §6 (personal): all the user's
    mailboxes, those created after NOTIFY by another session included."""
    assert (await imap.command("NOTIFY SET (PERSONAL (MessageNew MessageExpunge))")).ok
    other = await connect(mailbox)
    await other.login(USER, PASSWORD)
    assert (await other.command("CREATE Nouveau")).ok
    await deliver(mailbox, _message(1), "Nouveau")
    await _unasked(imap, rb"\* STATUS Nouveau \(MESSAGES 1 ", 3.0)
    await other.close()


async def test_notify_selected_without_flagchange_tells_no_flags_unasked(
    mailbox: Running, imap: RawIMAP
) -> None:
    """RFC 5465 §5.3: FlagChange not asked for the selected mailbox: another
    session's flag change is not told between commands (it may be at the next command)."""
    assert (await imap.command("SELECT INBOX")).ok
    assert (await imap.command("NOTIFY SET (SELECTED (MessageNew MessageExpunge))")).ok
    other = await _other(mailbox)
    assert (await other.command("STORE 1 +FLAGS (\\Flagged)")).ok
    heard = await _heard(imap, 1.0)
    assert not [line for line in heard if b"FETCH" in line], heard
    await other.close()


async def test_very_deeply_nested_message_rfc822_past_the_recursion_limit(
    mailbox: Running, imap: RawIMAP
) -> None:
    """Past Python's recursion limit (2,500 nested message/rfc822): APPEND and delivery store
    it or refuse it (NO), FETCH BODYSTRUCTURE answers; never SERVERBUG nor a lost session."""
    raw = _nested(2500)
    reply = await asyncio.wait_for(imap.command(b"APPEND INBOX " + _lit(raw)), 30)
    assert b"SERVERBUG" not in reply.tagged and reply.status in ("OK", "NO"), reply.tagged
    await deliver(mailbox, raw.replace(b"Subject: fond", b"Subject: fond2"))
    assert (await imap.command("SELECT INBOX")).ok
    for item in ("BODYSTRUCTURE", "BODY.PEEK[" + ".".join(["1"] * 2400) + "]", "ENVELOPE",
                 "BINARY.SIZE[" + ".".join(["1"] * 2400) + "]"):  # fmt: skip
        got = await asyncio.wait_for(imap.command(f"FETCH 1:* ({item})"), 30)
        assert b"SERVERBUG" not in got.tagged and got.status in ("OK", "NO", "BAD"), (
            item[:20],
            got.tagged,
        )
    reply = await imap.command("SEARCH TEXT fond")
    assert reply.ok and b"SERVERBUG" not in reply.tagged
    assert (await imap.command("NOOP")).ok


async def test_search_is_caseless_beyond_ascii(mailbox: Running, imap: RawIMAP) -> None:
    """RFC 3501 §6.4.4 (strings match case-insensitively) with RFC 5051-like folding: `ÉLODIE`
    finds `Élodie`, `RÉSULTATS` finds `Résultats`, `STRASSE` finds `Straße`."""
    raw = (
        b"From: =?utf-8?q?Stra=C3=9Fe?= <rue@x.test>\r\nTo: a@x.test\r\n"
        b"Subject: =?utf-8?q?Stra=C3=9Fe_=C3=89TROITE?=\r\n"
        b"Date: Sun, 22 Nov 2026 10:00:00 +0100\r\n\r\nx\r\n"
    )
    await deliver(mailbox, raw)
    assert (await imap.command("SELECT INBOX")).ok
    wrong = {}
    for key, want in (('FROM "élodie"', b"* SEARCH 2\r\n"), ('FROM "ÉLODIE"', b"* SEARCH 2\r\n"),
                      ('SUBJECT "RÉSULTATS"', b"* SEARCH 2\r\n"),
                      ('SUBJECT "résultats"', b"* SEARCH 2\r\n"),
                      ('SUBJECT "étroite"', b"* SEARCH 3\r\n"),
                      ('SUBJECT "STRASSE"', b"* SEARCH 3\r\n"),
                      ('FROM "straße"', b"* SEARCH 3\r\n")):  # fmt: skip
        reply = await imap.command(f"SEARCH CHARSET UTF-8 {key}".encode())
        if reply.lines != [want]:
            wrong[key] = reply.lines
    assert wrong == {}, wrong


async def test_qresync_move_tells_vanished_and_copyuid_first(imap: RawIMAP) -> None:
    """RFC 6851 §4.3-4.4 with RFC 7162 §3.2.10: with QRESYNC a MOVE's expunges are VANISHED
    by UID (never EXPUNGE), after the untagged OK [COPYUID …]; numbers then follow."""
    assert (await imap.command("ENABLE QRESYNC")).ok
    assert (await imap.command("CREATE Dossier")).ok
    assert (await imap.command("SELECT INBOX")).ok
    reply = await imap.command("MOVE 1 Dossier")
    assert reply.ok
    assert reply.lines[0].startswith(b"* OK [COPYUID "), reply.lines
    assert b"* VANISHED 1\r\n" in reply.lines and not [x for x in reply.lines if b"EXPUNGE" in x]
    reply = await imap.command("UID MOVE 2 Dossier")
    assert b"* VANISHED 2\r\n" in reply.lines, reply.lines
    assert (await imap.command("FETCH 1:* (UID)")).status == "BAD"  # the mailbox is empty


async def test_list_pattern_of_many_wildcards_is_not_exponential(
    mailbox: Running, imap: RawIMAP
) -> None:
    """RFC 3501 §6.3.8 wildcards: matching a pattern must take time linear-ish in
    pattern × name (one LIST with 7 `*` against a 60-character name must not freeze the
    worker's event loop for seconds: `listing.matcher` builds a backtracking regex)."""
    assert (await imap.command("CREATE " + "a" * 60)).ok
    other = await _other(mailbox)
    start = time.monotonic()
    await imap.send(b'l1 LIST "" "' + b"*a" * 7 + b'b"\r\n')
    await asyncio.sleep(0.05)
    assert (await asyncio.wait_for(other.command("NOOP"), 120)).ok
    other_waited = time.monotonic() - start
    assert (await asyncio.wait_for(imap.until("l1"), 120)).ok
    took = time.monotonic() - start
    await other.close()
    assert took < 5.0 and other_waited < 5.0, (took, other_waited)


async def test_thread_references_subject_merging_and_dummies(
    mailbox: Running, imap: RawIMAP
) -> None:
    """RFC 5256 §4 REFERENCES: a dummy root with one child is promoted; a reply whose
    base subject matches a non-reply root joins it as a child; threads and siblings by date."""

    def mail(n: int, subject: str, refs: str = "") -> bytes:
        head = (
            f"From: a@x.test\r\nSubject: {subject}\r\n"
            f"Date: Mon, 0{n} Nov 2026 10:00:00 +0000\r\nMessage-ID: <t{n}@x>\r\n"
        )
        return (head + (f"References: {refs}\r\n" if refs else "") + "\r\nx\r\n").encode()

    assert (await imap.command("SELECT INBOX")).ok
    assert (await imap.command("STORE 1:2 +FLAGS (\\Deleted)")).ok
    assert (await imap.command("EXPUNGE")).ok
    for raw in (mail(1, "A"), mail(2, "Re: A", "<t1@x>"), mail(3, "Re: A", "<t1@x> <t2@x>"),
                mail(4, "B"), mail(5, "Re: A", "<t9@x>"), mail(6, "Re: B")):  # fmt: skip
        await deliver(mailbox, raw)
    assert (await imap.command("NOOP")).ok
    reply = await imap.command("THREAD REFERENCES UTF-8 ALL")
    assert reply.lines == [b"* THREAD (1 (2 3)(5))(4 6)\r\n"], reply.lines
    reply = await imap.command("THREAD ORDEREDSUBJECT UTF-8 ALL")
    assert reply.lines == [b"* THREAD (1 (2)(3)(5))(4 6)\r\n"], reply.lines
