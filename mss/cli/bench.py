"""`mss bench …`: the benchmarks live in a checkout's `bench/`, outside the product,
and are loaded only when asked for."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from mss.cli.base import Commands, Parser
from mss.errors import InputError

CHECKOUT = Path(__file__).resolve().parents[2]  # mss/cli/bench.py -> the checkout


def register(commands: Commands, common: Parser) -> None:
    # Every argument, options too (`mss bench --help`), goes to the benchmarks' own
    # parser: no prefix character that argparse would take for an option here.
    bench = commands.add_parser(
        "bench", help="benchmarks, from a checkout (print a table, write JSON)",
        add_help=False, prefix_chars="\0",
    )  # fmt: skip
    bench.add_argument("arguments", nargs=argparse.REMAINDER, help="see `mss bench --help`")
    bench.set_defaults(handler=_bench)


def _bench(args: argparse.Namespace) -> int:
    """The benchmarks live in the checkout's `bench/`, outside the product: load them now."""
    if (CHECKOUT / "bench" / "cli.py").is_file() and str(CHECKOUT) not in sys.path:
        sys.path.append(str(CHECKOUT))
    try:
        bench_cli = importlib.import_module("bench.cli")
    except ImportError as exc:
        raise InputError(
            f"the benchmarks are not available here ({exc}): they live in the bench/ folder "
            "of a checkout; run ./scripts/bench there"
        ) from None
    return int(bench_cli.main(args.arguments, prog="mss bench"))
