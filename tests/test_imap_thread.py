"""THREAD (RFC 5256): base subjects (§2.1), ORDEREDSUBJECT and REFERENCES (§4), as pure
functions over made-up messages (any graph of references: every message once, never a
loop), then THREAD and UID THREAD over real IMAPS."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mss.imap.subjects import base_subject
from mss.imap.threads import Mail, ordered_subject, references, render
from mss.testing.imapclient import RawIMAP

from .harness import Running
from .test_imap_commands import deliver, imap, mailbox

__all__ = ["imap", "mailbox"]  # fixtures shared with test_imap_commands.py


@pytest.mark.parametrize(
    ("subject", "base", "reply"),
    [
        ("Hello", "Hello", False),
        ("Re: Hello", "Hello", True),
        ("RE: [list] re: FWD: Hello (fwd)", "Hello", True),
        ("[fwd: Re: Hello]", "Hello", True),
        ("[list] Hello", "Hello", False),
        ("[only]", "[only]", False),  # a blob is kept when nothing would be left
        ("Re:   spaced\t out  ", "spaced out", True),
        ("=?utf-8?q?Re=3A_R=C3=A9sultats?=", "Résultats", True),
        ("Fw: Re: [x] Re: y", "y", True),
        ("", "", False),
    ],
)
def test_base_subject_rfc5256(subject: str, base: str, reply: bool) -> None:
    assert base_subject(subject) == (base, reply)


def _mail(n: int, sent: int, subject: str = "s", mid: str | None = None,
          refs: tuple[str, ...] = ()) -> Mail:  # fmt: skip
    base, reply = base_subject(subject)
    return Mail(n, n, sent, base.casefold(), reply, mid, refs)


def test_orderedsubject_groups_by_base_subject_in_date_order() -> None:
    mails = [_mail(1, 30, "b"), _mail(2, 10, "a"), _mail(3, 20, "Re: a"), _mail(4, 25, "RE: A"),
             _mail(5, 40, "Re: b")]  # fmt: skip
    assert render(ordered_subject(mails)) == "(2 (3)(4))(1 5)"


def test_references_follows_references_and_breaks_loops() -> None:
    mails = [_mail(1, 3, "", "<a@x>"), _mail(2, 1, "", "<b@x>", ("<a@x>", "<c@x>")),
             _mail(3, 2, "", "<c@x>", ("<b@x>",))]  # fmt: skip
    assert render(references(mails)) == "(3 2)(1)"  # imaptest's thread group


def test_references_dummies_siblings_and_subjects() -> None:
    mails = [
        _mail(1, 1, "Sujet", "<1@x>"),
        _mail(2, 2, "Re: Sujet", "<2@x>", ("<1@x>",)),
        _mail(3, 3, "Re: Sujet", "<3@x>", ("<1@x>",)),  # a second child of 1
        _mail(4, 4, "Autre", "<4@x>", ("<absent@x>",)),  # parent not here: a dummy
        _mail(5, 5, "Re: Autre", "<5@x>", ("<absent@x>",)),  # its sibling
        _mail(6, 6, "Re: Sujet", None),  # no id, no references: gathered by subject
        _mail(7, 7, "Seul", "<1@x>"),  # a duplicate Message-ID: a message of its own
    ]
    assert render(references(mails)) == "(1 (2)(3)(6))((4)(5))(7)"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 8), st.lists(st.integers(0, 8), max_size=4),
                          st.sampled_from(["a", "Re: a", "b", "", "Fwd: b"]),
                          st.integers(0, 5)), max_size=12))  # fmt: skip
def test_any_references_thread_every_message_once(
    spec: list[tuple[int, list[int], str, int]],
) -> None:
    mails = [_mail(n + 1, sent, subject, f"<{mid}@x>", tuple(f"<{r}@x>" for r in refs))
             for n, (mid, refs, subject, sent) in enumerate(spec)]  # fmt: skip
    for algorithm in (references, ordered_subject):
        answer = render(algorithm(mails))
        numbers = sorted(int(n) for n in re.findall(r"\d+", answer))
        assert numbers == list(range(1, len(mails) + 1)), answer
        assert answer.count("(") == answer.count(")") and "()" not in answer


# --- over IMAP ------------------------------------------------------------------------------


def _message(mid: str, subject: str, date: str, refs: str = "") -> bytes:
    extra = f"References: {refs}\r\nIn-Reply-To: {refs.split()[-1]}\r\n" if refs else ""
    return (f"From: a@pro.mssante.test\r\nMessage-ID: {mid}\r\nSubject: {subject}\r\n"
            f"Date: {date}\r\n{extra}\r\nCorps.\r\n").encode()  # fmt: skip


async def test_thread_and_uid_thread_over_imap(mailbox: Running, imap: RawIMAP) -> None:
    # the fixture's two messages are 1 and 2; three more:
    await deliver(mailbox, _message("<t1@x>", "Suivi", "Mon, 23 Nov 2026 08:00:00 +0100"))
    await deliver(mailbox, _message("<t2@x>", "Re: Suivi", "Mon, 23 Nov 2026 09:00:00 +0100",
                                    "<t1@x>"))  # fmt: skip
    await deliver(mailbox, _message("<t3@x>", "Re: Suivi", "Mon, 23 Nov 2026 10:00:00 +0100",
                                    "<t1@x> <t2@x>"))  # fmt: skip
    assert (await imap.command("SELECT INBOX")).ok
    caps = (await imap.command("CAPABILITY")).lines[0]
    assert b"THREAD=REFERENCES" in caps and b"THREAD=ORDEREDSUBJECT" in caps
    told = (await imap.command("THREAD REFERENCES UTF-8 ALL")).lines
    assert told == [b"* THREAD (1)(3 4 5)(2)\r\n"]  # roots by sent date: 2 is of 09:30
    told = (await imap.command("UID THREAD ORDEREDSUBJECT US-ASCII SUBJECT suivi")).lines
    assert told == [b"* THREAD (3 (4)(5))\r\n"]
    assert (await imap.command("THREAD REFERENCES UTF-8 SUBJECT nulle-part")).lines == [
        b"* THREAD\r\n"
    ]
    assert (await imap.command("THREAD BOGUS UTF-8 ALL")).status == "BAD"
    reply = await imap.command("THREAD REFERENCES KOI8-R ALL")
    assert reply.response.startswith(b"NO [BADCHARSET")
    assert (await imap.command("THREAD REFERENCES UTF-8")).status == "BAD"
