"""`mss serve`: run every listener until SIGINT/SIGTERM, logging to stderr."""

from __future__ import annotations

import argparse
import logging
import sys

from mss.cli.base import Commands, Parser, settings
from mss.supervisor import serve


def register(commands: Commands, common: Parser) -> None:
    parser = commands.add_parser(
        "serve", parents=[common], help="run every listener until SIGINT/SIGTERM"
    )
    parser.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's per-command chatter
    return serve(settings(args))
