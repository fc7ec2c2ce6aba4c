"""`mss pro add|list|show|password|disable|enable|delete|webhook|quota`: professional
mailboxes (`quota`: cli/quotas.py)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mss.admin import pro as admin
from mss.admin.pro import add_professional, set_webhook
from mss.cli import quotas
from mss.cli.base import Commands, Parser, group, print_record, print_records, settings
from mss.errors import InputError


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
    hook = pro.add_parser(
        "webhook", parents=[common],
        help="an APP mailbox's webhook on new mail (Standard Webhooks; prints the secret once)",
    )  # fmt: skip
    hook.add_argument("address", help="the applicative (APP) mailbox")
    hook.add_argument("url", nargs="?", help="where to POST (https://…)")
    hook.add_argument("--rotate", action="store_true", help="a new secret; the old one stays too")
    hook.add_argument("--remove", action="store_true", help="no more webhook")
    hook.set_defaults(handler=_pro_webhook)
    _register_accounts(pro, common)
    quotas.register(pro, common)


def _register_accounts(pro: Commands, common: Parser) -> None:
    listing = pro.add_parser("list", parents=[common], help="list the professional mailboxes")
    listing.add_argument("--json", action="store_true", help="one JSON array")
    listing.set_defaults(handler=_list)
    show = _with_address(pro, common, "show", "show a professional mailbox", _show)
    show.add_argument("--json", action="store_true", help="as a JSON object")
    password = _with_address(pro, common, "password", "set a mailbox's password", _password)
    password.add_argument("--password-stdin", action="store_true", required=True,
                          help="read the password from stdin")  # fmt: skip
    _with_address(pro, common, "disable", "disable a mailbox (no login, mail refused)", _disable)
    _with_address(pro, common, "enable", "enable a mailbox again", _enable)
    delete = _with_address(pro, common, "delete", "delete a mailbox and its messages", _delete)
    delete.add_argument("--yes", action="store_true", help="really delete (nothing asks again)")


def _with_address(pro: Commands, common: Parser, name: str, help: str, handler: object) -> Parser:
    command = pro.add_parser(name, parents=[common], help=help)
    command.add_argument("address", help="the mailbox address")
    command.set_defaults(handler=handler)
    return command


def _line(view: dict[str, Any]) -> str:
    state = "disabled" if view["disabled"] else "active"
    fields = (view["address"], view["type"], view["name"], view["national_id"], state)
    return "  ".join(field or "-" for field in fields)


def _list(args: argparse.Namespace) -> int:
    views = admin.list_professionals(settings(args))
    print_records([v.as_dict() for v in views], _line, args.json)
    return 0


def _show(args: argparse.Namespace) -> int:
    print_record(admin.show_professional(settings(args), args.address).as_dict(), args.json)
    return 0


def _password(args: argparse.Namespace) -> int:
    admin.set_professional_password(
        settings(args), args.address, sys.stdin.readline().rstrip("\r\n")
    )
    print(f"password set for {args.address.lower()}")
    return 0


def _disable(args: argparse.Namespace) -> int:
    admin.set_professional_disabled(settings(args), args.address, True)
    print(f"{args.address.lower()} disabled: no login, mail to it refused")
    return 0


def _enable(args: argparse.Namespace) -> int:
    admin.set_professional_disabled(settings(args), args.address, False)
    print(f"{args.address.lower()} enabled")
    return 0


def _delete(args: argparse.Namespace) -> int:
    if not args.yes:
        raise InputError(f"this deletes {args.address} and all its messages: add --yes")
    count = admin.delete_professional(settings(args), args.address)
    print(f"deleted {args.address.lower()} and its {count} message(s)")
    return 0


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


def _pro_webhook(args: argparse.Namespace) -> int:
    if args.remove:
        set_webhook(settings(args), args.address, None, rotate=False)
        print(f"webhook of {args.address} removed")
        return 0
    if args.url is None and not args.rotate:
        raise InputError("give the webhook's URL, --rotate or --remove")
    secret = set_webhook(settings(args), args.address, args.url, rotate=args.rotate)
    print(f"webhook secret (shown once; verify the webhook-signature header with it): {secret}")
    return 0
