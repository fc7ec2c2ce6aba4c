"""`mss serve`: run every listener until SIGINT/SIGTERM, logging to stderr (text, or
JSON lines with `[log] format = "json"`)."""

from __future__ import annotations

import argparse

from mss import logs
from mss.cli.base import Commands, Parser, settings
from mss.supervisor import serve


def register(commands: Commands, common: Parser) -> None:
    parser = commands.add_parser(
        "serve", parents=[common], help="run every listener until SIGINT/SIGTERM"
    )
    parser.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    loaded = settings(args)
    logs.configure(loaded.log.format)
    return serve(loaded)
