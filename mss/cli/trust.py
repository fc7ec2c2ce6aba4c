"""`mss trust import|list`: the MSSanté trust-space whitelist."""

from __future__ import annotations

import argparse
from pathlib import Path

from mss.admin.trust import import_whitelist, whitelist
from mss.cli.base import Commands, Parser, group, settings


def register(commands: Commands, common: Parser) -> None:
    trust = group(commands, "trust", "the MSSanté trust-space whitelist")
    imp = trust.add_parser(
        "import", parents=[common], help="replace the whitelist from the national XML"
    )
    imp.add_argument("file", type=Path, help="listeblanchemssante.xml")
    imp.set_defaults(handler=_trust_import)
    lst = trust.add_parser("list", parents=[common], help="the whitelisted domains")
    lst.set_defaults(handler=_trust_list)


def _trust_import(args: argparse.Namespace) -> int:
    total, added, removed = import_whitelist(settings(args), args.file)
    print(f"whitelist: {total} domains ({added} added, {removed} removed)")
    return 0


def _trust_list(args: argparse.Namespace) -> int:
    domains = whitelist(settings(args))
    for domain in domains:
        print(domain)
    if not domains:
        print("none (import the national whitelist: mss trust import FILE)")
    return 0
