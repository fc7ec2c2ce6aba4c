"""NOTIFY (RFC 5465): a session told of changes without asking, between commands.

`NOTIFY SET [STATUS] (filter events)…` names mailboxes (SELECTED, INBOXES, PERSONAL,
SUBSCRIBED, SUBTREE …, MAILBOXES …) and the events wanted of them; mss serves
MessageNew, MessageExpunge and FlagChange (others: NO [BADEVENT]). For a mailbox that
is not selected a change is told as an unsolicited `STATUS` of the items its events
call for (RFC 5465 §5.1–5.3: MESSAGES; MESSAGES UIDNEXT UIDVALIDITY; UIDVALIDITY
HIGHESTMODSEQ); with STATUS, their values are told at once. For the selected mailbox
(SELECTED with events) its EXISTS, EXPUNGE and FETCH are told as soon as they happen,
as during IDLE.

A session's commands and these notifications take turns (`SessionBase.turn`): nothing
is told in the middle of a command's answer; IDLE leaves the turn while it waits.
The set of mailboxes is resolved when NOTIFY is given (and again after this session's
CREATE, DELETE or RENAME); a mailbox another session creates later is not in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from mss.imap.errors import ImapError
from mss.imap.mailboxes import MailboxCommands
from mss.imap.parsing.commands import Command
from mss.imap.parsing.fetch import FetchAtt
from mss.imap.parsing.notify import EventGroup
from mss.imap.parsing.utf7 import MailboxNameError, decode
from mss.imap.selected import Selected
from mss.store.folders import DELIMITER, MailboxInfo
from mss.store.mailboxes import INBOX

log = logging.getLogger(__name__)

SERVED = {"MESSAGENEW": "MessageNew", "MESSAGEEXPUNGE": "MessageExpunge",
          "FLAGCHANGE": "FlagChange"}  # fmt: skip
BADEVENT = ImapError(
    "Événement non pris en charge (unsupported NOTIFY event)",
    code="BADEVENT (MessageNew MessageExpunge FlagChange)",
)
# What a STATUS notification says, by event (RFC 5465 §5.1–5.3), in this order
ITEMS = {"MESSAGEEXPUNGE": ("MESSAGES",), "MESSAGENEW": ("MESSAGES", "UIDNEXT", "UIDVALIDITY"),
         "FLAGCHANGE": ("UIDVALIDITY", "HIGHESTMODSEQ")}  # fmt: skip
ORDER = ("MESSAGES", "UIDNEXT", "UIDVALIDITY", "HIGHESTMODSEQ")


class _Box:
    """The bus's watcher of one mailbox of the set: marks it changed, wakes the loop."""

    __slots__ = ("box_id", "notifier")

    def __init__(self, box_id: int, notifier: Notifier) -> None:
        self.box_id, self.notifier = box_id, notifier

    def poke(self) -> None:
        self.notifier.changed.add(self.box_id)
        self.notifier.wake.set()


@dataclass
class Notifier:
    """One session's NOTIFY set, resolved to mailboxes, and its delivery loop."""

    groups: list[EventGroup]
    selected_events: tuple[str, ...] = ()
    delayed: bool = False  # SELECTED-DELAYED: expunges wait for a command that allows them
    fetch_atts: tuple[FetchAtt, ...] = ()  # sent for each new message of the selected one
    items: dict[int, tuple[str, ...]] = field(default_factory=dict)  # mailbox -> items
    names: dict[int, str] = field(default_factory=dict)
    changed: set[int] = field(default_factory=set)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    watchers: list[_Box] = field(default_factory=list)
    told: dict[int, bytes] = field(default_factory=dict)  # the last STATUS line of each
    task: asyncio.Task[None] | None = None


def _items(events: tuple[str, ...]) -> tuple[str, ...]:
    wanted = {item for event in events for item in ITEMS.get(event, ())}
    return tuple(item for item in ORDER if item in wanted)


def _named(raw: tuple[str, ...]) -> set[str]:
    names = set()
    for name in raw:
        with contextlib.suppress(MailboxNameError):
            names.add(decode(name))
    return names


def _in_group(group: EventGroup, box: MailboxInfo, subscribed: set[str], roots: set[str]) -> bool:
    """Whether the group takes `box`; `roots` are the names it lists (`_named`, read once
    per group: a command may list tens of thousands)."""
    kind, name = group.filter, box.name
    if kind == "INBOXES":
        return name == INBOX  # mail is delivered to INBOX only
    if kind == "PERSONAL":
        return True
    if kind == "SUBSCRIBED":
        return name in subscribed
    if kind == "SUBTREE":
        return any(name == root or name.startswith(root + DELIMITER) for root in roots)
    return kind == "MAILBOXES" and name in roots


class NotifyCommands(MailboxCommands):
    notifier: Notifier | None = None

    async def do_NOTIFY(self, command: Command) -> None:
        groups: list[EventGroup] | None = command.args["groups"]
        if groups is not None and any(e not in SERVED for g in groups for e in g.events):
            raise BADEVENT
        self.stop_notify()
        if groups is None:
            return
        notifier = Notifier(groups)
        await self._notify_set(notifier)
        self.notifier = notifier
        if command.args["status"]:
            for box_id in notifier.items:
                await self._tell_status(notifier, box_id)
        notifier.task = asyncio.get_running_loop().create_task(self._deliver_loop(notifier))

    async def _notify_set(self, notifier: Notifier) -> None:
        """Which mailboxes the set names, with the items of their first group."""
        for watcher in notifier.watchers:
            self.bus.unwatch(watcher.box_id, watcher)
        notifier.items.clear()
        notifier.watchers.clear()
        account = self._account()
        boxes = await self.store.mailboxes(account)
        subscribed = await self.store.subscriptions(account)
        for group in notifier.groups:
            if group.filter in ("SELECTED", "SELECTED-DELAYED"):
                notifier.selected_events = group.events
                notifier.delayed = group.filter == "SELECTED-DELAYED"
                notifier.fetch_atts = group.fetch_atts
                continue
            roots = _named(group.mailboxes)
            for box in boxes:
                if box.id not in notifier.names and _in_group(group, box, subscribed, roots):
                    notifier.names[box.id] = box.name
                    notifier.items[box.id] = _items(group.events)
        for box_id, items in list(notifier.items.items()):
            if not items:  # NONE: named so that later groups do not take it
                del notifier.items[box_id]
                continue
            watcher = _Box(box_id, notifier)
            notifier.watchers.append(watcher)
            self.bus.watch(box_id, watcher)

    async def renotify(self) -> None:
        """This session created, deleted or renamed a mailbox: resolve the set again."""
        if self.notifier is not None:
            self.notifier.names.clear()
            await self._notify_set(self.notifier)

    def stop_notify(self) -> None:
        notifier, self.notifier = self.notifier, None
        if notifier is None:
            return
        if notifier.task is not None:
            notifier.task.cancel()
        for watcher in notifier.watchers:
            self.bus.unwatch(watcher.box_id, watcher)

    def close(self) -> None:
        self.stop_notify()
        super().close()

    def poke(self) -> None:
        super().poke()
        if self.notifier is not None and self.notifier.selected_events:
            self.notifier.wake.set()  # the selected mailbox's changes, told at once

    async def _deliver_loop(self, notifier: Notifier) -> None:
        while True:
            await notifier.wake.wait()
            notifier.wake.clear()
            try:
                async with self.turn:
                    await self.deliver_notifications(notifier)
                    await self.flush()
            except (ConnectionError, OSError):
                return
            except Exception:  # a failed notification must not end the session
                log.exception("IMAP NOTIFY delivery failed")

    async def deliver_notifications(self, notifier: Notifier) -> None:
        """What changed since last told: STATUS of the other mailboxes, then the selected
        mailbox's news (when SELECTED asks for it)."""
        changed, notifier.changed = notifier.changed, set()
        for box_id in sorted(changed):
            await self._tell_status(notifier, box_id)
        if notifier.selected_events and self.selected is not None:
            await self._tell_selected(notifier, self.selected)

    async def _tell_selected(self, notifier: Notifier, sel: Selected) -> None:
        """The selected mailbox's news as they happen: new messages (with the FETCH
        MessageNew asked for), expunges unless SELECTED-DELAYED holds them, flags only
        when FlagChange was asked (else they wait for the next command's end)."""
        if not (self._changed or sel.pending_expunges):
            return
        if "FLAGCHANGE" not in notifier.selected_events:
            news = await self._changes_of(sel)
            if not news.added and not news.gone:
                return  # only flags: told at the next command's end
        last = sel.last_uid
        await self.sync(expunges=not notifier.delayed)
        added = [uid for uid in sel.uids if uid > last]
        if added and notifier.fetch_atts:
            await self.fetch_unasked(list(notifier.fetch_atts), added)

    async def _tell_status(self, notifier: Notifier, box_id: int) -> None:
        name, items = notifier.names.get(box_id), notifier.items.get(box_id)
        if name is None or not items:
            return
        if self.selected is not None and self.selected.info.id == box_id:
            return  # the selected mailbox is told by its own responses
        box = await self.store.mailbox(self._account(), name)
        if box is None or box.id != box_id:
            return  # deleted or renamed since: the next resolution drops it
        before = len(self._out)
        await self.status_response(box, items)
        line = self._out[-1]
        if notifier.told.get(box_id) == line:
            del self._out[before:]  # nothing new to say
        notifier.told[box_id] = line
