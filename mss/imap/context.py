"""Search contexts (RFC 5267 §4, CONTEXT=SEARCH and CONTEXT=SORT): PARTIAL results and
the UPDATE of a search's result while the mailbox changes.

`partial` answers `RETURN (PARTIAL lo:hi)`: the matches at those positions of the result
(in UID order for SEARCH, in sort order for SORT). A search with `RETURN (UPDATE)`
leaves a `Context`; at the end of every later command (and during IDLE), before the
expunges are told, `ContextCommands.sync` searches again and tells what left the result
(REMOVEFROM) and what entered it (ADDTO), until CANCELUPDATE or the mailbox is left.
Unsorted results carry position 0 (a position means nothing there), sorted ones the
message's position in the sort order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from mss.imap import responses as r
from mss.imap.errors import ImapError, bad
from mss.imap.parsing.commands import Command
from mss.imap.selected import Selected, SelectedView

MAX_CONTEXTS = 10  # updated searches kept per session (each costs a search per command)

Rerun = Callable[[list[int]], Awaitable[list[int]]]  # the view's UIDs -> matches in order


def partial(numbers: Sequence[int], positions: tuple[int, int]) -> Sequence[int]:
    """The numbers at 1-based positions lo..hi (RFC 5267 §4 PARTIAL)."""
    first, last = positions
    return numbers[first - 1 : last]


@dataclass
class Context:
    tag: str
    by_uid: bool
    sorted: bool
    selected: Selected  # the mailbox as selected when the search ran
    rerun: Rerun
    results: list[int]  # UIDs, in the result's order
    mark: tuple[int, int, int]  # (modseq, messages, pending expunges) last searched at


def _view(sel: Selected) -> list[int]:
    return [uid for uid in sel.uids if uid not in sel.pending_expunges]


def _mark(sel: Selected) -> tuple[int, int, int]:
    return sel.modseq, len(sel.uids), len(sel.pending_expunges)


class ContextCommands(SelectedView):
    _contexts: dict[str, Context] | None = None

    def remember(self, command: Command, results: list[int], rerun: Rerun, *, sort: bool) -> bool:
        """Keep an UPDATE search's result; False when the session holds too many."""
        contexts = self._live_contexts()
        if len(contexts) >= MAX_CONTEXTS and command.tag not in contexts:
            return False
        sel = self._sel()
        by_uid = command.name.startswith("UID ")
        contexts[command.tag] = Context(
            command.tag, by_uid, sort, sel, rerun, list(results), _mark(sel)
        )
        return True

    def _live_contexts(self) -> dict[str, Context]:
        if self._contexts is None:
            self._contexts = {}
        for tag, context in list(self._contexts.items()):
            if context.selected is not self.selected:  # the mailbox was left
                del self._contexts[tag]
        return self._contexts

    async def do_CANCELUPDATE(self, command: Command) -> None:
        contexts = self._live_contexts()
        unknown = [tag for tag in command.args["tags"] if tag not in contexts]
        if unknown:
            raise bad(
                f"Aucune recherche suivie sous l'étiquette {unknown[0]} "
                "(no search updated under that tag)"
            )
        for tag in command.args["tags"]:
            del contexts[tag]

    async def sync(self, *, expunges: bool) -> None:
        """The selected mailbox's changes, then the contexts' (their REMOVEFROM before the
        EXPUNGE responses, while the expunged messages still have their numbers)."""
        await super().sync(expunges=False)
        if self.selected is not None and self._contexts:
            for context in list(self._live_contexts().values()):
                try:
                    await self._update(context)
                except ImapError:  # the search cannot be run again: its updates stop
                    self._live_contexts().pop(context.tag, None)
        if expunges:
            self._announce_expunges()

    def _announce_expunges(self) -> None:
        """What an expunge takes from the results is told first, while the messages still
        have their numbers (the EXPUNGE responses follow)."""
        sel = self.selected
        if sel is not None and sel.pending_expunges and self._contexts:
            for context in self._live_contexts().values():
                gone = [uid for uid in context.results if uid in sel.pending_expunges]
                if gone:
                    self._tell(context, "REMOVEFROM", gone, context.results)
                    left = set(context.results) - set(gone)
                    context.results = [uid for uid in context.results if uid in left]
        super()._announce_expunges()

    async def _update(self, context: Context) -> None:
        sel = self._sel()
        if _mark(sel) == context.mark:
            return
        view = _view(sel)
        results = await context.rerun(view)
        before, after = context.results, results
        kept, had = set(after), set(before)
        removed = [uid for uid in before if uid not in kept]
        added = [uid for uid in after if uid not in had]
        if removed:
            self._tell(context, "REMOVEFROM", removed, before)
        if added:
            self._tell(context, "ADDTO", added, after)
        context.results, context.mark = results, _mark(sel)

    def _tell(self, context: Context, word: str, uids: list[int], order: list[int]) -> None:
        sel = self._sel()
        head = f'ESEARCH (TAG "{context.tag}")' + (" UID" if context.by_uid else "")

        def number(uid: int) -> int:
            return uid if context.by_uid else sel.seq_of(uid) or 0

        if not context.sorted:
            numbers = sorted(number(uid) for uid in uids)
            self.untagged(f"{head} {word} (0 {r.sequence_set(numbers)})")
            return
        position = {uid: i + 1 for i, uid in enumerate(order)}
        # removals from the last position back, additions from the first: each position
        # holds when the client applies them in turn
        for uid in sorted(uids, key=position.__getitem__, reverse=word == "REMOVEFROM"):
            self.untagged(f"{head} {word} ({position[uid]} {number(uid)})")
