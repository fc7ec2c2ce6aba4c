"""Message disposition notifications (RFC 8098) in the ANS form (DOMAIN.md §5).

When a mail carrying documents asks for one (`Disposition-Notification-To`),
the receiving system answers `processed` once the documents are integrated,
or `processed/Error: <code>^<libellé>` with the subject `[KO Intégration
système !][<code>] <original subject>`.

Who gets one (`mdn_target`): the sender of the mail, the envelope sender the
doors checked (submission binds it to the login and the From header, the MX to
the peer operator), and only when the mail asks for it with
`Disposition-Notification-To` naming that same address. RFC 8098 §2.1: an MDN
requested for another address than the return path may be declined: here it
always is, so no sender can make us mail a third party. Never for the null
sender (RFC 3464 §2: nothing answers a notification), never to a patient (only a
professional feeds a DMP; no MDN goes from a patient to another patient).

Header fields carrying non-ASCII text (the subject) are RFC 2047 encoded by the
standard library (`email.header`); the body is UTF-8.
"""

from __future__ import annotations

import datetime as dt
import secrets
from email.utils import format_datetime, formatdate, parseaddr

from mss.core.mime import Headers, decode_words
from mss.delivery.reports import encoded

DISPOSITION = "automatic-action/MDN-sent-automatically; processed"


def requested_by(headers: Headers) -> str | None:
    """The address the sender wants the MDN at, or None."""
    value = headers.get("Disposition-Notification-To")
    if not value:
        return None
    _name, address = parseaddr(value)
    return address or None


def mdn_target(headers: Headers, sender: str, patient_domain: str) -> str | None:
    """Where the MDN of this mail goes (see the module's docstring), or None: none."""
    asked = requested_by(headers)
    if not sender or not asked or asked.lower() != sender.lower():
        return None
    if sender.rpartition("@")[2].lower() == patient_domain.lower():
        return None
    return sender


def build_mdn(
    *,
    hostname: str,
    final_recipient: str,
    to: str,
    original_subject: str,
    original_message_id: str | None,
    error: tuple[int, str] | None = None,
    now: dt.datetime | None = None,
) -> bytes:
    """A multipart/report MDN from the patient's mailbox, `processed` or in error."""
    boundary = f"mss-mdn-{secrets.token_hex(8)}"
    subject = decode_words(original_subject).replace("\r", " ").replace("\n", " ")
    if error is None:
        title = f"Accusé de traitement : {subject}"
        disposition = DISPOSITION
        text = (
            "Les documents de votre message ont été intégrés au dossier médical du patient.\r\n"
            "(The documents of your message were integrated into the patient's record.)\r\n"
        )
    else:
        code, label = error
        title = f"[KO Intégration système !][{code}] {subject}"
        disposition = f"{DISPOSITION}/Error: {code}^{label}"
        text = (
            "Les documents de votre message n'ont pas pu être intégrés au dossier médical du "
            f"patient : {code} {label}.\r\n"
            "(The documents of your message could not be integrated into the patient's "
            "record.)\r\n"
        )
    date = format_datetime(now) if now is not None else formatdate(localtime=False)
    lines = [
        f"From: <{final_recipient}>",
        f"To: <{to}>",
        f"Subject: {encoded(title)}",
        f"Date: {date}",
        f"Message-ID: <mdn.{secrets.token_hex(12)}@{hostname}>",
        "MIME-Version: 1.0",
        "Auto-Submitted: auto-replied",
        "Content-Type: multipart/report; report-type=disposition-notification;",
        f' boundary="{boundary}"',
        "",
        f"--{boundary}",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        "",
        text,
        f"--{boundary}",
        "Content-Type: message/disposition-notification",
        "",
        f"Reporting-UA: {hostname}; mss",
        f"Original-Recipient: rfc822;{final_recipient}",
        f"Final-Recipient: rfc822;{final_recipient}",
    ]
    if original_message_id:
        lines.append(f"Original-Message-ID: {original_message_id}")
    lines += [f"Disposition: {disposition}", "", f"--{boundary}--", ""]
    return "\r\n".join(lines).encode()
