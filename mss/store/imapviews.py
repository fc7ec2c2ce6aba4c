"""What the mailbox store answers IMAP, and how IMAP asks SEARCH: plain records, no SQL.

Shared by the port (`mss.imap.backend.MailboxStore`) and its implementation
(`mss.store.imapstore`), so that IMAP never imports the implementation. The
mailboxes' and messages' own records are `folders.MailboxInfo`,
`folders.MailboxStatus`, `messages.FlagState` and `messages.StoreResult`.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from mss.store.folders import MailboxInfo, MailboxStatus
from mss.store.messages import FlagState


@runtime_checkable
class Key(Protocol):
    """One search key: its `kind` (FLAG, STRING, DATE, HEADER, UID, AND, OR, NOT...)
    and its arguments (strings, dates, numbers, `Range`s, nested keys)."""

    @property
    def kind(self) -> str: ...

    @property
    def args(self) -> tuple[Any, ...]: ...


class Range(Protocol):
    """`a:b` of a UID set; None stands for `*` (the largest UID in use)."""

    @property
    def start(self) -> int | None: ...

    @property
    def end(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class OpenedMailbox:
    """What SELECT reports, read in one snapshot."""

    info: MailboxInfo
    uids: array[int]  # sorted
    status: MailboxStatus


@dataclass(frozen=True, slots=True)
class MailboxChanges:
    """What changed in a mailbox since a modseq; `mailbox` is None once it is deleted."""

    mailbox: MailboxInfo | None
    added: list[int]  # UIDs of new messages
    flagged: list[FlagState]  # messages whose flags changed
    gone: list[int]  # UIDs expunged


@dataclass(frozen=True, slots=True)
class SearchResult:
    found: list[tuple[int, int]]  # (uid, modseq) of the matches, in UID order
    max_modseq: bool  # the MODSEQ key was used: report the highest modseq (RFC 7162 §3.1.5)
