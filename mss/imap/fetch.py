"""FETCH and UID FETCH (RFC 3501 §6.4.5, §7.4.2; RFC 3516 BINARY; RFC 7162 CHANGEDSINCE).

What clients sync with (UID, FLAGS, MODSEQ) is one query and a tight loop.
Other items read the stored metadata (ENVELOPE, BODYSTRUCTURE, sizes, dates:
computed once at delivery) and, for sections, the message's bytes, decrypted
once per message. Fetching a body section without .PEEK sets \\Seen first and
reports the new flags. Responses are streamed in batches, not held whole.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from mss.core.mime import Envelope, Part
from mss.imap import responses as r
from mss.imap.errors import ImapError, bad
from mss.imap.parsing.commands import Command
from mss.imap.parsing.fetch import FetchAtt
from mss.imap.selected import SelectedView

_FLAGS_ONLY = frozenset({"UID", "FLAGS", "MODSEQ"})


def _fields(atts: list[FetchAtt]) -> list[str]:
    """The stored columns these items need, besides the UID (flags always)."""
    wanted = dict.fromkeys(("flags", "keywords", "modseq"))
    for att in atts:
        if att.name == "INTERNALDATE":
            wanted["internal_date"] = None
        elif att.name == "RFC822.SIZE":
            wanted["size"] = None
        elif att.name == "ENVELOPE":
            wanted["envelope"] = None
        elif (
            att.name in ("BODY", "BODYSTRUCTURE")
            or att.section is not None
            or att.name.startswith("RFC822")
        ):
            wanted["body_structure"] = None
            if att.name != "BODYSTRUCTURE" and not (att.name == "BODY" and att.section is None):
                wanted["blob_id"] = None
    return list(wanted)


def _sets_seen(atts: list[FetchAtt], names: set[str]) -> bool:
    """RFC 3501 §6.4.5: BODY[...] (not .PEEK), RFC822 and RFC822.TEXT set \\Seen; so does
    BINARY[...] (RFC 3516), not BINARY.SIZE, which reads no content (nor in Dovecot)."""
    return any(
        a.section is not None and not a.peek and a.name != "BINARY.SIZE" for a in atts
    ) or bool(names & {"RFC822", "RFC822.TEXT"})


class FetchCommands(SelectedView):
    async def do_FETCH(self, command: Command) -> None:
        await self._fetch(command, by_uid=False)

    async def do_UID_FETCH(self, command: Command) -> None:
        await self._fetch(command, by_uid=True)

    async def _fetch(self, command: Command, *, by_uid: bool) -> None:
        atts: list[FetchAtt] = list(command.args["atts"])
        changed_since = command.args["changed_since"]
        if command.args["vanished"]:
            if not (by_uid and self.qresync and changed_since is not None):
                raise bad(
                    "VANISHED demande UID FETCH, CHANGEDSINCE et ENABLE QRESYNC "
                    "(VANISHED needs UID FETCH, CHANGEDSINCE and QRESYNC enabled, RFC 7162)"
                )
            await self.vanished_earlier(command.args["sequence"], changed_since)
        names = {a.name for a in atts}
        self._complete(atts, names, by_uid=by_uid, changed_since=changed_since)
        uids = self._resolve(command)
        if not uids:
            return
        if {a.name for a in atts} <= _FLAGS_ONLY:
            await self._fetch_flags(atts, uids, changed_since)
            return
        await self._fetch_messages(atts, names, uids, changed_since)

    async def fetch_unasked(self, atts: list[FetchAtt], uids: list[int]) -> None:
        """NOTIFY's MessageNew (fetch-att …): these messages fetched as UID FETCH would."""
        atts = list(atts)
        names = {a.name for a in atts}
        self._complete(atts, names, by_uid=True, changed_since=None)
        if {a.name for a in atts} <= _FLAGS_ONLY:
            await self._fetch_flags(atts, uids, None)
        else:
            await self._fetch_messages(atts, names, uids, None)

    def _complete(
        self, atts: list[FetchAtt], names: set[str], *, by_uid: bool, changed_since: int | None
    ) -> None:
        """UID FETCH always shows the UID; CHANGEDSINCE or MODSEQ enable CONDSTORE."""
        if by_uid and "UID" not in names:
            atts.insert(0, FetchAtt("UID"))
        if changed_since is not None or "MODSEQ" in names:
            self.condstore = True
            if "MODSEQ" not in names:
                atts.append(FetchAtt("MODSEQ"))

    async def _fetch_messages(
        self, atts: list[FetchAtt], names: set[str], uids: list[int], changed_since: int | None
    ) -> None:
        sel = self._sel()
        fields = _fields(atts)
        newly_seen = await self._mark_seen(atts, names, uids)
        if newly_seen and "FLAGS" not in names:
            atts.append(FetchAtt("FLAGS"))  # RFC 3501 §6.4.5: tell the client \Seen was set
        everything = len(uids) == len(sel.uids) and changed_since is None
        rows = await self.store.fetch_rows(sel.info.id, uids, fields, everything=everything)
        blob_cache: dict[int, bytes] = {}
        column_index = {name: i + 1 for i, name in enumerate(fields)}
        for uid in uids:
            row = rows.get(uid)
            if row is None:
                continue  # expunged by another session, not announced yet
            if changed_since is not None and row[column_index["modseq"]] <= changed_since:
                continue
            seq = sel.seq_of(uid)
            if seq is None:
                continue
            wanted = (
                atts
                if uid in newly_seen or "FLAGS" in names
                else [a for a in atts if a.name != "FLAGS"]
            )
            items = await self._fetch_items(wanted, uid, row, column_index, blob_cache)
            self._out.append(b"* %d FETCH (" % seq + b" ".join(items) + b")\r\n")
            if len(self._out) >= 256:
                await self.flush()

    async def _mark_seen(self, atts: list[FetchAtt], names: set[str], uids: list[int]) -> set[int]:
        """Set \\Seen when the items ask for it; the UIDs whose flags changed."""
        sel = self._sel()
        newly_seen: set[int] = set()
        if sel.readonly or not _sets_seen(atts, names):
            return newly_seen
        result = await self.store.store_flags(sel.info.id, uids, "add", ["\\Seen"])
        for state in result.changed:
            sel.own_changes[state.uid] = state.modseq
            newly_seen.add(state.uid)
        return newly_seen

    async def _fetch_flags(
        self, atts: list[FetchAtt], uids: list[int], changed_since: int | None
    ) -> None:
        """FETCH of UID, FLAGS, MODSEQ only (what clients sync with): one query, tight loop."""
        sel = self._sel()
        everything = len(uids) == len(sel.uids)
        rows = await self.store.flag_rows(sel.info.id, uids, everything=everything)
        names = [a.name for a in atts]
        recent = sel.recent
        rendered: dict[tuple[int, str | None, bool], bytes] = {}
        out = self._out
        seq_of = sel.seq_of
        for uid, bits, keywords, modseq in rows:
            if changed_since is not None and modseq <= changed_since:
                continue
            seq = seq_of(uid)
            if seq is None:
                continue
            items = []
            for name in names:
                if name == "UID":
                    items.append(b"UID %d" % uid)
                elif name == "FLAGS":
                    key = (bits, keywords, uid in recent)
                    text = rendered.get(key)
                    if text is None:
                        text = rendered[key] = b"FLAGS " + self._flag_list(uid, bits, keywords)
                    items.append(text)
                else:
                    items.append(b"MODSEQ (%d)" % modseq)
            out.append(b"* %d FETCH (%s)\r\n" % (seq, b" ".join(items)))
            if len(out) >= 4096:
                await self.flush()

    # --- one message ----------------------------------------------------------------------

    async def _fetch_items(
        self,
        atts: list[FetchAtt],
        uid: int,
        row: Sequence[Any],
        col: dict[str, int],
        blobs: dict[int, bytes],
    ) -> list[bytes]:
        items: list[bytes] = []
        structure: Part | None = None
        raw: bytes | None = None
        for att in atts:
            name = att.name
            item = self._stored_item(name, uid, row, col)
            if item is not None:
                items.append(item)
                continue
            if structure is None:
                structure = Part.from_json(json.loads(row[col["body_structure"]]))
            if name in ("BODY", "BODYSTRUCTURE") and att.section is None:
                extensible = name == "BODYSTRUCTURE"
                items.append(
                    name.encode() + b" " + r.body_structure(structure, extensible=extensible)
                )
                continue
            if raw is None:
                raw = await self._blob(row[col["blob_id"]], blobs)
            items.append(self._body_item(att, raw, structure))
        return items

    def _stored_item(
        self, name: str, uid: int, row: Sequence[Any], col: dict[str, int]
    ) -> bytes | None:
        """An item answered from the stored columns, or None for body items."""
        if name == "UID":
            return b"UID %d" % uid
        if name == "FLAGS":
            return b"FLAGS " + self._flag_list(uid, row[col["flags"]], row[col["keywords"]])
        if name == "MODSEQ":
            return b"MODSEQ (%d)" % row[col["modseq"]]
        if name == "INTERNALDATE":
            return b"INTERNALDATE " + r.internal_date(row[col["internal_date"]])
        if name == "RFC822.SIZE":
            return b"RFC822.SIZE %d" % row[col["size"]]
        if name == "ENVELOPE":
            envelope = Envelope.from_json(json.loads(row[col["envelope"]]))
            return b"ENVELOPE " + r.envelope(envelope)
        return None

    async def _blob(self, blob_id: int, cache: dict[int, bytes]) -> bytes:
        data = cache.get(blob_id)
        if data is None:
            data = await self.store.blob(blob_id)
            cache.clear()
            cache[blob_id] = data
        return data

    def _body_item(self, att: FetchAtt, raw: bytes, structure: Part) -> bytes:
        name = att.name
        if name == "RFC822":
            return b"RFC822 " + r.literal(raw)
        if name == "RFC822.HEADER":
            return b"RFC822.HEADER " + r.literal(raw[: structure.body_start])
        if name == "RFC822.TEXT":
            return b"RFC822.TEXT " + r.literal(raw[structure.body_start :])
        assert att.section is not None
        try:
            data = self._section(att, raw, structure)
        except r.UndecodablePart:  # RFC 3516: a part that exists, its encoding unknown
            raise ImapError(
                "Partie impossible à décoder (cannot decode this part)", code="UNKNOWN-CTE"
            ) from None
        except r.SectionError:  # no such part: NIL, as BODY[…] answers
            return att.label().encode() + b" NIL"
        if name == "BINARY.SIZE":
            return f"BINARY.SIZE[{att.section.label()}] {len(data)}".encode()
        data = r.partial(data, att.partial)
        if name == "BINARY" and b"\0" in data:
            return att.label().encode() + b" " + r.literal8(data)  # RFC 3516: NUL in literal8 only
        return att.label().encode() + b" " + r.literal(data)

    @staticmethod
    def _section(att: FetchAtt, raw: bytes, structure: Part) -> bytes:
        """BODY[section] as stored; BINARY[part] with its transfer encoding undone."""
        assert att.section is not None
        if att.name == "BODY":
            return r.section_bytes(raw, structure, att.section)
        part = r.find_part(structure, att.section.part) if att.section.part else structure
        if part.is_multipart or part.is_message:
            return r.section_bytes(raw, structure, att.section)
        return r.decode_part(raw, part)
