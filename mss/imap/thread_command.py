"""THREAD and UID THREAD (RFC 5256): the messages a search finds, threaded by
ORDEREDSUBJECT or REFERENCES (`threads`), by message number or UID."""

from __future__ import annotations

import asyncio

from mss.errors import InputError
from mss.imap.errors import ImapError, bad
from mss.imap.parsing.commands import Command
from mss.imap.parsing.search import SearchKey
from mss.imap.search import SearchCommands
from mss.imap.subjects import base_subject
from mss.imap.threads import ALGORITHMS, Mail, message_ids, render

OFF_LOOP = 2000  # messages threaded on the event loop; more go to a thread
FIELDS = ["message_id", "in_reply_to", "refs", "subject", "sent_date", "internal_date"]


class ThreadCommands(SearchCommands):
    async def do_THREAD(self, command: Command) -> None:
        await self._thread(command, by_uid=False)

    async def do_UID_THREAD(self, command: Command) -> None:
        await self._thread(command, by_uid=True)

    async def _thread(self, command: Command, *, by_uid: bool) -> None:
        args = command.args
        algorithm = ALGORITHMS.get(args["algorithm"])
        if algorithm is None:
            raise bad(f"unknown THREAD algorithm {args['algorithm']}")
        if "badcharset" in args:
            raise ImapError("charset not supported", code="BADCHARSET (US-ASCII UTF-8)")
        mails = await self._mails(args["keys"], by_uid=by_uid)
        if len(mails) > OFF_LOOP:  # a big mailbox's threads: off the event loop
            threads = await asyncio.to_thread(lambda: render(algorithm(mails)))
        else:
            threads = render(algorithm(mails))
        self.untagged(f"THREAD {threads}" if threads else "THREAD")

    async def _mails(self, keys: list[SearchKey], *, by_uid: bool) -> list[Mail]:
        sel = self._sel()
        try:
            wanted = [self._uid_keys(k) for k in keys]
            found = await self.store.search(sel.info.id, wanted, list(sel.uids))
        except InputError as exc:
            raise bad(str(exc)) from None
        uids = [uid for uid, _ in found.found]
        rows = await self.store.fetch_rows(sel.info.id, uids, FIELDS, everything=False)
        mails = []
        for uid in uids:
            seq, row = sel.seq_of(uid), rows.get(uid)
            if seq is None or row is None:
                continue
            _uid, message_id, in_reply_to, refs, subject, sent, internal = row
            base, reply = base_subject(subject)
            chain = message_ids(refs) or message_ids(in_reply_to)[:1]
            mails.append(Mail(uid if by_uid else seq, seq, sent if sent is not None else internal,
                              base.casefold(), reply, message_id, chain))  # fmt: skip
        return mails
