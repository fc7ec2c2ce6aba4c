"""`mss pro quota ADDRESS [--storage 5G] [--messages N] [--folders N]`: an account's own
limits apart from `[limits]` (without options: its limits and usage)."""

from __future__ import annotations

import argparse

from mss.admin.quotas import parse_limit, set_quota
from mss.cli.base import Commands, Parser, settings

RESOURCES = (("storage", "bytes of messages (5G, 500M…)"), ("messages", "messages"),
             ("folders", "mailboxes"))  # fmt: skip


HELP = "an account's limits apart from [limits] (without options: show them)"


def register(pro: Commands, common: Parser) -> None:
    quota = pro.add_parser("quota", parents=[common], help=HELP)
    quota.add_argument("address", help="any mailbox of this instance")
    for name, what in RESOURCES:
        quota.add_argument(f"--{name}", help=f"at most this many {what}; 0: none; default: "
                           "the settings' again")  # fmt: skip
    quota.set_defaults(handler=_quota)


def _quota(args: argparse.Namespace) -> int:
    changes = {
        name: parse_limit(getattr(args, name), size=name == "storage")
        for name, _ in RESOURCES
        if getattr(args, name) is not None
    }
    quota, used = set_quota(settings(args), args.address, changes)
    for name, _ in RESOURCES:
        limit, value = getattr(quota, name), getattr(used, name)
        print(f"{name}: {value} of {limit or 'no limit'}")
    return 0
