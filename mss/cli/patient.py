"""`mss patient add|import|status`: patients and their mailboxes (the space accounts'
commands are in `cli/patient_accounts.py`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mss.admin.patient import add_patient, import_patients, set_patient_status
from mss.cli import patient_accounts
from mss.cli.base import Commands, Parser, group, settings

PATIENT_FIELDS = (
    "ins", "family", "given", "birth_date", "sex", "birth_place", "email", "phone",
    "status", "identity_status", "oid",
)  # fmt: skip


def register(commands: Commands, common: Parser) -> None:
    patient = group(commands, "patient", "patients and their mailboxes")
    _add_add(patient, common)
    imp = patient.add_parser(
        "import", parents=[common], help="import a CSV of patients (all or none)"
    )
    imp.add_argument("file", type=Path, help="CSV with header ins,family,given,birth_date,sex,…")
    imp.add_argument(
        "--print-codes", action="store_true", help="print each patient's activation code"
    )
    imp.set_defaults(handler=_patient_import)
    status = patient.add_parser(
        "status", parents=[common], help="close, oppose or reopen a profile"
    )
    status.add_argument("ins")
    status.add_argument("status", help="active, closed or opposed")
    status.set_defaults(handler=_patient_status)
    patient_accounts.register(patient, common)


def _add_add(patient: Commands, common: Parser) -> None:
    add = patient.add_parser(
        "add", parents=[common], help="add a patient (mailbox if active and QUAL)"
    )
    add.add_argument("ins", help="matricule INS (15 characters)")
    add.add_argument("--family", required=True, help="birth name")
    add.add_argument("--given", required=True, help="birth first names")
    add.add_argument("--birth-date", required=True, help="YYYY-MM-DD")
    add.add_argument("--sex", required=True, help="M or F")
    add.add_argument("--birth-place", help="INSEE code of the birth place")
    add.add_argument("--email")
    add.add_argument("--phone")
    add.add_argument("--status", default="active", help="active (default), closed, opposed")
    add.add_argument("--identity-status", default="QUAL", help="PROV, RECUP, VALI, QUAL (default)")
    add.add_argument("--oid", help="identifier system OID (default: NIR, or NIA if provisional)")
    add.add_argument(
        "--print-code", action="store_true",
        help="print the space activation code (for a patient without e-mail or phone)",
    )  # fmt: skip
    add.set_defaults(handler=_patient_add)


def _patient_add(args: argparse.Namespace) -> int:
    added = add_patient(settings(args), {name: getattr(args, name) for name in PATIENT_FIELDS})
    identity = added.identity
    mailbox = "with a mailbox" if identity.has_mailbox else "without a mailbox"
    print(f"added patient {identity.ins} ({identity.profile_status}, {mailbox})")
    if args.print_code and added.code:
        print(f"activation code: {added.code}")
    return 0


def _patient_import(args: argparse.Namespace) -> int:
    report = import_patients(settings(args), args.file)
    if report.ignored_columns:
        print(f"ignored columns: {', '.join(report.ignored_columns)}", file=sys.stderr)
    print(f"imported {report.imported} patients ({report.with_mailbox} with a mailbox)")
    if args.print_codes:
        for ins, code in report.codes.items():
            print(f"{ins} {code}")
    return 0


def _patient_status(args: argparse.Namespace) -> int:
    set_patient_status(settings(args), args.ins, args.status)
    print(f"patient {args.ins.upper()} is now {args.status.lower()}")
    return 0
