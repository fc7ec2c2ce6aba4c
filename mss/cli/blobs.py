"""`mss blobs gc`: delete the message and document bodies nothing refers to."""

from __future__ import annotations

import argparse

from mss.admin.blobs import blobs_gc
from mss.cli.base import Commands, Parser, group, settings


def register(commands: Commands, common: Parser) -> None:
    blobs = group(commands, "blobs", "message and document bodies")
    gc = blobs.add_parser(
        "gc", parents=[common],
        help="delete bodies nothing refers to (in an object store: older than the grace)",
    )  # fmt: skip
    gc.set_defaults(handler=_gc)


def _gc(args: argparse.Namespace) -> int:
    rows, objects = blobs_gc(settings(args))
    print(f"{rows} unreferenced bodies deleted")
    if objects.listed:
        print(f"object store: {objects.listed} objects past the grace, {objects.deleted} deleted")
    return 0
