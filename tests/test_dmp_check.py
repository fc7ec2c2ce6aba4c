"""`mss dmp check FILE…` (issue 14, "Tools for the editors who integrate with us"): what a
deposit would do with an IHE_XDM.ZIP, a bare CDA or a whole .eml, without depositing and
without an installation — the real command, run as a subprocess in an empty folder."""

from __future__ import annotations

import json
import subprocess
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mss.delivery.check import check_file
from mss.dmp.errors import MDN_LABELS
from mss.testing.xdmgen import INS, INS_OID, XDM, XDMDocument, cda

from .conftest import run_mss

OTHER_INS = "188102B17295165"  # another ANS test identity
PRO = "dr.dupont@pro.mssante.test"


def _check(
    folder: Path, *files: str, options: tuple[str, ...] = ("--json",)
) -> subprocess.CompletedProcess[str]:
    return run_mss("dmp", "check", *options, *files, cwd=folder)


def _json(folder: Path, *files: str, ins: str | None = None) -> tuple[int, dict[str, Any]]:
    options = ("--json", "--ins", ins) if ins else ("--json",)
    result = _check(folder, *files, options=options)
    assert result.stderr == ""
    return result.returncode, json.loads(result.stdout)


def _write(folder: Path, name: str, data: bytes) -> str:
    (folder / name).write_bytes(data)
    return name


def _codes(report: dict[str, Any]) -> list[int]:
    return [e["code"] for e in report["errors"]]


def _mail(xdm: bytes, to: str = f"{INS}@patient.mssante.fr") -> bytes:
    mail = EmailMessage(policy=default)
    mail["From"], mail["To"], mail["Subject"] = PRO, to, "XDM/1.0/DDM+CR DE VINCI RUTH 17/03/1979"
    mail["Message-ID"] = "<cr-0001@pro.mssante.test>"
    mail["Disposition-Notification-To"] = PRO
    mail.set_content("Bonjour, veuillez trouver le compte rendu.")
    mail.add_attachment(xdm, maintype="application", subtype="zip", filename="IHE_XDM.ZIP")
    mail.add_attachment(b"%PDF-1.4 rendu", maintype="application", subtype="pdf",
                        filename="compte-rendu.pdf")  # fmt: skip
    return mail.as_bytes()


def test_check_says_a_good_xdm_would_deposit_without_any_installation(tmp_path: Path) -> None:
    name = _write(tmp_path, "IHE_XDM.ZIP", XDM(documents=[XDMDocument(cda())]).build())
    code, out = _json(tmp_path, name)
    assert code == 0 and out["ok"] is True
    [report] = out["files"]
    assert (report["kind"], report["recipients"], report["recipient_source"]) == (
        "xdm", [INS], "metadata",
    )  # fmt: skip
    [submission] = report["submission_sets"]
    assert submission["patient_ins"] == INS
    assert submission["patient_id"] == f"{INS}^^^&{INS_OID}&ISO^NH"
    [doc] = report["documents"]
    assert (doc["class_code"], doc["type_code"], doc["confidentiality"]) == ("10", "11488-4", ["N"])
    assert doc["visibility"] == {"professionals": True, "patient": True,
                                 "legal_representatives": True}  # fmt: skip
    assert doc["patient_ins_metadata"] == doc["patient_ins_cda"] == INS
    assert report["errors"] == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["IHE_XDM.ZIP"]  # nothing created


def test_check_reads_a_bare_cda_and_its_recordtarget(tmp_path: Path) -> None:
    name = _write(tmp_path, "cr.xml", cda(confidentiality="R"))
    code, out = _json(tmp_path, name)
    [report] = out["files"]
    assert code == 0 and report["kind"] == "cda" and report["recipient_source"] == "cda"
    [doc] = report["documents"]
    assert (doc["type_code"], doc["patient_ins_cda"], doc["confidentiality"]) == (
        "11488-4", INS, ["R"],
    )  # fmt: skip


def test_check_reads_a_whole_message_for_the_patients_it_is_addressed_to(tmp_path: Path) -> None:
    xdm = XDM(documents=[XDMDocument(cda())]).build()
    good = _write(tmp_path, "good.eml", _mail(xdm))
    elsewhere = _write(tmp_path, "elsewhere.eml", _mail(xdm, to=f"{OTHER_INS}@patient.mssante.fr"))
    code, out = _json(tmp_path, good, elsewhere)
    assert code == 1 and out["ok"] is False
    first, second = out["files"]
    assert first["ok"] and first["recipients"] == [INS] and first["recipient_source"] == "mail"
    assert len(first["documents"]) == 1  # the PDF beside the XDM is a rendition: not deposited
    assert second["recipients"] == [OTHER_INS] and _codes(second) == [904]
    [doc] = second["documents"]  # what was read, although the deposit would refuse it
    assert (doc["patient_ins_metadata"], doc["patient_ins_cda"]) == (INS, INS)
    [error] = second["errors"]
    assert error["explanation"].startswith("L'INS du document n'est pas celui du patient")
    assert "(the document's INS is not the recipient patient's)" in error["explanation"]
    assert error["label"] == "INS du document différent de celui du destinataire"


def test_check_the_recipient_given_is_the_one_checked(tmp_path: Path) -> None:
    name = _write(tmp_path, "IHE_XDM.ZIP", XDM(documents=[XDMDocument(cda())]).build())
    code, out = _json(tmp_path, name, ins=OTHER_INS)
    assert code == 1 and _codes(out["files"][0]) == [904]


def test_check_shows_a_cda_of_another_patient_than_the_metadata(tmp_path: Path) -> None:
    """Both INS are shown, and the deposit's cross-check refuses the file (issue 14: a CDA
    of patient A inside an XDM naming patient B is never deposited in B's DMP)."""
    xdm = XDM(documents=[XDMDocument(cda(ins=OTHER_INS))]).build()
    code, out = _json(tmp_path, _write(tmp_path, "IHE_XDM.ZIP", xdm))
    [doc] = out["files"][0]["documents"]
    assert (doc["patient_ins_metadata"], doc["patient_ins_cda"]) == (INS, OTHER_INS)
    assert code == 1 and _codes(out["files"][0]) == [904]


def test_check_gives_every_refusal_its_ans_code(tmp_path: Path) -> None:
    bad_key = f"288091234567823^^^&{INS_OID}&ISO^NH"
    files = {
        "corrupt.zip": b"PK\x03\x04 this is not a zip archive",
        "no-ins.xml": cda(ins=None),
        "bad-key.zip": XDM(documents=[XDMDocument(cda())], submission_patient=bad_key).build(),
        "wrong-hash.zip": XDM(documents=[XDMDocument(cda(), hash="0" * 40)]).build(),
        "notes.xml": b"\x00\x01\x02 ceci n'est pas du XML",
    }
    names = [_write(tmp_path, name, data) for name, data in files.items()]
    code, out = _json(tmp_path, *names, ins=INS)
    assert code == 1
    codes = {r["file"]: _codes(r) for r in out["files"]}
    assert codes == {"corrupt.zip": [906], "no-ins.xml": [903], "bad-key.zip": [905],
                     "wrong-hash.zip": [906], "notes.xml": [906]}  # fmt: skip
    [no_ins] = next(r for r in out["files"] if r["file"] == "no-ins.xml")["documents"]
    assert (no_ins["type_code"], no_ins["patient_ins_cda"]) == ("11488-4", None)  # still read
    texts = {r["file"]: r["errors"][0] for r in out["files"]}
    assert "not a readable zip archive" in texts["corrupt.zip"]["detail"]
    assert texts["no-ins.xml"]["explanation"].startswith("Le document ne porte pas l'INS")
    assert "not well-formed XML" in texts["notes.xml"]["detail"]
    assert all(e["explanation"].endswith(")") for e in texts.values())  # the English meaning


def test_check_a_document_invisible_to_the_patient_is_refused_as_the_mx_does(
    tmp_path: Path,
) -> None:
    xdm = XDM(documents=[XDMDocument(cda(), confidentiality=("N", "INVISIBLE_PATIENT"))]).build()
    code, out = _json(tmp_path, _write(tmp_path, "IHE_XDM.ZIP", xdm))
    [error] = out["files"][0]["errors"]
    assert code == 1 and error["smtp"] == "550 5.7.1"
    assert error["explanation"].startswith("Un document marqué invisible pour le patient")
    [doc] = out["files"][0]["documents"]
    assert doc["visibility"]["patient"] is False


def test_check_a_document_in_an_unknown_encoding_is_an_error_not_a_crash(tmp_path: Path) -> None:
    _, _, rest = cda().partition(b"?>")
    poison = b'<?xml version="1.0" encoding="x-mac-klingon"?>' + rest
    code, out = _json(tmp_path, _write(tmp_path, "cr.xml", poison), ins=INS)
    assert code == 1 and _codes(out["files"][0]) == [906]


def test_check_speaks_french_to_a_person(tmp_path: Path) -> None:
    good = _write(tmp_path, "IHE_XDM.ZIP", XDM(documents=[XDMDocument(cda())]).build())
    corrupt = _write(tmp_path, "corrupt.zip", b"PK\x03\x04 not a zip")
    result = _check(tmp_path, good, options=())
    assert result.returncode == 0
    assert "classe 10 type 11488-4" in result.stdout
    assert "dépôt possible (the deposit would succeed)" in result.stdout
    result = _check(tmp_path, good, corrupt, options=())
    assert result.returncode == 1
    assert "ERREUR 550 5.6.0 : Archive IHE_XDM.ZIP illisible" in result.stdout  # at DATA
    assert "dépôt refusé (the deposit would fail)" in result.stdout


def test_check_a_file_that_cannot_be_read_is_a_usage_error(tmp_path: Path) -> None:
    result = _check(tmp_path, "absent.zip")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "mss: error: absent.zip: illisible (cannot be read): No such file or directory"
    ]
    _write(tmp_path, "cr.xml", cda())
    result = _check(tmp_path, "cr.xml", options=("--ins", "288091234567823"))
    assert result.returncode == 2 and result.stdout == ""
    assert "INS invalide (invalid INS)" in result.stderr and len(result.stderr.splitlines()) == 1


@settings(max_examples=150, deadline=None)
@given(
    data=st.binary(max_size=2048),
    name=st.sampled_from(["IHE_XDM.ZIP", "cr.xml", "message.eml", "document.pdf", "x"]),
)
def test_fuzz_any_file_ends_in_a_report_never_a_crash(data: bytes, name: str) -> None:
    """In process: whatever the bytes, `check_file` reports (ok, or errors with codes)."""
    report = check_file(name, data)
    assert report.documents if report.ok else all(e.code in MDN_LABELS for e in report.errors)
    json.dumps(report.to_json())


@settings(max_examples=60, deadline=None)
@given(flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=8))
def test_fuzz_a_corrupted_xdm_is_checked_or_refused_cleanly(flips: list[tuple[int, int]]) -> None:
    data = bytearray(XDM(documents=[XDMDocument(cda())]).build())
    for at, value in flips:
        data[at % len(data)] = value
    report = check_file("IHE_XDM.ZIP", bytes(data), INS)
    assert report.documents if report.ok else all(e.code in MDN_LABELS for e in report.errors)
