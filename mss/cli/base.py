"""What every command module of the CLI shares: the parser class, the options that
locate the installation, and the shape of a handler."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeAlias

from mss.config import Settings
from mss.instance import load

Handler = Callable[[argparse.Namespace], int]


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, not the whole usage text."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


# argparse's sub-command registry (not subscriptable at run time: a string)
Commands: TypeAlias = "argparse._SubParsersAction[Parser]"


def settings_options() -> Parser:
    """`--config` and `--data-dir`, shared by every command that reads the settings."""
    common = Parser(add_help=False)
    common.add_argument("--config", type=Path, help="config file (default: DATA_DIR/mss.toml)")
    common.add_argument("--data-dir", type=Path, help="installation folder (default: ./mss-data)")
    return common


def settings(args: argparse.Namespace) -> Settings:
    return load(args.config, args.data_dir)


def group(commands: Commands, name: str, help: str, dest: str = "action") -> Commands:
    """A command with sub-commands (`mss pro add`, `mss queue list`…)."""
    parser = commands.add_parser(name, help=help)
    return parser.add_subparsers(dest=dest, required=True, parser_class=Parser)


def positive(text: str) -> int:
    """An argparse type: an integer of 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def print_record(record: dict[str, Any], as_json: bool) -> None:
    """`show`: one JSON object, or `key: value` lines (`-` for nothing)."""
    if as_json:
        print(json.dumps(record, ensure_ascii=False))
        return
    for key, value in record.items():
        print(f"{key}: {value if value is not None else '-'}")


def print_records(
    records: Sequence[dict[str, Any]], line: Callable[[dict[str, Any]], str], as_json: bool
) -> None:
    """`list`: one JSON array, or a line each (`none` when there are none)."""
    if as_json:
        print(json.dumps(list(records), ensure_ascii=False))
        return
    for record in records:
        print(line(record))
    if not records:
        print("none")
