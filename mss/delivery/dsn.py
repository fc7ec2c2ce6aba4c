"""Delivery status notifications (RFC 3464) in French and English.

Sent to the author of a relayed message when a recipient failed permanently,
or when the queue gave up after `relay.expire_days` (5 days by default), and
when the author asked for success notices (NOTIFY=SUCCESS) that the next
operator cannot give. The report carries the original headers (RET=HDRS, the
default here: health content is not echoed back) or the whole message (RET=FULL).
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from email.utils import format_datetime

from mss.core.mime import decode_words, find_body_start, parse_headers
from mss.delivery.reports import encoded, mailbox

_ACTION_TEXT = {
    "failed": (
        "Votre message n'a pas pu être remis aux destinataires suivants.",
        "Your message could not be delivered to the following recipients.",
    ),
    "relayed": (
        "Votre message a été transmis à l'opérateur du destinataire, "
        "qui ne confirmera pas sa remise.",
        "Your message was relayed to the recipient's operator, which will not confirm delivery.",
    ),
    "delivered": (
        "Votre message a été remis aux destinataires suivants.",
        "Your message was delivered to the following recipients.",
    ),
}
_SUBJECT = {
    "failed": "Échec de distribution / Delivery failure",
    "relayed": "Message transmis / Message relayed",
    "delivered": "Message remis / Message delivered",
}


@dataclass(frozen=True, slots=True)
class RecipientStatus:
    recipient: str
    action: str  # failed, relayed, delivered
    status: str  # enhanced status code, e.g. 5.1.1
    diagnostic: str | None = None  # "smtp; 550 5.1.1 …"
    original_recipient: str | None = None  # ORCPT, "rfc822;address"
    remote_mta: str | None = None


def _header_value(text: str) -> str:
    return "".join(c for c in text if c not in "\r\n")


def build_dsn(
    *,
    reporting_mta: str,
    to: str,
    original: bytes,
    statuses: list[RecipientStatus],
    ret: str | None,
    envid: str | None,
    arrival: dt.datetime,
    now: dt.datetime,
) -> bytes:
    """A multipart/report; report-type=delivery-status message (RFC 3464 §2)."""
    boundary = f"mss-dsn-{secrets.token_hex(12)}"
    status_part = "\r\n\r\n".join(
        [_message_fields(reporting_mta, envid, arrival), *(_fields(s, now) for s in statuses)]
    )
    returned_type, returned = _returned(original, ret)
    parts = [
        f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: 8bit\r\n\r\n{_human_text(statuses)}\r\n",
        f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n{status_part}\r\n",
        f"--{boundary}\r\nContent-Type: {returned_type}\r\n\r\n",
    ]
    head = _head(reporting_mta, to, _subject(statuses[0].action, original), now, boundary)
    return (
        head.encode()
        + "".join(parts).encode("utf-8")
        + returned.rstrip(b"\r\n")
        + f"\r\n\r\n--{boundary}--\r\n".encode()
    )


def _subject(action: str, original: bytes) -> str:
    original_subject = parse_headers(original, 0, find_body_start(original)).get("Subject")
    if not original_subject:
        return _SUBJECT[action]
    return f"{_SUBJECT[action]} : {_header_value(decode_words(original_subject))}"


def _human_text(statuses: list[RecipientStatus]) -> str:
    """The explanation a person reads, in French then in English."""
    french, english = _ACTION_TEXT[statuses[0].action]
    lines = [f"  {s.recipient} : {s.diagnostic or s.status}" for s in statuses]
    return "\r\n".join(
        [
            "Ceci est un message automatique du service de messagerie MSSanté.",
            "",
            french,
            *lines,
            "",
            "This is an automatic message from the MSSanté mail service.",
            "",
            english,
            *lines,
            "",
        ]
    )


def _message_fields(reporting_mta: str, envid: str | None, arrival: dt.datetime) -> str:
    """The per-message fields of the delivery-status part (RFC 3464 §2.2)."""
    fields = [f"Reporting-MTA: dns; {reporting_mta}"]
    if envid:
        fields.append(f"Original-Envelope-Id: {_header_value(envid)}")
    fields.append(f"Arrival-Date: {format_datetime(arrival)}")
    return "\r\n".join(fields)


def _fields(s: RecipientStatus, now: dt.datetime) -> str:
    """The per-recipient fields of the delivery-status part (RFC 3464 §2.3)."""
    fields = []
    if s.original_recipient:
        fields.append(f"Original-Recipient: {_header_value(s.original_recipient)}")
    fields += [f"Final-Recipient: rfc822; {s.recipient}", f"Action: {s.action}",
               f"Status: {s.status}"]  # fmt: skip
    if s.remote_mta:
        fields.append(f"Remote-MTA: dns; {_header_value(s.remote_mta)}")
    if s.diagnostic:
        fields.append(f"Diagnostic-Code: {_header_value(s.diagnostic)}")
    fields.append(f"Last-Attempt-Date: {format_datetime(now)}")
    return "\r\n".join(fields)


def _returned(original: bytes, ret: str | None) -> tuple[str, bytes]:
    """The original message (RET=FULL) or its header section (RFC 3461 §4.3)."""
    if ret == "FULL":
        return "message/rfc822", original
    return "text/rfc822-headers", original[: find_body_start(original)]


def _head(reporting_mta: str, to: str, subject: str, now: dt.datetime, boundary: str) -> str:
    return "\r\n".join(
        [
            f"From: {mailbox('Service de messagerie MSSanté', f'MAILER-DAEMON@{reporting_mta}')}",
            f"To: <{to}>",
            f"Subject: {encoded(subject)}",
            f"Date: {format_datetime(now)}",
            f"Message-ID: <dsn-{secrets.token_hex(12)}@{reporting_mta}>",
            "Auto-Submitted: auto-replied",
            "MIME-Version: 1.0",
            f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
            "",
            "",
        ]
    )
