"""The `mss` command: the parser and `main`; one module per command group holds its
options and its handlers, which call the operation where it lives.

Every command has `--help`. Bad input ends with one line on stderr
(`mss: error: …`) and a non-zero exit status: 1 for refused input, 2 for a
malformed command line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mss import __version__
from mss.errors import ConfigError, MssError

if TYPE_CHECKING:
    from mss.cli.base import Handler

VERSION = f"mss {__version__}"


def build_parser() -> argparse.ArgumentParser:
    # The command groups import the whole product (seconds): not for `mss --version`.
    from mss.cli import (
        annuaire,
        backup,
        bench,
        blobs,
        cert,
        dmp,
        init,
        keys,
        notify,
        outbox,
        patient,
        pro,
        queue,
        serve,
        trust,
    )  # fmt: skip
    from mss.cli.base import Parser, settings_options

    groups = (  # in the order `mss --help` lists them
        init, serve, pro, patient, notify, cert, trust, queue, outbox, annuaire, dmp, keys, blobs,
        backup, bench,
    )  # fmt: skip
    parser = Parser(prog="mss", description="MSSanté operator: mail, patients, DMP, annuaire.")
    parser.add_argument("--version", action="version", version=VERSION)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    common = settings_options()
    for group in groups:
        group.register(commands, common)
    return parser


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else exc.__class__.__name__


def main(argv: Sequence[str] | None = None) -> int:
    if list(sys.argv[1:] if argv is None else argv) == ["--version"]:
        print(VERSION)
        return 0
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        print(f"mss: configuration error: {_one_line(exc)}", file=sys.stderr)
    except MssError as exc:
        print(f"mss: error: {_one_line(exc)}", file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    return 1
