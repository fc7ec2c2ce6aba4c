"""THREAD and UID THREAD (RFC 5256 §3 BASE.6.4.THREAD, §4 and §5 the response):
ORDEREDSUBJECT and REFERENCES.

The matches come from SEARCH; their subjects, dates and message ids are read from the
store's columns. `references` builds the threads of RFC 5256 §3 REFERENCES (steps 1 to 6:
the id table, the root set, pruning the dummies, merging by base subject, sorting the
siblings by sent date); `ordered_subject` groups by base subject (ORDEREDSUBJECT).
`thread_list` writes the result as the THREAD response's thread-list.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from mss.core.mime import decode_words
from mss.imap.basesubject import base_subject
from mss.imap.parsing.commands import Command
from mss.imap.search import Record, SearchCommands
from mss.imap.sort import sent_or_arrival, subject_key

THREAD_FIELDS = ("internal_date", "sent_date", "subject", "message_id", "in_reply_to", "refs")


@dataclass(eq=False)
class Node:
    """A container of RFC 5256 §3 REFERENCES: a message, or a dummy standing for a missing one."""

    record: Record | None = None
    parent: Node | None = None
    children: list[Node] = field(default_factory=list)

    def adopt(self, child: Node) -> None:
        if child.parent is not None:
            child.parent.children.remove(child)
        child.parent = self
        self.children.append(child)

    def leave(self) -> None:
        if self.parent is not None:
            self.parent.children.remove(self)
            self.parent = None

    def descends_from(self, other: Node) -> bool:
        node: Node | None = self
        while node is not None:
            if node is other:
                return True
            node = node.parent
        return False

    def first(self) -> Record:
        """The node's message, or its first child's for a dummy."""
        node = self
        while node.record is None:
            node = node.children[0]
        return node.record


# --- REFERENCES (RFC 5256 §3) --------------------------------------------------------------


def _parents(record: Record) -> list[str]:
    """References, else the first In-Reply-To id (RFC 5256 §3 REFERENCES step 1)."""
    refs = (record["refs"] or "").split()
    return refs or (record["in_reply_to"] or "").split()[:1]


def _link_messages(records: Sequence[Record]) -> list[Node]:
    """Step 1: one container per message id, linked as the references say."""
    table: dict[str, Node] = {}
    nodes = []
    for record in records:
        message_id = record["message_id"]
        node = table.get(message_id) if message_id else None
        if node is None or node.record is not None:  # no id, or a duplicate: unique
            node = Node()
            if message_id and message_id not in table:
                table[message_id] = node
        node.record = record
        nodes.append(node)
        chain = [table.setdefault(ref, Node()) for ref in _parents(record)]
        for parent, child in itertools.pairwise(chain):  # step 1B: keep existing links
            if child.parent is None and not parent.descends_from(child):
                parent.adopt(child)
        node.leave()  # step 1C: the message's parent is its last reference
        if chain and not chain[-1].descends_from(node):
            chain[-1].adopt(node)
    roots = {id(n): n for n in list(table.values()) + nodes if n.parent is None}
    return list(roots.values())


def _preorder(roots: Sequence[Node]) -> list[Node]:
    """Every node under `roots`, parents before children (no recursion: a reply chain
    may be thousands of messages deep)."""
    order: list[Node] = []
    stack = list(reversed(roots))
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(reversed(node.children))
    return order


def _promote(parent: Node | None, nodes: list[Node], *, at_root: bool) -> list[Node]:
    kept: list[Node] = []
    for node in nodes:
        if node.record is None and (not at_root or len(node.children) <= 1):
            for child in node.children:
                child.parent = parent
            kept.extend(node.children)
        else:
            kept.append(node)
    return kept


def _prune(roots: list[Node]) -> list[Node]:
    """Step 4: empty dummies go; a dummy's children take its place, except a dummy at the
    root with several children. Children first, so promoted children are pruned already."""
    for node in reversed(_preorder(roots)):
        node.children = _promote(node, node.children, at_root=False)
    return _promote(None, roots, at_root=True)


def _subject(node: Node) -> tuple[str, bool]:
    """(base subject, is a reply or forward) of a node's message (§2.1, step 5.B.i)."""
    return base_subject(decode_words(node.first()["subject"] or ""))


def _merge_subjects(roots: list[Node]) -> list[Node]:
    """Step 5: the root threads that share a base subject are put together."""
    table: dict[bytes, Node] = {}
    for node in roots:  # 5.B
        subject, reply = _subject(node)
        key = subject.encode().upper()
        held = table.get(key)
        if not subject:
            continue
        if held is None or (
            held.record is not None and (node.record is None or (_subject(held)[1] and not reply))
        ):
            table[key] = node
    merged: list[Node] = []
    for node in roots:  # 5.C
        subject, reply = _subject(node)
        held = table.get(subject.encode().upper()) if subject else None
        if held is None or held is node:
            merged.append(node)
        elif held.record is None and node.record is None:  # a
            for child in list(node.children):
                held.adopt(child)
        elif held.record is None or (reply and not _subject(held)[1]):  # b, c
            held.adopt(node)
        else:  # d
            dummy = Node()
            at = merged.index(held) if held in merged else None
            dummy.adopt(held)
            dummy.adopt(node)
            table[subject.encode().upper()] = dummy
            if at is not None:
                merged[at] = dummy
            else:
                merged.append(dummy)
    return [n for n in merged if n.parent is None]


def _sort_siblings(roots: list[Node]) -> None:
    """Step 6: siblings by sent date, then by message number; a dummy by its first child
    (its children sorted first)."""

    def key(node: Node) -> tuple[int, int]:
        first = node.first()
        return sent_or_arrival(first), first["uid"]

    for node in reversed(_preorder(roots)):
        node.children.sort(key=key)
    roots.sort(key=key)


def references(records: Sequence[Record]) -> list[Node]:
    """RFC 5256 §3 REFERENCES: the threads of `records` (in UID order)."""
    roots = _prune(_link_messages(records))
    roots = _merge_subjects(roots)
    _sort_siblings(roots)
    return roots


# --- ORDEREDSUBJECT (RFC 5256 §3) -------------------------------------------------------


def ordered_subject(records: Sequence[Record]) -> list[Node]:
    """By base subject, then sent date; each subject one thread, its first message the
    parent of the others; the threads by their first message's sent date."""

    def by_date(record: Record) -> tuple[int, int]:
        return sent_or_arrival(record), record["uid"]

    ordered = sorted(records, key=lambda r: (subject_key(r), *by_date(r)))
    threads = []
    for _, group in itertools.groupby(ordered, key=subject_key):
        first, *rest = group
        parent = Node(first)
        for record in rest:
            parent.adopt(Node(record))
        threads.append(parent)
    threads.sort(key=lambda n: by_date(n.first()))
    return threads


ALGORITHMS: dict[str, Callable[[Sequence[Record]], list[Node]]] = {
    "ORDEREDSUBJECT": ordered_subject,
    "REFERENCES": references,
}


# --- the response -----------------------------------------------------------------------


def thread_list(threads: Sequence[Node], number: Callable[[Record], int]) -> str:
    """RFC 5256 §5 thread-list: a chain of single children written flat, several children
    each in its own parentheses, a dummy as its children's lists (written without
    recursion: a chain may be thousands deep)."""
    out: list[str] = []
    stack: list[str | Node] = []
    for thread in reversed(threads):
        stack += [")", thread, "("]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        nested: list[str | Node] = []
        for child in item.children:
            nested += ["(", child, ")"]
        if item.record is not None:
            out.append(str(number(item.record)))
            if len(item.children) == 1:
                nested = [" ", item.children[0]]
            elif item.children:
                nested.insert(0, " ")
        stack += reversed(nested)
    return "".join(out)


class ThreadCommands(SearchCommands):
    async def do_THREAD(self, command: Command) -> None:
        await self._thread(command, by_uid=False)

    async def do_UID_THREAD(self, command: Command) -> None:
        await self._thread(command, by_uid=True)

    async def _thread(self, command: Command, *, by_uid: bool) -> None:
        found, _ = await self._matches(self._search_keys(command), by_uid=True)
        records = await self._records(found, THREAD_FIELDS)
        threads = ALGORITHMS[command.args["algorithm"]](records)
        sel = self._sel()

        def number(record: Record) -> int:
            uid: int = record["uid"]
            return uid if by_uid else sel.seq_of(uid) or 0

        text = thread_list(threads, number)
        self.untagged("THREAD" + (f" {text}" if text else ""))
