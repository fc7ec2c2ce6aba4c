"""The base subject of RFC 5256 §2.1, which SORT SUBJECT and THREAD compare: pure.

`base_subject(decoded)` takes the Subject: field with its encoded words decoded (step 1's
conversion) and strips reply and forward markers, mailing-list tags and "(fwd)" trailers;
it also tells whether anything marking a reply or a forward was removed (RFC 5256 §2.1
"the subject is a reply or forward", which THREAD=REFERENCES asks).
"""

from __future__ import annotations

import re

# subj-trailer = "(fwd)" / WSP (step 2)
_TRAILER = re.compile(r"(?:\s|\(fwd\))+\Z", re.IGNORECASE)
# subj-blob = "[" *BLOBCHAR "]" *WSP
_BLOB = r"\[[^\[\]]*\]\s*"
# subj-leader = (*subj-blob subj-refwd) / WSP; subj-refwd = refwd *WSP [subj-blob] ":"
_LEADER = re.compile(rf"\s+|(?:{_BLOB})*(?:re|fwd?)\s*(?:{_BLOB})?:", re.IGNORECASE)
_BLOB_START = re.compile(_BLOB)


def _strip_leaders(text: str) -> tuple[str, bool]:
    """Steps 3 to 5: leaders and (when something is left) blobs, until none is found."""
    reply = False
    while True:
        before = text
        while (leader := _LEADER.match(text)) is not None and leader.end():
            reply = reply or not leader.group().isspace()
            text = text[leader.end() :]
        blob = _BLOB_START.match(text)
        if blob is not None and text[blob.end() :]:  # step 4: never leave the subject empty
            text = text[blob.end() :]
        if text == before:
            return text, reply


def base_subject(decoded: str) -> tuple[str, bool]:
    """(base subject, whether it was a reply or a forward) of RFC 5256 §2.1."""
    text = " ".join(decoded.split())  # step 1: whitespace runs become one space
    reply = False
    while True:
        trailer = _TRAILER.search(text)  # step 2
        if trailer is not None:
            reply = reply or "(" in trailer.group()  # "(fwd)" marks a forward
            text = text[: trailer.start()]
        text, stripped = _strip_leaders(text)  # steps 3 to 5
        reply = reply or stripped
        if text[:5].lower() == "[fwd:" and text.endswith("]"):  # step 6
            text, reply = text[5:-1], True
            continue
        return text, reply
