"""`mss keys rotate`: blob encryption keys."""

from __future__ import annotations

import argparse

from mss.admin.keys import rotate_blob_key
from mss.cli.base import Commands, Parser, group, settings


def register(commands: Commands, common: Parser) -> None:
    keys = group(commands, "keys", "blob encryption keys")
    rotate = keys.add_parser("rotate", parents=[common], help="add a new current key")
    rotate.set_defaults(handler=_keys_rotate)


def _keys_rotate(args: argparse.Namespace) -> int:
    key_id = rotate_blob_key(settings(args))
    print(f"new blob key {key_id}; older blobs are re-encrypted in the background by `mss serve`")
    return 0
