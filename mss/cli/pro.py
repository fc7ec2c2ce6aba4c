"""`mss pro add`: professional mailboxes."""

from __future__ import annotations

import argparse
import sys

from mss.admin.pro import add_professional, set_webhook
from mss.cli.base import Commands, Parser, group, settings
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
