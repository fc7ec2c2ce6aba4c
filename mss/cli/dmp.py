"""`mss dmp verify-traces` and `mss dmp check`: the DMP (shared medical record)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mss.admin.dmp import verify_dmp_traces
from mss.cli.base import Commands, Parser, group, settings
from mss.config.sections import LimitSettings
from mss.core.ins import InvalidINS, parse_ins
from mss.dmp import traces_head
from mss.dmp.traces_head import Head
from mss.errors import MssError

if TYPE_CHECKING:
    from mss.delivery.check import FileReport

CHECK_HELP = """\
What a deposit into the DMP would do with each FILE, without depositing and without a
server: an IHE_XDM.ZIP, a bare CDA (or PDF), or a whole .eml message, read by the
deposit's own analysis. Prints the metadata read, each document's class, type,
confidentiality and patient INS, and every error with its ANS MDN code (900-906) and
a French explanation (a deposit is all or none and stops at its first error: the one
its MDN would carry; a mail the MX would refuse says its SMTP code too). Not checked
(needs the database): the patient is known, their DMP open, their INS qualified, the
author's rights. More than 50 documents in one mail (the default of [limits]
max_documents_per_mail) is an error 906.

Exit status: 0 when every deposit would succeed, 1 on any error, 2 when a FILE
cannot be read.

--json prints one object: {"ok": bool, "files": [report…]}, each report with the keys
file, kind (xdm|cda|pdf|mail|other), ok, recipients (INS), recipient_source
(option|mail|metadata|cda|null), submission_sets [{unique_id, source_id, patient_id,
patient_ins, submission_time, authors}], documents [{unique_id, title, mime_type,
class_code, type_code, format_code, confidentiality, visibility {professionals,
patient, legal_representatives}, creation_time, replaces, patient_ins_metadata,
patient_ins_cda, size}], errors [{code, label, name, explanation, detail, smtp, ins}].
"""


def register(commands: Commands, common: Parser) -> None:
    dmp = group(commands, "dmp", "the DMP (shared medical record)", dest="dmp")
    verify = dmp.add_parser(
        "verify-traces", parents=[common],
        help="check the hash chain of the traces (exit 1 if a trace was modified or deleted)",
    )  # fmt: skip
    verify.add_argument(
        "--head", type=_head, metavar="H",
        help="a head kept outside the database: HASH, 'N HASH', or a traces.head file;"
        " exit 1 unless the chain still holds HASH (at trace N)",
    )  # fmt: skip
    verify.set_defaults(handler=_dmp_verify_traces)
    check = dmp.add_parser(
        "check", help="what a deposit of these files would do, without depositing",
        description=CHECK_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    check.add_argument("files", nargs="+", type=Path, metavar="FILE")
    check.add_argument(
        "--ins", type=_matricule, help="the recipient patient's INS (default: as the file says)"
    )
    check.add_argument("--json", action="store_true", help="one JSON object (keys above)")
    check.set_defaults(handler=_dmp_check)


def _matricule(text: str) -> str:
    """An argparse type: a valid matricule INS (a usage error, exit 2, otherwise)."""
    try:
        return parse_ins(text).matricule
    except InvalidINS as exc:
        raise argparse.ArgumentTypeError(f"INS invalide (invalid INS): {exc.reason}") from None


def _head(text: str) -> Head:
    """An argparse type: a chain head (a usage error, exit 2, otherwise)."""
    try:
        return traces_head.parse(text)
    except MssError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _dmp_verify_traces(args: argparse.Namespace) -> int:
    report = verify_dmp_traces(settings(args), args.head)
    for problem in report.problems:
        print(problem, file=sys.stderr)
    state = "intact" if report.ok else f"BROKEN ({len(report.problems)} problems)"
    print(f"{report.traces} traces, chain {state}; head {report.head}")
    return 0 if report.ok else 1


def _dmp_check(args: argparse.Namespace) -> int:
    from mss.delivery.check import check_file  # the pipeline's modules: only for this command

    files: list[tuple[Path, bytes]] = []
    for path in args.files:
        try:
            files.append((path, path.read_bytes()))
        except OSError as exc:
            reason = exc.strerror or exc.__class__.__name__
            print(f"mss: error: {path}: illisible (cannot be read): {reason}", file=sys.stderr)
            return 2
    limit = LimitSettings().max_documents_per_mail  # an operator's default
    reports = [check_file(str(path), data, args.ins, max_documents=limit) for path, data in files]
    ok = all(r.ok for r in reports)
    if args.json:
        print(json.dumps({"ok": ok, "files": [r.to_json() for r in reports]}, ensure_ascii=False,
                         indent=2))  # fmt: skip
    else:
        print("\n\n".join(_text(r) for r in reports))
    return 0 if ok else 1


def _text(report: FileReport) -> str:
    """The report for a person (French, the English meaning in parentheses)."""
    data = report.to_json()
    who = ", ".join(data["recipients"]) or "aucun (none)"
    lines = [f"{data['file']} ({data['kind']}) — patient destinataire (recipient) : {who}"]
    for s in data["submission_sets"]:
        lines.append(f"  lot de soumission (submission set) {s['unique_id']}"
                     f" patientId {s['patient_id']} source {s['source_id']}")  # fmt: skip
    for d in data["documents"]:
        lines.append(f"  document {d['unique_id']} « {d['title']} » classe {d['class_code']}"
                     f" type {d['type_code']} {d['mime_type']}")  # fmt: skip
        hidden = [k for k, seen in d["visibility"].items() if not seen]
        lines.append(f"    confidentialité {' '.join(d['confidentiality'])}"
                     f"{' — invisible : ' + ', '.join(hidden) if hidden else ''};"
                     f" INS métadonnées (metadata) {d['patient_ins_metadata'] or '-'},"
                     f" INS CDA {d['patient_ins_cda'] or '-'}")  # fmt: skip
    for e in data["errors"]:
        where = e["smtp"] or f"MDN {e['code']}^{e['label']}"
        lines.append(f"  ERREUR {where} : {e['explanation']}\n    {e['detail']}")
    failed = f"  dépôt refusé (the deposit would fail) : {len(report.errors)} erreur(s)"
    lines.append("  dépôt possible (the deposit would succeed)" if report.ok else failed)
    return "\n".join(lines)
