"""The base subject of a message (RFC 5256 §2.1), by which THREAD ORDEREDSUBJECT and
REFERENCES group messages (and SORT SUBJECT orders them): the subject without its
"Re:", "Fwd:", "[list]" leaders, "(fwd)" trailers and "[fwd: …]" wrapping, spaces
collapsed; and whether any of those said the message was a reply or a forward.
"""

from __future__ import annotations

import re

from mss.core.mime.headers import decode_words

_SPACES = re.compile(r"\s+")
_TRAILER = re.compile(r"(?:\(fwd\)| )$", re.IGNORECASE)  # subj-trailer
_BLOB = r"\[[^\[\]]*\] *"  # subj-blob
_REFWD = re.compile(rf"^(?:{_BLOB})*(?:re|fwd?) *(?:{_BLOB})?:", re.IGNORECASE)  # subj-refwd
_LEADING_BLOB = re.compile(rf"^{_BLOB}")


def base_subject(subject: str | None) -> tuple[str, bool]:
    """(base subject, was a reply or forward) of a Subject header's value."""
    text = _SPACES.sub(" ", decode_words(subject or ""))
    reply = False
    while True:
        text, trimmed = _strip_trailers(text)
        text, led = _strip_leaders(text)
        reply = reply or trimmed or led
        if text[:5].lower() == "[fwd:" and text.endswith("]"):  # step 6
            text, reply = text[5:-1], True
            continue
        return text, reply


def _strip_trailers(text: str) -> tuple[str, bool]:
    """Step 2: "(fwd)" and spaces at the end, as often as they come."""
    forwarded = False
    while (found := _TRAILER.search(text)) is not None:
        forwarded = forwarded or found.group() != " "
        text = text[: found.start()]
    return text, forwarded


def _strip_leaders(text: str) -> tuple[str, bool]:
    """Steps 3–5: leading spaces and "Re:"/"Fwd:" (with their blobs), then a leading
    "[blob]" when something is left after it, until neither is found."""
    reply = False
    while True:
        before = text
        text = text.lstrip(" ")
        while (found := _REFWD.match(text)) is not None:
            text, reply = text[found.end() :].lstrip(" "), True
        blob = _LEADING_BLOB.match(text)
        if blob is not None and text[blob.end() :].strip(" "):
            text = text[blob.end() :]
        if text == before:
            return text, reply
