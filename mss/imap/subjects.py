"""The base subject of a message (RFC 5256 §2.1), by which THREAD ORDEREDSUBJECT and
REFERENCES group messages (and SORT SUBJECT orders them): the subject without its
"Re:", "Fwd:", "[list]" leaders, "(fwd)" trailers and "[fwd: …]" wrapping, spaces
collapsed; and whether any of those said the message was a reply or a forward.

Walked with two indices over the text, never re-scanning or copying it: a subject of
thousands of blobs or trailers costs its length, not its square.
"""

from __future__ import annotations

import re

from mss.core.mime.headers import decode_words

_SPACES = re.compile(r"\s+")
_BLOB = re.compile(r"\[[^\[\]]*\] *")  # subj-blob
_REFWD = re.compile(r"(?:re|fwd?) *", re.IGNORECASE)  # subj-refwd without its blob and ":"


def base_subject(subject: str | None) -> tuple[str, bool]:
    """(base subject, was a reply or forward) of a Subject header's value."""
    text = _SPACES.sub(" ", decode_words(subject or ""))
    start, end, reply = 0, len(text), False
    while True:
        end, trimmed = _strip_trailers(text, start, end)
        start, led = _strip_leaders(text, start, end)
        reply = reply or trimmed or led
        if end - start >= 6 and text[start : start + 5].lower() == "[fwd:" and text[end - 1] == "]":
            start, end, reply = start + 5, end - 1, True  # step 6, then again from step 2
            continue
        return text[start:end], reply


def _strip_trailers(text: str, start: int, end: int) -> tuple[int, bool]:
    """Step 2: "(fwd)" and spaces at the end, as often as they come."""
    forwarded = False
    while end > start:
        if text[end - 1] == " ":
            end -= 1
        elif end - start >= 5 and text[end - 5 : end].lower() == "(fwd)":
            end, forwarded = end - 5, True
        else:
            break
    return end, forwarded


def _strip_leaders(text: str, start: int, end: int) -> tuple[int, bool]:
    """Steps 3–5: leading spaces, "Re:"/"Fwd:" behind any blobs; else a run of leading
    blobs (the last one kept when nothing would be left after it), until neither."""
    reply = False
    while True:
        while start < end and text[start] == " ":
            start += 1
        blobs = _blob_run(text, start, end)
        leader = _refwd(text, blobs[-1], end)
        if leader is not None:
            start, reply = leader, True
            continue
        # Step 4: a leader cannot start inside the run (it would need "re" after the
        # run's last blob): drop its blobs, keeping one that is all that is left
        kept = [b for b in blobs[1:] if text[b:end].strip(" ")]
        if not kept:
            return start, reply
        start = kept[-1]


def _blob_run(text: str, start: int, end: int) -> list[int]:
    """Where each blob of the run at `start` ends, after `start` itself."""
    ends = [start]
    while (blob := _BLOB.match(text, ends[-1], end)) is not None:
        ends.append(blob.end())
    return ends


def _refwd(text: str, at: int, end: int) -> int | None:
    """Where a "re"/"fw"/"fwd" [blob] ":" at `at` ends, else None."""
    word = _REFWD.match(text, at, end)
    if word is None:
        return None
    after = word.end()
    blob = _BLOB.match(text, after, end)
    if blob is not None:
        after = blob.end()
    return after + 1 if after < end and text[after] == ":" else None
