"""What LIST and LSUB answer (RFC 3501 §6.3.8–9, RFC 5258 LIST-EXTENDED, RFC 6154
SPECIAL-USE), as a pure function of the account's mailboxes and subscriptions.

- LIST: the mailboxes (and implied parents, `\\Noselect`) matching a pattern, with
  `\\HasChildren`/`\\HasNoChildren`, `\\Subscribed` when asked (RETURN (SUBSCRIBED)) and
  special uses.
- LIST (SUBSCRIBED): the subscribed names matching, existing or not (`\\NonExistent`);
  with RECURSIVEMATCH, a name that matches but is not selected itself is listed with
  CHILDINFO ("SUBSCRIBED") when a subscribed descendant matches no pattern.
- LSUB: the subscribed names matching; a parent of a subscribed name that no pattern
  matches is listed `\\Noselect` (RFC 3501 §6.3.9: `news/%` shows `news/comp`).

Options were checked by the parser (`parsing.commands`): unknown ones are BAD there.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass

from mss.store.folders import DELIMITER, MailboxInfo
from mss.store.mailboxes import INBOX

Matcher = Callable[[str], bool]


@dataclass(frozen=True, slots=True)
class Listed:
    name: str
    attributes: list[str]
    childinfo: bool = False  # CHILDINFO ("SUBSCRIBED") extended data


@dataclass(frozen=True, slots=True)
class ListOptions:
    """LIST's selection and return options (RFC 5258 §3), or LSUB's own."""

    lsub: bool = False
    subscribed_only: bool = False
    recursive: bool = False
    special_only: bool = False
    return_subscribed: bool = False
    want_special: bool = True

    @classmethod
    def of(cls, selection: Collection[str], returns: Collection[str]) -> ListOptions:
        return cls(
            subscribed_only="SUBSCRIBED" in selection,
            recursive="RECURSIVEMATCH" in selection,
            special_only="SPECIAL-USE" in selection,
            return_subscribed="SUBSCRIBED" in returns or "SUBSCRIBED" in selection,
            want_special="SPECIAL-USE" in returns or not returns,
        )


def matcher(pattern: str) -> Matcher:
    """LIST wildcards: `*` matches anything, `%` anything but the delimiter. Run as a set
    of positions in the pattern, one step per character of the name (never a
    backtracking regex: `*a*a*a*a*b` costs pattern × name, not an exponent)."""
    tokens: list[str] = []
    for ch in pattern:
        if ch in "*%" and tokens and tokens[-1] in "*%":
            tokens[-1] = "*" if "*" in (ch, tokens[-1]) else "%"  # ** %* *% → *, %% → %
            continue
        tokens.append(ch)
    return lambda name: _matches(tokens, name)


def _matches(tokens: list[str], name: str) -> bool:
    states = _closure(tokens, {0})
    for ch in name:
        following: set[int] = set()
        for i in states:
            if i == len(tokens):
                continue
            wanted = tokens[i]
            if wanted == "*" or (wanted == "%" and ch != DELIMITER):
                following.add(i)
            elif wanted == ch:
                following.add(i + 1)
        if not following:
            return False
        states = _closure(tokens, following)
    return len(tokens) in states


def _closure(tokens: list[str], states: set[int]) -> set[int]:
    """A wildcard may match nothing: the position after it is reached too."""
    out = set(states)
    for i in sorted(states):
        while i < len(tokens) and tokens[i] in "*%":
            i += 1
            out.add(i)
    return out


def _parents(name: str) -> Iterator[str]:
    parts = name.split(DELIMITER)
    return (DELIMITER.join(parts[:i]) for i in range(1, len(parts)))


def _ordered(names: Collection[str]) -> list[str]:
    return sorted(names, key=lambda n: (n != INBOX, n))


def listing(
    boxes: Mapping[str, MailboxInfo], subscribed: set[str], matchers: list[Matcher],
    options: ListOptions,
) -> list[Listed]:  # fmt: skip
    """What LIST or LSUB shows, in order (INBOX first)."""
    if options.lsub:
        return _subscribed(boxes, subscribed, matchers, lsub=True)
    if options.subscribed_only:
        return [_with_special(found, boxes, options) for found in
                _subscribed(boxes, subscribed, matchers, lsub=False, options=options)]  # fmt: skip
    return _mailboxes(boxes, subscribed, matchers, options)


def _mailboxes(
    boxes: Mapping[str, MailboxInfo], subscribed: set[str], matchers: list[Matcher],
    options: ListOptions,
) -> list[Listed]:  # fmt: skip
    candidates = set(boxes)
    for name in boxes:
        candidates.update(_parents(name))
    out = []
    for name in _ordered(candidates):
        box = boxes.get(name)
        if not any(m(name) for m in matchers):
            continue
        if options.special_only and (box is None or not box.special_use):
            continue
        attributes = ["\\Noselect"] if box is None else []
        attributes.append(_children(name, boxes))
        if options.return_subscribed and name in subscribed:
            attributes.append("\\Subscribed")
        out.append(_with_special(Listed(name, attributes), boxes, options))
    return out


def _subscribed(
    boxes: Mapping[str, MailboxInfo], subscribed: set[str], matchers: list[Matcher], *,
    lsub: bool, options: ListOptions | None = None,
) -> list[Listed]:  # fmt: skip
    """The subscribed names matching, then the parents LSUB or RECURSIVEMATCH show."""
    matching = {name for name in subscribed if any(m(name) for m in matchers)}
    unmatched = subscribed - matching
    parents = {p for name in unmatched for p in _parents(name) if any(m(p) for m in matchers)}
    parents -= subscribed
    recursive = lsub or (options is not None and options.recursive)
    out = []
    for name in _ordered(matching | (parents if recursive else set())):
        if lsub:
            attributes = [] if name in subscribed else ["\\Noselect"]
            out.append(Listed(name, attributes))
            continue
        out.append(_selected(name, boxes, subscribed))
    return out


def _selected(name: str, boxes: Mapping[str, MailboxInfo], subscribed: set[str]) -> Listed:
    """A name of LIST (SUBSCRIBED): itself subscribed, or a parent shown for a child."""
    if name not in subscribed:
        attributes = [] if name in boxes else ["\\NonExistent"]
        return Listed(name, [*attributes, _children(name, boxes)], childinfo=True)
    attributes = ["\\Subscribed"]
    attributes.append(_children(name, boxes) if name in boxes else "\\NonExistent")
    return Listed(name, attributes)


def _children(name: str, boxes: Mapping[str, MailboxInfo]) -> str:
    prefix = name + DELIMITER
    return "\\HasChildren" if any(o.startswith(prefix) for o in boxes) else "\\HasNoChildren"


def _with_special(found: Listed, boxes: Mapping[str, MailboxInfo], options: ListOptions) -> Listed:
    box = boxes.get(found.name)
    if box is not None and box.special_use and options.want_special:
        found.attributes.append(box.special_use)
    return found
