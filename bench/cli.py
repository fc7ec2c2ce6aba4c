"""The benchmarks' command line: `python -m bench NAME …` (or `mss bench NAME …`)."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

# name -> (module of bench/, help)
BENCHMARKS = {
    "store": ("store", "durable deliveries per second (SQLite, PostgreSQL)"),
    "smtp": ("smtp", "SMTP messages per second, end to end (or --target another)"),
    "imap": ("imap", "IMAP on a big mailbox, command rates, IDLE sessions"),
    "imapstress": ("imapstress", "imaptest-like concurrent stress of any IMAP server"),
    "annuaire": ("annuaire", "import a generated 1,000,000-line extraction, then lookups"),
    "dmp": ("dmp", "DMP deposits from mail per second, search p99"),
    "notify": ("notify", "patients' notices by e-mail: events to a smarthost, rate and lag"),
    "space": ("space", "the patient space's pages, 200 patients browsing (p99 vs 100 ms)"),
}


def build_parser(prog: str = "python -m bench") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="mss benchmarks (print a table)")
    names = parser.add_subparsers(dest="bench", required=True)
    for name, (module_name, help_text) in BENCHMARKS.items():
        module = importlib.import_module(f"bench.{module_name}")
        sub = names.add_parser(name, help=help_text)
        module.add_arguments(sub)
        sub.set_defaults(handler=module.main)
    return parser


def main(argv: Sequence[str], prog: str = "python -m bench") -> int:
    args = build_parser(prog).parse_args(list(argv))
    return int(args.handler(args))
