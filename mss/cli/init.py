"""`mss init`: create a working installation (idempotent, never overwrites keys)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mss.cli.base import Commands, Parser
from mss.instance import default_data_dir, init_instance


def register(commands: Commands, common: Parser) -> None:
    init = commands.add_parser("init", help="create a working installation (idempotent)")
    init.add_argument("--data-dir", type=Path, help="installation folder (default: ./mss-data)")
    init.add_argument("--domain", action="append", help="professional domain hosted (repeatable)")
    init.add_argument("--hostname", help="this server's host name (default: mail.<first domain>)")
    init.set_defaults(handler=_init)


def _init(args: argparse.Namespace) -> int:
    report = init_instance(args.data_dir or default_data_dir(), args.domain or [], args.hostname)
    if report.created:
        for item in report.created:
            print(f"created {item}")
    else:
        print(f"{report.config.parent} is already initialised; nothing changed")
    print("DNS records to publish (MX; SRV for mail clients, RFC 6186 and RFC 8314):")
    for record in report.client_records:
        print(f"  {record}")
    print("DKIM records to publish in DNS:")
    for record in report.dns_records:
        print(f"  {record}")
    print(f"run: mss serve --config {report.config}")
    return 0
