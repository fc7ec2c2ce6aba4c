"""What may not reach a patient's mailbox, decided on the mail's bytes alone: parts the
parse did not see (a document might hide there), a document invisible to the patient
(INVISIBLE_PATIENT, however declared), an IHE_XDM.ZIP that cannot be read. The
pipeline refuses such a mail at DATA; `mss dmp check` says the same of a file.
"""

from __future__ import annotations

from mss.core.mime import Attachment, ParsedMessage
from mss.dmp.mail import XDMSummary, xdm_summary
from mss.errors import Rejection

INVISIBLE_TO_PATIENT = Rejection(
    550,
    "5.7.1",
    "Un document marqué invisible pour le patient (INVISIBLE_PATIENT) ne peut pas lui être "
    "adressé : déposez-le dans son DMP par l'API (a document invisible to the patient cannot "
    "be mailed to them)",
)
UNREADABLE_XDM = Rejection(
    550,
    "5.6.0",
    "Archive IHE_XDM.ZIP illisible ou non conforme (zip corrompu, METADATA.XML absent ou "
    "illisible, archive trop volumineuse) : corrigez-la avant de renvoyer le message "
    "(unreadable or non-conforming IHE_XDM.ZIP archive)",
)
UNCLEAR_TO_PATIENT = Rejection(
    550,
    "5.6.0",
    "Structure du message trop profonde, trop vaste ou ambiguë pour être remise à un patient "
    "(message structure too deep, too large or ambiguous to be delivered to a patient)",
)


def documents_to_patient(
    raw: bytes, message: ParsedMessage, attachments: list[Attachment]
) -> XDMSummary:
    """The XDM summary of a professional's mail to a patient, or the Rejection of a mail
    that may not reach them: parts unseen (a document might hide there), a document
    invisible to the patient, an XDM that cannot be read (also `mss dmp check`'s rule)."""
    if not message.complete:
        raise UNCLEAR_TO_PATIENT
    xdm = xdm_summary(raw, attachments)
    if xdm.invisible:
        raise INVISIBLE_TO_PATIENT
    if xdm.unreadable:
        raise UNREADABLE_XDM
    return xdm
