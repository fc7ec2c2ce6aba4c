"""A fast, pure MIME parser: bytes in, header fields, ENVELOPE and part tree with offsets out.

- `headers`: header sections and structured values (Content-Type, Message-ID…);
- `envelope`: address lists and the IMAP ENVELOPE;
- `structure`: the part tree (BODYSTRUCTURE and offsets) and `parse_message`;
- `attachments`: the leaf parts of a message with their names and decoded bytes;
- `transfer`: Content-Transfer-Encodings undone, binary parts re-encoded.

The names most callers need are importable from `mss.core.mime` itself.
"""

from mss.core.mime.attachments import Attachment, leaves
from mss.core.mime.envelope import EnvAddress, Envelope, build_envelope, parse_address_list
from mss.core.mime.headers import (
    MAX_HEADER_FIELDS,
    Headers,
    Params,
    decode_header_bytes,
    decode_text,
    decode_words,
    find_body_start,
    parse_content_type,
    parse_disposition,
    parse_headers,
    parse_msg_ids,
    parse_params,
    searchable_headers,
)
from mss.core.mime.structure import (
    MAX_DEPTH,
    MAX_PARTS,
    ParsedMessage,
    Part,
    parse_message,
    split_multipart,
    with_prefix,
)
from mss.core.mime.transfer import (
    UnknownEncoding,
    binary_as_base64,
    decode_body,
    decode_strict,
)

__all__ = [
    "MAX_DEPTH",
    "MAX_HEADER_FIELDS",
    "MAX_PARTS",
    "Attachment",
    "EnvAddress",
    "Envelope",
    "Headers",
    "Params",
    "ParsedMessage",
    "Part",
    "UnknownEncoding",
    "binary_as_base64",
    "build_envelope",
    "decode_body",
    "decode_header_bytes",
    "decode_strict",
    "decode_text",
    "decode_words",
    "find_body_start",
    "leaves",
    "parse_address_list",
    "parse_content_type",
    "parse_disposition",
    "parse_headers",
    "parse_message",
    "parse_msg_ids",
    "parse_params",
    "searchable_headers",
    "split_multipart",
    "with_prefix",
]  # fmt: skip
