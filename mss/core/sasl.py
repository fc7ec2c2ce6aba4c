"""SASL messages of the mechanisms mss offers, parsed (pure; SMTP and IMAP share it).

PLAIN (RFC 4616), LOGIN (draft-murchison-sasl-login), XOAUTH2 (Google's
format), OAUTHBEARER (RFC 7628 §3.1), EXTERNAL (RFC 4422 App. A).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from mss.core.errors import CoreValueError


class SaslError(CoreValueError):
    """A malformed SASL message."""


@dataclass(frozen=True, slots=True)
class PlainCredentials:
    authzid: str
    authcid: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class BearerCredentials:
    user: str
    token: str = field(repr=False)


def decode_base64(data: str | bytes) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise SaslError("not valid base64") from None


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SaslError("not valid UTF-8") from None


def parse_plain(raw: bytes) -> PlainCredentials:
    """`[authzid] NUL authcid NUL passwd` (RFC 4616 §2)."""
    parts = raw.split(b"\0")
    if len(parts) != 3 or not parts[1] or not parts[2]:
        raise SaslError("PLAIN expects authzid NUL authcid NUL password")
    return PlainCredentials(_text(parts[0]), _text(parts[1]), _text(parts[2]))


def parse_xoauth2(raw: bytes) -> BearerCredentials:
    """`user=` USER ^A `auth=Bearer ` TOKEN ^A ^A."""
    text = _text(raw)
    fields = dict(_pairs(text.rstrip("\x01").split("\x01")))
    return _bearer(fields.get("user", ""), fields.get("auth", ""))


def parse_oauthbearer(raw: bytes) -> BearerCredentials:
    """`n,a=USER,` ^A `auth=Bearer TOKEN` ^A ^A (RFC 7628 §3.1)."""
    text = _text(raw)
    header, sep, rest = text.partition("\x01")
    if not sep or not header.startswith(("n,", "y,")):
        raise SaslError("OAUTHBEARER expects a GS2 header")
    user = ""
    for item in header.split(",")[1:]:
        if item.startswith("a="):
            user = item[2:].replace("=2C", ",").replace("=3D", "=")
    fields = dict(_pairs(rest.rstrip("\x01").split("\x01")))
    return _bearer(user, fields.get("auth", ""))


def _pairs(items: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for item in items:
        key, eq, value = item.partition("=")
        if not eq:
            raise SaslError(f"expected key=value, got {item!r}")
        pairs.append((key, value))
    return pairs


def _bearer(user: str, auth: str) -> BearerCredentials:
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise SaslError("expected auth=Bearer <token>")
    return BearerCredentials(user, token.strip())


def parse_external(raw: bytes) -> str:
    """The requested authorisation identity of EXTERNAL ('' for the certificate's own)."""
    return _text(raw)
