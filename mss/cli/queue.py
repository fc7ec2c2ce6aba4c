"""`mss queue list|retry|drop`: mail waiting to be relayed to another operator."""

from __future__ import annotations

import argparse
import time

from mss.admin.queue import queue_drop, queue_entries, queue_retry
from mss.cli.base import Commands, Parser, group, settings
from mss.store.queue import QueueEntry


def register(commands: Commands, common: Parser) -> None:
    queue = group(commands, "queue", "mail waiting to be relayed")
    qlist = queue.add_parser("list", parents=[common], help="queued entries")
    qlist.add_argument("--all", action="store_true", help="also sent, failed and dropped entries")
    qlist.set_defaults(handler=_queue_list)
    retry = queue.add_parser(
        "retry", parents=[common], help="make entries due now (all by default)"
    )
    retry.add_argument("ids", nargs="*", type=int)
    retry.set_defaults(handler=_queue_retry)
    qdrop = queue.add_parser("drop", parents=[common], help="give up entries without a DSN")
    qdrop.add_argument("ids", nargs="+", type=int)
    qdrop.set_defaults(handler=_queue_drop)


def _queue_list(args: argparse.Namespace) -> int:
    entries = queue_entries(settings(args), everything=args.all)
    if not entries:
        print("the queue is empty")
        return 0
    print(f"{'id':>6}  {'queue id':12}  {'status':7}  {'tries':>5}  {'next attempt':19}  from → to")
    for entry in entries:
        _print_entry(entry)
    return 0


def _print_entry(e: QueueEntry) -> None:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.next_attempt))
    print(
        f"{e.id:>6}  {e.queue_id:12}  {e.status:7}  {e.attempts:>5}  {when:19}  "
        f"{e.mail_from or '<>'} → {e.rcpt_to}"
    )
    if e.last_error:
        print(f"{'':>8}last error: {e.last_error}")


def _queue_retry(args: argparse.Namespace) -> int:
    count = queue_retry(settings(args), args.ids or None)
    print(f"{count} queued entries due now")
    return 0


def _queue_drop(args: argparse.Namespace) -> int:
    count = queue_drop(settings(args), args.ids)
    print(f"{count} entries dropped")
    return 0
