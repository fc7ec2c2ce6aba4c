"""The NOTIFY command's grammar (RFC 5465 §8): `NOTIFY NONE`, or `NOTIFY SET [STATUS]`
and event groups, each a filter of mailboxes and the events wanted of them.

    notify-set   = "SET" [SP "STATUS"] SP event-group *(SP event-group)
    event-group  = "(" filter-mailboxes SP events ")"
    filter       = "selected" / "selected-delayed" / "inboxes" / "personal" /
                   "subscribed" / ("subtree" SP one-or-more-mailbox) /
                   ("mailboxes" SP one-or-more-mailbox)
    events       = ("(" event *(SP event) ")") / "NONE"
    message-event = ("MessageNew" [SP "(" fetch-att *(SP fetch-att) ")"]) /
                   "MessageExpunge" / "FlagChange" / "AnnotationChange"

Event names are kept upper case as written; which ones mss serves is the session's
business (`imap.notify`: NO [BADEVENT] for the others).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mss.imap.parsing.fetch import FetchAtt, fetch_atts
from mss.imap.parsing.tokens import ParseError, Reader

WITH_MAILBOXES = frozenset({"SUBTREE", "MAILBOXES"})
FILTERS = frozenset({"SELECTED", "SELECTED-DELAYED", "INBOXES", "PERSONAL", "SUBSCRIBED"})
MAX_GROUPS = 50  # a client needs a handful; a bound against a command made of thousands


@dataclass(frozen=True, slots=True)
class EventGroup:
    filter: str  # upper case: SELECTED, PERSONAL, MAILBOXES...
    mailboxes: tuple[str, ...]  # as sent (modified UTF-7) for SUBTREE and MAILBOXES
    events: tuple[str, ...]  # upper case; () for NONE
    fetch_atts: tuple[FetchAtt, ...] = ()  # what MessageNew asks to be sent


def g_notify(r: Reader) -> dict[str, Any]:
    r.space()
    if r.maybe_word(b"NONE"):
        return {"groups": None, "status": False}
    if not r.maybe_word(b"SET"):
        raise ParseError("NOTIFY SET or NOTIFY NONE")
    status = r.maybe_word(b" STATUS")
    groups: list[EventGroup] = []
    while r.maybe(b" "):
        groups.append(_group(r))
        if len(groups) > MAX_GROUPS:
            raise ParseError("too many NOTIFY event groups")
    if not groups:
        raise ParseError("NOTIFY SET needs an event group")
    _check(groups)
    return {"groups": groups, "status": status}


def _check(groups: list[EventGroup]) -> None:
    """Fetch attributes only for the selected mailbox; one SELECTED or SELECTED-DELAYED
    group. (RFC 5465 asks clients to give MessageNew with MessageExpunge, FlagChange with
    both; as Dovecot, whose imaptest sends them alone, a lone one is accepted.)"""
    selected = [g for g in groups if g.filter in ("SELECTED", "SELECTED-DELAYED")]
    if len(selected) > 1:
        raise ParseError("one SELECTED or SELECTED-DELAYED event group at most")
    for group in groups:
        if group.fetch_atts and group not in selected:
            raise ParseError("fetch attributes are for the selected mailbox only")


def _group(r: Reader) -> EventGroup:
    r.expect(b"(")
    word = r.atom().upper()
    if word not in FILTERS | WITH_MAILBOXES:
        raise ParseError(f"unknown NOTIFY filter {word}")
    mailboxes: tuple[str, ...] = ()
    if word in WITH_MAILBOXES:
        r.space()
        mailboxes = _mailboxes(r)
    r.space()
    events, atts = _events(r)
    r.expect(b")")
    return EventGroup(word, mailboxes, events, atts)


def _mailboxes(r: Reader) -> tuple[str, ...]:
    """one-or-more-mailbox = mailbox / "(" mailbox *(SP mailbox) ")"."""
    if not r.maybe(b"("):
        return (_mailbox(r),)
    names = [_mailbox(r)]
    while not r.maybe(b")"):
        r.space()
        names.append(_mailbox(r))
    return tuple(names)


def _mailbox(r: Reader) -> str:
    return r.astring().decode("utf-8", "replace")


def _events(r: Reader) -> tuple[tuple[str, ...], tuple[FetchAtt, ...]]:
    if r.maybe_word(b"NONE"):
        return (), ()
    r.expect(b"(")
    events: list[str] = []
    atts: list[FetchAtt] = []
    while not r.maybe(b")"):
        if events:
            r.space()
        event = r.atom().upper()
        events.append(event)
        if event == "MESSAGENEW" and r.peek_is(b" ("):
            r.space()
            atts = fetch_atts(r)
    if not events:
        raise ParseError("an empty list of NOTIFY events")
    return tuple(events), tuple(atts)
