"""THREAD (RFC 5256 §3–4): ORDEREDSUBJECT and REFERENCES over the messages a search
found, as the parenthesised lists of the THREAD response.

Pure: `Mail` holds what the algorithms read of a message (its number in the answer,
its sequence number for ties, sent date, base subject, Message-ID, References); the
session (`thread_command`) gathers them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

_MSGID = re.compile(r"<[^<>\s]+>")


@dataclass(frozen=True, slots=True)
class Mail:
    number: int  # as answered: message number, or UID for UID THREAD
    order: int  # sequence number: the tie-breaker of equal dates (RFC 5256 §2.2)
    sent: int  # sent date, UTC seconds (else the internal date)
    subject: str  # base subject (`subjects.base_subject`), case-folded
    reply: bool  # the subject said "Re:" or "Fwd:"
    message_id: str | None = None
    references: tuple[str, ...] = ()  # References, else In-Reply-To's first id


def message_ids(text: str | None) -> tuple[str, ...]:
    return tuple(_MSGID.findall(text or ""))


@dataclass(eq=False)
class Node:
    mail: Mail | None = None  # None: a dummy, for a message referred to but not here
    parent: Node | None = None
    children: list[Node] = field(default_factory=list)

    def first(self) -> Mail | None:
        """The message itself, or a dummy's first child's (after sorting)."""
        node = self
        while node.mail is None:
            if not node.children:
                return None
            node = node.children[0]
        return node.mail

    def key(self) -> tuple[int, int]:
        found = self.first()
        return (found.sent, found.order) if found else (0, 0)


# --- ORDEREDSUBJECT -----------------------------------------------------------------------


def ordered_subject(mails: list[Mail]) -> list[Node]:
    """Messages grouped by base subject, each group by sent date: the first is the parent
    of the others; groups in the order of their first message."""
    groups: dict[str, list[Mail]] = {}
    for mail in sorted(mails, key=lambda m: (m.sent, m.order)):
        groups.setdefault(mail.subject, []).append(mail)
    roots = []
    for first, *others in groups.values():
        root = Node(first)
        root.children = [Node(m, root) for m in others]
        roots.append(root)
    return sorted(roots, key=Node.key)


# --- REFERENCES ---------------------------------------------------------------------------


def references(mails: list[Mail]) -> list[Node]:
    """RFC 5256 §4 REFERENCES: linked by Message-ID, dummies pruned, sorted by sent date,
    roots of the same base subject gathered."""
    table: dict[str, Node] = {}
    for mail in sorted(mails, key=lambda m: m.order):
        _link(table, mail)
    roots = _prune([n for n in table.values() if n.parent is None], top=True)
    _sort(roots)
    roots = _gather_subjects(roots)
    _sort(roots)
    return roots


def _link(table: dict[str, Node], mail: Mail) -> None:
    """Step 1: the message's container (a new one for a message without Message-ID or
    with one already seen), its references chained parent to child, and the last
    reference made its parent (breaking a link a truncated References made)."""
    key = mail.message_id
    node = table.get(key) if key else None
    if node is not None and node.mail is None:
        node.mail = mail
    else:
        node = Node(mail)
        table[key if key and key not in table else f"\0{mail.order}"] = node
    previous: Node | None = None
    for ref in mail.references:
        container = table.setdefault(ref, Node())
        if previous is not None and container.parent is None and not _reaches(container, previous):
            _adopt(previous, container)
        previous = container
    if previous is None:
        return
    if node.parent is not None:  # a guess from another References: this one knows better
        node.parent.children.remove(node)
        node.parent = None
    if not _reaches(node, previous):
        _adopt(previous, node)


def _reaches(ancestor: Node, node: Node | None) -> bool:
    """Whether `ancestor` is `node` or above it (a link would make a loop). A node
    without children is above nothing: the common case (mail threaded in the order it
    came) costs no walk up a chain that may be thousands deep."""
    if not ancestor.children:
        return ancestor is node
    while node is not None:
        if node is ancestor:
            return True
        node = node.parent
    return False


def _adopt(parent: Node, child: Node) -> None:
    if child.parent is not None:
        child.parent.children.remove(child)
    child.parent = parent
    parent.children.append(child)


def _below(roots: list[Node]) -> list[Node]:
    """`roots` and every node under them, parents before children (no recursion: a reply
    chain may be thousands of messages deep)."""
    order: list[Node] = []
    stack = list(reversed(roots))
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(reversed(node.children))
    return order


def _prune(nodes: list[Node], *, top: bool) -> list[Node]:
    """Step 3: dummies without children go; a dummy's children take its place, unless
    it is a root with several children. Children first: what is promoted is pruned."""
    for node in reversed(_below(nodes)):
        node.children = _promoted(node, node.children, top=False)
    return _promoted(None, nodes, top=top)


def _promoted(parent: Node | None, nodes: list[Node], *, top: bool) -> list[Node]:
    kept: list[Node] = []
    for node in nodes:
        for child in node.children:
            child.parent = node
        if node.mail is not None or (top and len(node.children) > 1):
            kept.append(node)
            continue
        for child in node.children:
            child.parent = parent
        kept.extend(node.children)
    return kept


def _sort(nodes: list[Node]) -> None:
    """Step 4/6: children by sent date, at every level; a dummy by its first child."""
    for node in reversed(_below(nodes)):
        node.children.sort(key=Node.key)
    nodes.sort(key=Node.key)


def _gather_subjects(roots: list[Node]) -> list[Node]:
    """Step 5: roots of the same base subject gathered: a table chooses, per subject,
    the root the others join (a dummy over a message, an original over a reply)."""
    table: dict[str, Node] = {}
    for root in roots:
        subject, reply = _subject(root)
        if subject and (subject not in table or _better(root, reply, table[subject])):
            table[subject] = root
    for root in roots:
        subject, reply = _subject(root)
        held = table.get(subject) if subject else None
        if held is not None and held is not root and root.parent is None:
            table[subject] = _merge(held, root, reply)
    candidates = dict.fromkeys([*roots, *table.values()])
    return [n for n in candidates if n.parent is None and (n.mail is not None or n.children)]


def _subject(node: Node) -> tuple[str, bool]:
    found = node.first()
    return (found.subject, found.reply) if found else ("", False)


def _better(node: Node, reply: bool, held: Node) -> bool:
    """This root takes the table's place: a dummy over a message, an original over a reply."""
    if node.mail is None and held.mail is not None:
        return True
    held_reply = _subject(held)[1]
    return held.mail is not None and node.mail is not None and held_reply and not reply


def _merge(held: Node, root: Node, reply: bool) -> Node:
    """Step 5C: `root` joins the container of its subject; the one that stays a root."""
    if held.mail is None and root.mail is None:
        for child in list(root.children):
            _adopt(held, child)
        return held
    if held.mail is None:
        _adopt(held, root)
        return held
    if root.mail is None:
        _adopt(root, held)
        return root
    if reply and not _subject(held)[1]:
        _adopt(held, root)
        return held
    dummy = Node()
    _adopt(dummy, held)
    _adopt(dummy, root)
    return dummy


# --- the answer ---------------------------------------------------------------------------


def render(roots: list[Node]) -> str:
    """`(1 2 (3)(4))(5)`: a message and its only child chained, siblings each in
    parentheses; a dummy's children as siblings (RFC 5256 §4, thread-list). Written
    without recursion: a chain may be thousands deep."""
    out: list[str] = []
    stack: list[str | Node] = []
    for root in reversed(roots):
        stack += [")", root, "("]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        nested: list[str | Node] = []
        for child in item.children:
            nested += ["(", child, ")"]
        if item.mail is not None:
            out.append(str(item.mail.number))
            if len(item.children) == 1:
                nested = [" ", item.children[0]]
            elif item.children:
                nested.insert(0, " ")
        stack += reversed(nested)
    return "".join(out)


ALGORITHMS: dict[str, Callable[[list[Mail]], list[Node]]] = {
    "ORDEREDSUBJECT": ordered_subject,
    "REFERENCES": references,
}
