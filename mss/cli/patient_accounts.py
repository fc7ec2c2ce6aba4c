"""`mss patient password|show|list|disable|enable|code|represent|representatives|
unrepresent`: patients' accounts in the space, as the operator holds them."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import Any

from mss.admin import patient_accounts as admin
from mss.cli.base import Commands, Parser, print_record, print_records, settings


def register(patient: Commands, common: Parser) -> None:
    _with_ins(patient, common, "password", "set a patient's space password", _password)
    patient.choices["password"].add_argument(
        "--password-stdin", action="store_true", required=True,
        help="read the password (12 characters or more) from stdin",
    )  # fmt: skip
    _with_ins(patient, common, "show", "show a patient and their account", _show, json_=True)
    listing = patient.add_parser("list", parents=[common], help="list the patients")
    listing.add_argument("--json", action="store_true", help="one JSON array")
    listing.set_defaults(handler=_list)
    _with_ins(patient, common, "disable", "disable a space account (ends its sessions)", _disable)
    _with_ins(patient, common, "enable", "enable a space account again", _enable)
    _with_ins(patient, common, "code", "issue and print a new activation code", _code)
    _register_links(patient, common)


def _with_ins(patient: Commands, common: Parser, name: str, help: str, handler: object,
              *, json_: bool = False) -> None:  # fmt: skip
    command = patient.add_parser(name, parents=[common], help=help)
    command.add_argument("ins", help="matricule INS")
    if json_:
        command.add_argument("--json", action="store_true", help="as a JSON object")
    command.set_defaults(handler=handler)


def _register_links(patient: Commands, common: Parser) -> None:
    add = patient.add_parser(
        "represent", parents=[common], help="link a legal representative to a patient"
    )
    add.add_argument("representative", help="the representative's INS (a patient of ours)")
    add.add_argument("ins", help="the INS of the patient they act for")
    add.add_argument("--kind", required=True, choices=("minor", "protected-adult"))
    add.set_defaults(handler=_represent)
    end = patient.add_parser("unrepresent", parents=[common], help="end a representative's link")
    end.add_argument("representative")
    end.add_argument("ins")
    end.set_defaults(handler=_unrepresent)
    _with_ins(patient, common, "representatives", "list a patient's representatives", _links)


def _password(args: argparse.Namespace) -> int:
    password = sys.stdin.readline().rstrip("\r\n")
    admin.set_patient_password(settings(args), args.ins, password)
    print(f"password set for patient {args.ins.upper()}")
    return 0


def _line(view: dict[str, Any]) -> str:
    return f"{view['ins']}  {view['name']}  {view['profile']}  account: {view['account']}"


def _show(args: argparse.Namespace) -> int:
    print_record(admin.show_patient(settings(args), args.ins).as_dict(), args.json)
    return 0


def _list(args: argparse.Namespace) -> int:
    views = admin.list_patients(settings(args))
    print_records([v.as_dict() for v in views], _line, args.json)
    return 0


def _disable(args: argparse.Namespace) -> int:
    admin.set_patient_disabled(settings(args), args.ins, True)
    print(f"account of patient {args.ins.upper()} disabled (its sessions ended)")
    return 0


def _enable(args: argparse.Namespace) -> int:
    admin.set_patient_disabled(settings(args), args.ins, False)
    print(f"account of patient {args.ins.upper()} enabled")
    return 0


def _code(args: argparse.Namespace) -> int:
    code = admin.new_activation_code(settings(args), args.ins)
    print(f"activation code for patient {args.ins.upper()}: {code}")
    return 0


def _represent(args: argparse.Namespace) -> int:
    admin.represent(settings(args), args.representative, args.ins, args.kind)
    print(f"{args.representative.upper()} now represents {args.ins.upper()} ({args.kind})")
    return 0


def _unrepresent(args: argparse.Namespace) -> int:
    admin.unrepresent(settings(args), args.representative, args.ins)
    print(f"{args.representative.upper()} no longer represents {args.ins.upper()}")
    return 0


def _links(args: argparse.Namespace) -> int:
    links = admin.representatives(settings(args), args.ins)
    today = dt.date.today()
    for link in links:
        state = "active" if link.active(today) else "ended"
        kind = link.kind.replace("_", "-")
        print(f"{link.representative_ins}  {kind}  {state}")
    if not links:
        print("none")
    return 0
