"""SEARCH and SORT arguments (RFC 3501 §6.4.4, RFC 4731 ESEARCH, RFC 5256 SORT, RFC 5267
ESORT and contexts, RFC 5032 WITHIN, RFC 7162 MODSEQ): pure.

`search_keys(reader, charset)` reads the criteria of a SEARCH command into a
tree of `SearchKey`s: `kind` names the key (FLAG, STRING, DATE, HEADER, UID,
SEQ, AND, OR, NOT...), `args` holds its arguments (sequence sets, dates,
strings, nested keys). The store turns the tree into a query. `search_args`,
`sort_args` and `cancelupdate_args` read whole commands: the result options of
`RETURN (...)`, the charset, the sort criteria, THREAD's algorithm.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mss.core.digits import ascii_digits
from mss.imap.parsing.tokens import ParseError, Reader


@dataclass(frozen=True, slots=True)
class SearchKey:
    kind: str
    args: tuple[Any, ...] = ()


_FLAG_KEYS = {
    "ANSWERED": ("\\Answered", True),
    "DELETED": ("\\Deleted", True),
    "DRAFT": ("\\Draft", True),
    "FLAGGED": ("\\Flagged", True),
    "SEEN": ("\\Seen", True),
    "UNANSWERED": ("\\Answered", False),
    "UNDELETED": ("\\Deleted", False),
    "UNDRAFT": ("\\Draft", False),
    "UNFLAGGED": ("\\Flagged", False),
    "UNSEEN": ("\\Seen", False),
}
_STRING_KEYS = frozenset(["BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO"])
_DATE_KEYS = frozenset(["BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE"])
# RFC 4731 §3.1 search-return-opt, RFC 5267 §4 UPDATE and PARTIAL (SAVE needs SEARCHRES,
# RFC 5182, not offered)
RETURN_OPTIONS = ("MIN", "MAX", "ALL", "COUNT", "UPDATE", "PARTIAL")
CHARSETS = ("US-ASCII", "UTF-8")


def _search_string(reader: Reader, charset: str) -> str:
    raw = reader.astring()
    try:
        return raw.decode("utf-8" if charset == "UTF-8" else "ascii")
    except UnicodeDecodeError:
        raise ParseError(f"search string is not {charset}") from None


def _search_key(reader: Reader, charset: str, depth: int = 0) -> SearchKey:
    if depth > 50:
        raise ParseError("search keys nested too deeply")
    if reader.maybe(b"("):
        keys = search_keys(reader, charset, depth + 1, closing=True)
        return SearchKey("AND", (tuple(keys),))
    byte = reader.peek()
    if byte is not None and (0x30 <= byte <= 0x39 or byte == 0x2A):
        return SearchKey("SEQ", (reader.sequence_set(),))
    word = reader.atom().upper()
    if word in ("ALL", "NEW", "OLD", "RECENT"):
        return SearchKey(word)
    if word in _FLAG_KEYS:
        flag, positive = _FLAG_KEYS[word]
        return SearchKey("FLAG", (flag, positive))
    reader.space()
    if word in _STRING_KEYS:
        return SearchKey("STRING", (word, _search_string(reader, charset)))
    if word in _DATE_KEYS:
        return SearchKey("DATE", (word, reader.date()))
    if word == "HEADER":
        name = reader.astring().decode("ascii", "replace")
        reader.space()
        return SearchKey("HEADER", (name, _search_string(reader, charset)))
    if word in ("KEYWORD", "UNKEYWORD"):
        return SearchKey("FLAG", (reader.flag(), word == "KEYWORD"))
    if word in ("LARGER", "SMALLER"):
        return SearchKey(word, (reader.number(wide=True),))
    if word in ("OLDER", "YOUNGER"):  # RFC 5032 WITHIN
        return SearchKey(word, (reader.number(nonzero=True),))
    if word == "UID":
        return SearchKey("UID", (reader.sequence_set(),))
    if word == "NOT":
        return SearchKey("NOT", (_search_key(reader, charset, depth + 1),))
    if word == "OR":
        first = _search_key(reader, charset, depth + 1)
        reader.space()
        return SearchKey("OR", (first, _search_key(reader, charset, depth + 1)))
    if word == "MODSEQ":  # RFC 7162 §3.1.5; the entry name and type are ignored
        if reader.peek_is(b'"'):
            reader.quoted()
            reader.space()
            reader.atom()
            reader.space()
        return SearchKey("MODSEQ", (reader.number(wide=True),))
    raise ParseError(f"unknown search key {word}")


def search_keys(
    reader: Reader, charset: str, depth: int = 0, closing: bool = False
) -> list[SearchKey]:
    keys = [_search_key(reader, charset, depth)]
    while True:
        if closing and reader.maybe(b")"):
            return keys
        if not closing and reader.at_end():
            return keys
        reader.space()
        keys.append(_search_key(reader, charset, depth))


# --- whole commands ------------------------------------------------------------------------


def _partial(word: str) -> tuple[int, int]:
    """RFC 5267 §4 PARTIAL `PARTIAL lo:hi`: 1-based positions, in either order."""
    low, colon, high = word.partition(":")
    if not (colon and ascii_digits(low) and ascii_digits(high)):
        raise ParseError(f"PARTIAL needs a range of positions like 1:100, not {word}")
    first, last = sorted((int(low), int(high)))
    if first < 1 or last > 0xFFFFFFFF:
        raise ParseError(f"PARTIAL positions are between 1 and 4294967295, not {word}")
    return first, last


def return_options(reader: Reader) -> tuple[tuple[str, ...] | None, tuple[int, int] | None]:
    """RFC 4731 §3.1 `RETURN (opt ...) ` (None when absent, `()` means ALL), with the
    UPDATE and PARTIAL options of RFC 5267 §4: (options, partial range)."""
    if not reader.maybe_word(b"RETURN "):
        return None, None
    words = [word.upper() for word in reader.list_of()]
    reader.space()
    partial = None
    if "PARTIAL" in words:
        at = words.index("PARTIAL")
        if at + 1 == len(words):
            raise ParseError("PARTIAL needs a range of positions like 1:100")
        partial = _partial(words.pop(at + 1))
    unknown = [word for word in words if word not in RETURN_OPTIONS]
    if unknown:
        raise ParseError(f"unknown RETURN option {unknown[0]}")
    return tuple(o for o in RETURN_OPTIONS if o in words) or ("ALL",), partial


def _charset(reader: Reader) -> str:
    charset = reader.astring().decode("ascii", "replace").upper()
    reader.space()
    return charset


def _keys_or_badcharset(reader: Reader, charset: str) -> dict[str, Any]:
    if charset not in CHARSETS:
        reader.text()  # the rest is not worth parsing: the answer is NO [BADCHARSET]
        return {"badcharset": charset}
    return {"keys": search_keys(reader, charset), "charset": charset}


def search_args(reader: Reader) -> dict[str, Any]:
    """`SEARCH [RETURN (...)] [CHARSET c] keys` (RFC 3501 §6.4.4, RFC 4731 §3.1)."""
    reader.space()
    returns, partial = return_options(reader)
    charset = _charset(reader) if reader.maybe_word(b"CHARSET ") else "US-ASCII"
    return {"return": returns, "partial": partial, **_keys_or_badcharset(reader, charset)}


# RFC 5256 §3 sort-key, RFC 5957 DISPLAYFROM and DISPLAYTO
SORT_KEYS = ("ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO")


def _sort_criteria(reader: Reader) -> tuple[tuple[str, bool], ...]:
    """`(sort-criterion ...)`, each `[REVERSE] key`: (key, reversed) pairs."""
    criteria: list[tuple[str, bool]] = []
    reverse = False
    for word in (w.upper() for w in reader.list_of()):
        if word == "REVERSE" and not reverse:
            reverse = True
            continue
        if word not in SORT_KEYS:
            raise ParseError(f"unknown sort key {word}")
        criteria.append((word, reverse))
        reverse = False
    if reverse or not criteria:
        raise ParseError("sort criteria end with a sort key: (REVERSE DATE)")
    return tuple(criteria)


def sort_args(reader: Reader) -> dict[str, Any]:
    """`SORT [RETURN (...)] (criteria) charset keys` (RFC 5256 §3, RFC 5267 ESORT)."""
    reader.space()
    returns, partial = return_options(reader)
    criteria = _sort_criteria(reader)
    reader.space()
    charset = _charset(reader)
    keys = _keys_or_badcharset(reader, charset)
    return {"return": returns, "partial": partial, "criteria": criteria, **keys}


def cancelupdate_args(reader: Reader) -> dict[str, Any]:
    """`CANCELUPDATE "tag" ...` (RFC 5267 §4)."""
    tags = []
    while reader.maybe(b" "):
        tags.append(reader.quoted().decode("ascii", "replace"))
    if not tags:
        raise ParseError("CANCELUPDATE needs the tag of a search")
    return {"tags": tags}


def thread_args(reader: Reader) -> dict[str, Any]:
    """`THREAD algorithm charset keys` (RFC 5256 §3): the charset is required."""
    reader.space()
    algorithm = reader.atom().upper()
    reader.space()
    return {"algorithm": algorithm, **_keys_or_badcharset(reader, _charset(reader))}
