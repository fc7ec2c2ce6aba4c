"""`mss pro add`: professional mailboxes."""

from __future__ import annotations

import argparse
import sys

from mss.admin.pro import add_professional
from mss.cli.base import Commands, Parser, group, settings


def register(commands: Commands, common: Parser) -> None:
    pro = group(commands, "pro", "professional mailboxes")
    add = pro.add_parser("add", parents=[common], help="create a professional mailbox")
    add.add_argument("address", help="mailbox address on a professional domain of this instance")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    ident = add.add_mutually_exclusive_group()
    ident.add_argument("--rpps", help="RPPS number (11 digits); national id 8+RPPS")
    ident.add_argument("--adeli", help="ADELI number (9 characters); national id 0+ADELI")
    add.add_argument("--name", help="display name")
    add.add_argument("--type", default="PER", help="mailbox type: PER (default), ORG, APP, CAB")
    add.set_defaults(handler=_pro_add)


def _pro_add(args: argparse.Namespace) -> int:
    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    address = add_professional(
        settings(args),
        address=args.address,
        password=password,
        rpps=args.rpps,
        adeli=args.adeli,
        name=args.name,
        bal_type=args.type,
    )
    print(f"added {address}")
    return 0
