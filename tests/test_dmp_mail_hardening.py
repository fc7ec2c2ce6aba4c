"""Document mail to patients that tries to trick the deposit or its MDN (issue 14).

Over real SMTP (submission, STARTTLS), as tests/test_dmp_mail.py: a CDA of another
patient inside an XDM, a mail with nothing to deposit, hostile encodings, corrupt
archives, MDN targets chosen by the sender.
"""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default

from mss.dmp import service
from mss.testing.xdmgen import INS, XDM, XDMDocument, cda

from .harness import Running
from .test_dmp_mail import PATIENT, PRO, _drain, clinic, document_mail

__all__ = ["clinic"]  # the fixture, shared with test_dmp_mail.py

OTHER_INS = "188102B17295165"


async def _mdns(mss: Running, to: str = PRO) -> list[bytes]:
    return [m for m in await mss.inbox(to) if b"disposition-notification" in m]


async def test_a_cda_of_another_patient_inside_an_xdm_is_refused_with_904(
    clinic: Running,
) -> None:
    """METADATA names the recipient, the CDA's recordTarget another patient: 904, as the
    bare route answers; nothing of the mail deposited (the good document beside it neither)."""
    good = XDMDocument(cda())
    stranger = XDMDocument(
        cda(ins=OTHER_INS, extension="CR-2026-0002"), name="DOC0002.XML",
        unique_id="1.2.250.1.999.1.1^CR-2026-0002",
    )  # fmt: skip
    await clinic.submit(PRO, document_mail(XDM([good, stranger]).build()), [PATIENT])
    [result] = await _drain(clinic)
    assert "904" in result
    assert await clinic.store.read(lambda c: service.count_documents(c, INS)) == 0
    await _drain(clinic, "mdn")
    [mdn] = await _mdns(clinic)
    assert message_from_bytes(mdn, policy=default)["Subject"].startswith(
        "[KO Intégration système !][904]"
    )


async def test_a_cda_labelled_as_a_pdf_inside_an_xdm_is_still_checked(clinic: Running) -> None:
    """The declared type does not hide a CDA from the check."""
    stranger = XDMDocument(cda(ins=OTHER_INS), mime_type="application/pdf")
    await clinic.submit(PRO, document_mail(XDM([stranger]).build()), [PATIENT])
    [result] = await _drain(clinic)
    assert "904" in result
    assert await clinic.store.read(lambda c: service.count_documents(c, INS)) == 0


async def test_a_cda_without_ins_inside_an_xdm_is_refused_with_903(clinic: Running) -> None:
    await clinic.submit(PRO, document_mail(XDM([XDMDocument(cda(ins=None))]).build()), [PATIENT])
    [result] = await _drain(clinic)
    assert "903" in result
