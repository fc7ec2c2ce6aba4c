"""THREAD's grammar (RFC 5256 §5): `THREAD algorithm charset search-criteria`; the
charset is required and the criteria are SEARCH's (`parsing.search`)."""

from __future__ import annotations

from typing import Any

from mss.imap.parsing.search import search_keys
from mss.imap.parsing.tokens import Reader

CHARSETS = ("US-ASCII", "UTF-8")


def g_thread(r: Reader) -> dict[str, Any]:
    r.space()
    algorithm = r.atom().upper()
    r.space()
    charset = r.astring().decode("ascii", "replace").upper()
    r.space()
    if charset not in CHARSETS:
        r.pos = len(r.data)  # the rest is not worth parsing: the answer is NO [BADCHARSET]
        return {"algorithm": algorithm, "badcharset": charset}
    return {"algorithm": algorithm, "charset": charset, "keys": search_keys(r, charset)}
