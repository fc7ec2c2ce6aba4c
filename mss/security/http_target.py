"""What a request's target (its path and query) may hold before any route reads it, as
pure functions: percent-decoded, it is UTF-8 (RFC 3986 §2.5, RFC 3987) without NUL
(PostgreSQL cannot hold a NUL in a text value, and no identifier, name or date has one).

`target_problem` says what is wrong (French with the English meaning) or None; each
app renders the refusal in its own format (a FHIR OperationOutcome, the API's JSON, the
space's French page). `encode_raw_target` turns the raw non-ASCII bytes some clients put
in a request line (RFC 9112 §3.2 forbids them) into percent escapes, so that the HTTP
parser hands the request to the app (which serves UTF-8 and refuses anything else)
rather than answering a bare "Invalid HTTP request received."
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.types import Scope

# (French, English)
Problem = tuple[str, str]
NOT_UTF8 = (
    "adresse de la requête mal encodée : les caractères accentués s'écrivent en UTF-8",
    "request target is not UTF-8",
)
HAS_NUL = ("caractère nul dans l'adresse de la requête", "NUL character in request target")


def _problem(raw: bytes) -> Problem | None:
    decoded = unquote_to_bytes(raw)
    try:
        text = decoded.decode("utf-8")
    except UnicodeDecodeError:
        return NOT_UTF8
    return HAS_NUL if "\x00" in text else None


def target_problem(scope: Scope) -> Problem | None:
    """What is wrong with the path or the query string of an HTTP scope, if anything."""
    raw_path = scope.get("raw_path") or scope.get("path", "").encode("utf-8", "surrogatepass")
    query = scope.get("query_string", b"").replace(b"+", b" ")
    return _problem(raw_path) or _problem(query)


def encode_raw_target(line: bytes) -> bytes:
    """A request line (or its start) with each byte over 0x7F percent-encoded."""
    if line.isascii():
        return line
    return b"".join(b"%%%02X" % byte if byte > 0x7F else bytes((byte,)) for byte in line)
