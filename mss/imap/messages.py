"""Message commands: APPEND, STORE, COPY, MOVE, EXPUNGE, CLOSE, UNSELECT, CHECK
(RFC 3501 §6.3.11, §6.4; RFC 4315 UIDPLUS; RFC 6851 MOVE; RFC 3691 UNSELECT;
RFC 7162 CONDSTORE; RFC 3516 literal8 APPEND, whose binary parts are stored in base64).

Every change is one write of the store (a new modseq in the same transaction);
the session then answers with what it changed and remembers its own flag
changes so that they are not announced twice.
"""

from __future__ import annotations

import datetime as dt

from mss.core.mime import binary_as_base64
from mss.imap import responses as r
from mss.imap.errors import ImapError, read_only
from mss.imap.parsing.commands import Command
from mss.imap.selected import SelectedView
from mss.store.messages import StoreResult


class MessageCommands(SelectedView):
    async def do_APPEND(self, command: Command) -> str:
        args = command.args
        box = await self._mailbox(args["mailbox"], code="TRYCREATE")
        message: bytes = args["message"]
        if args["binary"] or b"\0" in message:
            message = binary_as_base64(message)  # RFC 3516 §4.4: fetchable with no NUL
        if len(message) > self.config.max_message_size:
            raise ImapError("Message trop volumineux (message too big)", code="TOOBIG")
        date: dt.datetime | None = args["date"]
        when = int(date.timestamp()) if date else None
        uid = await self.store.append(box.id, message, args["flags"], when)
        return f"[APPENDUID {box.uidvalidity} {uid}] APPEND completed"

    async def do_CHECK(self, command: Command) -> None:
        return None

    async def do_CLOSE(self, command: Command) -> None:
        sel = self._sel()
        if not sel.readonly:  # RFC 3501 §6.4.2: expunge without EXPUNGE responses
            await self.store.expunge(sel.info.id)
        self._deselect()

    async def do_UNSELECT(self, command: Command) -> None:
        self._deselect()

    # --- EXPUNGE ----------------------------------------------------------------------------

    async def do_EXPUNGE(self, command: Command) -> None:
        await self._expunge(None)

    async def do_UID_EXPUNGE(self, command: Command) -> None:
        await self._expunge(self._sel().uids_of_uid_set(command.args["sequence"]))

    async def _expunge(self, among: list[int] | None) -> None:
        sel = self._sel()
        if sel.readonly:
            raise read_only()
        removed = await self.store.expunge(sel.info.id, among)
        sel.pending_expunges.update(removed)
        self._announce_expunges()

    # --- STORE ------------------------------------------------------------------------------

    async def do_STORE(self, command: Command) -> str | None:
        return await self._store(command)

    async def do_UID_STORE(self, command: Command) -> str | None:
        return await self._store(command)

    async def _store(self, command: Command) -> str | None:
        sel = self._sel()
        if sel.readonly:
            raise read_only()
        args = command.args
        uids = self._resolve(command)
        if args["unchanged_since"] is not None:
            self.condstore = True
        if not uids:
            return None
        result = await self.store.store_flags(
            sel.info.id, uids, args["mode"], args["flags"], args["unchanged_since"]
        )
        for state in result.changed:
            sel.own_changes[state.uid] = state.modseq
        self._answer_store(result, command)
        if result.modified:
            return f"[MODIFIED {self._numbers(result.modified, command)}] Conditional STORE failed"
        return None

    def _answer_store(self, result: StoreResult, command: Command) -> None:
        """FETCH responses with the new flags (none for .SILENT, unless CONDSTORE)."""
        silent = command.args["silent"]
        if silent and not self.condstore:
            return
        states = sorted(result.changed + ([] if silent else result.unchanged), key=lambda s: s.uid)
        for state in states:
            self._flag_response(state, by_uid=command.name.startswith("UID "), silent=silent)

    def _numbers(self, uids: list[int], command: Command) -> str:
        """RFC 7162 §3.1.3 MODIFIED: UIDs for UID STORE, message numbers for STORE."""
        if command.name.startswith("UID "):
            return r.sequence_set(sorted(uids))
        seq_of = self._sel().seq_of
        return r.sequence_set(sorted(s for s in (seq_of(u) for u in uids) if s is not None))

    # --- COPY and MOVE ----------------------------------------------------------------------

    async def do_COPY(self, command: Command) -> str:
        return await self._copy(command, move=False)

    async def do_UID_COPY(self, command: Command) -> str:
        return await self._copy(command, move=False)

    async def do_MOVE(self, command: Command) -> str:
        return await self._copy(command, move=True)

    async def do_UID_MOVE(self, command: Command) -> str:
        return await self._copy(command, move=True)

    async def _copy(self, command: Command, *, move: bool) -> str:
        sel = self._sel()
        if move and sel.readonly:
            raise read_only()
        target = await self._mailbox(command.args["mailbox"], code="TRYCREATE")
        uids = self._resolve(command)
        pairs = await self.store.copy(sel.info.id, uids, target.id, move=move) if uids else []
        name = "MOVE" if move else "COPY"
        if not pairs:
            return f"{name} completed"
        sources = r.sequence_set([p[0] for p in pairs])
        targets = r.sequence_set([p[1] for p in pairs])
        code = f"COPYUID {target.uidvalidity} {sources} {targets}"
        if not move:
            return f"[{code}] {name} completed"
        # RFC 6851 §4.3: COPYUID in an untagged OK, then the EXPUNGEs
        self.untagged(f"OK [{code}] Moved")
        sel.pending_expunges.update(p[0] for p in pairs)
        self._announce_expunges()
        return f"{name} completed"
