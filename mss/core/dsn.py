"""Delivery Status Notification parameters of SMTP (RFC 3461), parsed and encoded.

MAIL FROM: `RET=FULL|HDRS`, `ENVID=xtext`; RCPT TO: `NOTIFY=NEVER` or a list of
`SUCCESS,FAILURE,DELAY`, `ORCPT=addr-type;xtext`. Values are xtext (§4): any
octet may be written `+HH`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mss.core.errors import CoreValueError

_XTEXT_RE = re.compile(r"\+([0-9A-F]{2})")
MAX_ENVID = 100  # RFC 3461 §4.4


class DSNParamError(CoreValueError):
    """A malformed DSN parameter; the message says which."""


def xtext_decode(value: str) -> str:
    if any(ord(c) < 33 or ord(c) > 126 or c == "=" for c in value):
        raise DSNParamError("xtext may only hold printable ASCII without '='")
    if "+" in _XTEXT_RE.sub("", value):
        raise DSNParamError("'+' in xtext must be followed by two hex digits")
    return _XTEXT_RE.sub(lambda m: chr(int(m.group(1), 16)), value)


def xtext_encode(value: str) -> str:
    return "".join(c if 33 <= ord(c) <= 126 and c not in "+=" else f"+{ord(c):02X}" for c in value)


@dataclass(frozen=True, slots=True)
class MailDSN:
    ret: str | None = None  # FULL or HDRS
    envid: str | None = None


@dataclass(frozen=True, slots=True)
class RcptDSN:
    notify: frozenset[str] = frozenset({"FAILURE"})  # RFC 3461 §4.1: FAILURE (and DELAY) by default
    notify_given: bool = False
    orcpt: str | None = None  # "rfc822;address"

    def wants(self, event: str) -> bool:
        return event in self.notify


def parse_mail_param(dsn: MailDSN, key: str, value: str) -> MailDSN:
    if key == "RET":
        if dsn.ret is not None or value.upper() not in ("FULL", "HDRS"):
            raise DSNParamError("RET must be FULL or HDRS, once")
        return MailDSN(value.upper(), dsn.envid)
    if key == "ENVID":
        if dsn.envid is not None or not value or len(value) > MAX_ENVID:
            raise DSNParamError("ENVID must be given once, 1-100 characters")
        return MailDSN(dsn.ret, xtext_decode(value))
    raise DSNParamError(f"unknown MAIL parameter {key}")


def parse_rcpt_param(dsn: RcptDSN, key: str, value: str) -> RcptDSN:
    if key == "NOTIFY":
        if dsn.notify_given:
            raise DSNParamError("NOTIFY given twice")
        items = {v.strip().upper() for v in value.split(",")}
        if items == {"NEVER"}:
            return RcptDSN(frozenset(), True, dsn.orcpt)
        if not items or not items <= {"SUCCESS", "FAILURE", "DELAY"}:
            raise DSNParamError("NOTIFY must be NEVER or SUCCESS,FAILURE,DELAY")
        return RcptDSN(frozenset(items), True, dsn.orcpt)
    if key == "ORCPT":
        addr_type, semi, address = value.partition(";")
        if not semi or not addr_type or not address or dsn.orcpt is not None:
            raise DSNParamError("ORCPT must be addr-type;xtext, once")
        return RcptDSN(dsn.notify, dsn.notify_given, f"{addr_type};{xtext_decode(address)}")
    raise DSNParamError(f"unknown RCPT parameter {key}")


def rcpt_params_text(dsn: RcptDSN) -> list[str]:
    """The RCPT parameters to pass on when relaying to a DSN-capable server."""
    params = []
    if dsn.notify_given:
        params.append("NOTIFY=" + (",".join(sorted(dsn.notify)) if dsn.notify else "NEVER"))
    if dsn.orcpt:
        addr_type, _, address = dsn.orcpt.partition(";")
        params.append(f"ORCPT={addr_type};{xtext_encode(address)}")
    return params
