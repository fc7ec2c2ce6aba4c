"""`mss dmp verify-traces`: the DMP (shared medical record)."""

from __future__ import annotations

import argparse
import sys

from mss.admin.dmp import verify_dmp_traces
from mss.cli.base import Commands, Parser, group, settings


def register(commands: Commands, common: Parser) -> None:
    dmp = group(commands, "dmp", "the DMP (shared medical record)", dest="dmp")
    verify = dmp.add_parser(
        "verify-traces", parents=[common],
        help="check the hash chain of the traces (exit 1 if a trace was modified or deleted)",
    )  # fmt: skip
    verify.set_defaults(handler=_dmp_verify_traces)


def _dmp_verify_traces(args: argparse.Namespace) -> int:
    report = verify_dmp_traces(settings(args))
    for problem in report.problems:
        print(problem, file=sys.stderr)
    state = "intact" if report.ok else f"BROKEN ({len(report.problems)} problems)"
    print(f"{report.traces} traces, chain {state}; head {report.head}")
    return 0 if report.ok else 1
