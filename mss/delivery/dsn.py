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

from mss.core.mime import find_body_start, parse_headers

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
    action = statuses[0].action
    boundary = f"mss-dsn-{secrets.token_hex(12)}"
    original_subject = parse_headers(original, 0, find_body_start(original)).get("Subject")
    subject = _SUBJECT[action] + (
        f" : {_header_value(original_subject)}" if original_subject else ""
    )
    french, english = _ACTION_TEXT[action]
    lines = [f"  {s.recipient} : {s.diagnostic or s.status}" for s in statuses]
    human = "\r\n".join(
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
    per_recipient = []
    for s in statuses:
        fields = []
        if s.original_recipient:
            fields.append(f"Original-Recipient: {_header_value(s.original_recipient)}")
        fields += [
            f"Final-Recipient: rfc822; {s.recipient}",
            f"Action: {s.action}",
            f"Status: {s.status}",
        ]
        if s.remote_mta:
            fields.append(f"Remote-MTA: dns; {_header_value(s.remote_mta)}")
        if s.diagnostic:
            fields.append(f"Diagnostic-Code: {_header_value(s.diagnostic)}")
        fields.append(f"Last-Attempt-Date: {format_datetime(now)}")
        per_recipient.append("\r\n".join(fields))
    message_fields = [f"Reporting-MTA: dns; {reporting_mta}"]
    if envid:
        message_fields.append(f"Original-Envelope-Id: {_header_value(envid)}")
    message_fields.append(f"Arrival-Date: {format_datetime(arrival)}")
    status_part = "\r\n\r\n".join(["\r\n".join(message_fields), *per_recipient])
    if ret == "FULL":
        returned_type, returned = "message/rfc822", original
    else:
        returned_type, returned = "text/rfc822-headers", original[: find_body_start(original)]
    head = "\r\n".join(
        [
            f'From: "Service de messagerie MSSanté" <MAILER-DAEMON@{reporting_mta}>',
            f"To: <{to}>",
            f"Subject: {subject}",
            f"Date: {format_datetime(now)}",
            f"Message-ID: <dsn-{secrets.token_hex(12)}@{reporting_mta}>",
            "Auto-Submitted: auto-replied",
            "MIME-Version: 1.0",
            f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
            "",
            "",
        ]
    )
    parts = [
        f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: 8bit\r\n\r\n{human}\r\n",
        f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n{status_part}\r\n",
        f"--{boundary}\r\nContent-Type: {returned_type}\r\n\r\n",
    ]
    return (
        head.encode()
        + "".join(parts).encode("utf-8")
        + returned.rstrip(b"\r\n")
        + f"\r\n\r\n--{boundary}--\r\n".encode()
    )
