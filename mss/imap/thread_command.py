"""THREAD and UID THREAD (RFC 5256): the messages a search finds, threaded by
ORDEREDSUBJECT or REFERENCES (`threads`), by message number or UID."""

from __future__ import annotations

import asyncio

from mss.imap.errors import bad
from mss.imap.parsing.commands import Command
from mss.imap.search import Record, SearchCommands
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
        algorithm = ALGORITHMS.get(command.args["algorithm"])
        if algorithm is None:
            raise bad(
                f"Algorithme THREAD inconnu : {command.args['algorithm']} "
                "(unknown THREAD algorithm)"
            )
        found, _modseq = await self._matches(self._search_keys(command), by_uid=True)
        sel = self._sel()
        mails = [_mail(record, seq, by_uid) for record in await self._records(found, FIELDS)
                 if (seq := sel.seq_of(record["uid"])) is not None]  # fmt: skip
        if len(mails) > OFF_LOOP:  # a big mailbox's threads: off the event loop
            threads = await asyncio.to_thread(lambda: render(algorithm(mails)))
        else:
            threads = render(algorithm(mails))
        self.untagged(f"THREAD {threads}" if threads else "THREAD")


def _mail(record: Record, seq: int, by_uid: bool) -> Mail:
    """What the algorithms read of a message: its number, sent date (else its internal
    date), base subject, Message-ID and References (else In-Reply-To's first id)."""
    base, reply = base_subject(record["subject"])
    sent = record["sent_date"] if record["sent_date"] is not None else record["internal_date"]
    chain = message_ids(record["refs"]) or message_ids(record["in_reply_to"])[:1]
    number = record["uid"] if by_uid else seq
    return Mail(number, seq, sent, base.casefold(), reply, record["message_id"], chain)
