"""`mss outbox list|retry|drop`: the work done after each commit (relay, DMP deposits,
MDNs, notifications), its state, and the operator's hand on it."""

from __future__ import annotations

import argparse
import time

from mss.admin.outbox import STATUSES, outbox_drop, outbox_items, outbox_retry, outbox_stats
from mss.cli.base import Commands, Parser, group, settings
from mss.store.outbox import OutboxItem


def register(commands: Commands, common: Parser) -> None:
    box = group(commands, "outbox", "after-commit work: relay, DMP deposits, MDNs, notices")
    ls = box.add_parser("list", parents=[common], help="rows (default: pending and dead)")
    ls.add_argument("--kind", action="append", help="relay, dmp_deposit, mdn, notification…")
    ls.add_argument("--status", action="append", help=f"one of {', '.join(STATUSES)}")
    ls.add_argument("--all", action="store_true", help="every status")
    ls.add_argument("--limit", type=int, default=200, help="at most this many rows (200)")
    ls.add_argument("--summary", action="store_true", help="counts per kind and status only")
    ls.set_defaults(handler=_list)
    retry = box.add_parser(
        "retry", parents=[common], help="make rows due now, revive dead ones (all by default)"
    )
    retry.add_argument("ids", nargs="*", type=int)
    retry.add_argument("--kind", action="append", help="only rows of this kind")
    retry.set_defaults(handler=_retry)
    drop = box.add_parser("drop", parents=[common], help="give up pending or dead rows")
    drop.add_argument("ids", nargs="+", type=int)
    drop.set_defaults(handler=_drop)


def _list(args: argparse.Namespace) -> int:
    if args.summary:
        return _summary(args)
    statuses = None if args.all else (args.status or ["pending", "dead"])
    items = outbox_items(settings(args), kinds=args.kind, statuses=statuses, limit=args.limit)
    if not items:
        print("none")
        return 0
    print(f"{'id':>7}  {'kind':13}  {'status':7}  {'tries':>5}  {'due':19}  result / last error")
    for item in items:
        _print_item(item)
    return 0


def _print_item(item: OutboxItem) -> None:
    due = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(item.due_at))
    note = item.last_error or item.result or ""
    if item.lease_owner and item.due_at > time.time():
        note = f"being handled by {item.lease_owner}" + (f"; {note}" if note else "")
    elif item.lease_owner:
        note = f"lease of {item.lease_owner} ran out" + (f"; {note}" if note else "")
    print(f"{item.id:>7}  {item.kind:13}  {item.status:7}  {item.attempts:>5}  {due:19}  {note}")


def _summary(args: argparse.Namespace) -> int:
    stats = outbox_stats(settings(args))
    if not stats:
        print("none")
    for kind in stats:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(kind.counts.items()))
        oldest = ""
        if kind.oldest_pending is not None:
            oldest = f"; oldest pending {int(time.time()) - kind.oldest_pending} s old"
        print(f"{kind.kind}: {counts}{oldest}")
    return 0


def _retry(args: argparse.Namespace) -> int:
    count = outbox_retry(settings(args), args.ids or None, args.kind)
    print(f"{count} rows due now")
    return 0


def _drop(args: argparse.Namespace) -> int:
    count = outbox_drop(settings(args), args.ids)
    print(f"{count} rows dropped")
    return 0
