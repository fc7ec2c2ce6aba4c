"""APPEND (RFC 3501 §6.3.11) with MULTIAPPEND (RFC 3502) and CATENATE (RFC 4469); a
message sent as literal8 (RFC 3516), or holding NUL, has its binary parts stored in
base64.

Every message of one APPEND is stored in one transaction: all of them or none. A
CATENATE message is made of literal text and IMAP URLs (RFC 5092, this account's own
mailboxes: `/mailbox[;UIDVALIDITY=v]/;UID=n[/;SECTION=s][/;PARTIAL=o[.l]]`) of messages
or sections already stored; a URL that names nothing is NO [BADURL url] and nothing is
appended. APPENDUID gives the new UIDs (RFC 4315).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import unquote

from mss.core.mime import binary_as_base64
from mss.core.mime.structure import Part
from mss.imap import responses as r
from mss.imap.errors import ImapError
from mss.imap.parsing.append import AppendMessage, Url
from mss.imap.parsing.commands import Command
from mss.imap.parsing.fetch import parse_section
from mss.imap.parsing.tokens import ParseError
from mss.imap.responses import SectionError
from mss.imap.selected import SelectedView
from mss.store.folders import normalize_name

# /mailbox[;UIDVALIDITY=v]/;UID=n[/;SECTION=s][/;PARTIAL=o[.l]] (RFC 5092 §3, a subset)
_URL = re.compile(
    r"/(?P<box>[^;/][^;]*?)(?:;UIDVALIDITY=(?P<validity>\d{1,10}))?/;UID=(?P<uid>\d{1,10})"
    r"(?:/;SECTION=(?P<section>[^/]+))?(?:/;PARTIAL=(?P<offset>\d{1,10})(?:\.(?P<length>\d{1,10}))?)?",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class _Pointer:
    mailbox: str
    uidvalidity: int | None
    uid: int
    section: str | None
    window: tuple[int, int] | None


def _bad_url(url: Url) -> ImapError:
    text = "".join(c if 0x20 < ord(c) < 0x7F and c != '"' else "?" for c in url.text)
    return ImapError("URL invalide (the URL names no message here)", code=f'BADURL "{text}"')


def _pointer(url: Url) -> _Pointer:
    found = _URL.fullmatch(url.text)
    if found is None:
        raise _bad_url(url)
    validity, offset, length = found["validity"], found["offset"], found["length"]
    window = None if offset is None else (int(offset), int(length) if length else 2**62)
    return _Pointer(unquote(found["box"]), int(validity) if validity else None,
                    int(found["uid"]), found["section"], window)  # fmt: skip


class AppendCommands(SelectedView):
    async def do_APPEND(self, command: Command) -> str:
        box = await self._mailbox(command.args["mailbox"], code="TRYCREATE")
        wanted: list[AppendMessage] = command.args["messages"]
        messages: list[bytes] = []
        for message in wanted:
            # what one APPEND holds, CATENATE's URLs included, is bounded as its literals
            left = self.config.max_message_size - sum(map(len, messages))
            messages.append(await self._assemble(message, left))
            if not messages[-1]:
                raise ImapError("Message vide (empty message)")
        stamped = [(m, w.flags, int(w.date.timestamp()) if w.date else None)
                   for m, w in zip(messages, wanted, strict=True)]  # fmt: skip
        sel = self.selected
        if sel is not None and sel.info.id == box.id and not sel.readonly:
            # the claim of \Recent that announcing them needs, in the same transaction
            uids, claimed = await self.store.append_claiming(box.id, stamped)
            sel.claimed.append(claimed)
        elif len(stamped) == 1:
            raw, flags, when = stamped[0]
            uids = [await self.store.append(box.id, raw, flags, when)]
        else:
            uids = await self.store.append_many(box.id, stamped)
        return f"[APPENDUID {box.uidvalidity} {r.sequence_set(uids)}] APPEND completed"

    async def _assemble(self, message: AppendMessage, room: int) -> bytes:
        """The message's bytes, its URLs resolved; TOOBIG past `room` bytes."""
        out = bytearray()
        for part in message.parts:
            out += part if isinstance(part, bytes) else await self._resolve_url(part)
            if len(out) > room:
                raise ImapError("Message trop volumineux (message too big)", code="TOOBIG")
        if message.binary or b"\0" in out:
            return binary_as_base64(bytes(out))  # RFC 3516 §4.4: fetchable with no NUL
        return bytes(out)

    async def _resolve_url(self, url: Url) -> bytes:
        """The bytes a CATENATE URL names in this account's mailboxes."""
        pointer = _pointer(url)
        box = await self.store.mailbox(self._account(), self._url_mailbox(pointer, url))
        if box is None or pointer.uidvalidity not in (None, box.uidvalidity):
            raise _bad_url(url)
        rows = await self.store.fetch_rows(box.id, [pointer.uid], ["blob_id", "body_structure"],
                                           everything=False)  # fmt: skip
        row = rows.get(pointer.uid)
        if row is None:
            raise _bad_url(url)
        raw = await self.store.blob(row[1])
        if pointer.section is not None:
            try:
                root = Part.from_json(json.loads(row[2]))
                raw = r.section_bytes(raw, root, parse_section(pointer.section))
            except (ParseError, SectionError):
                raise _bad_url(url) from None
        return r.partial(raw, pointer.window)

    @staticmethod
    def _url_mailbox(pointer: _Pointer, url: Url) -> str:
        """RFC 5092 §3: a URL names the mailbox in UTF-8, percent-encoded (not in the
        modified UTF-7 of IMAP commands)."""
        name = normalize_name(pointer.mailbox)
        if not name or "\0" in name or "\ufffd" in name:
            raise _bad_url(url)
        return name
