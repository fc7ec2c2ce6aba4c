"""`mss notify list|retry|test|prefs`: the patients' notices, their log, their choices."""

from __future__ import annotations

import argparse
import time

from mss.admin import notify as admin
from mss.cli.base import Commands, Parser, group, positive, settings
from mss.store.notify import LogEntry
from mss.wiring_notify import send_test_notice


def register(commands: Commands, common: Parser) -> None:
    notify = group(commands, "notify", "patients' notices (e-mail, SMS, push) and their log")
    ls = notify.add_parser("list", parents=[common], help="the delivery log, newest first")
    ls.add_argument("--ins", help="one patient's notices")
    ls.add_argument(
        "--status",
        action="append",
        help="queued, sent, retrying, failed, coalesced, deferred, no_contact…",
    )
    ls.add_argument("--limit", type=positive, default=50)
    ls.set_defaults(handler=_list)
    retry = notify.add_parser(
        "retry", parents=[common], help="send waiting notices now (outbox ids; all by default)"
    )
    retry.add_argument("ids", nargs="*", type=int)
    retry.set_defaults(handler=_retry)
    test = notify.add_parser(
        "test", parents=[common], help="send a test notice to an e-mail address or a phone number"
    )
    test.add_argument("address")
    test.set_defaults(handler=_test)
    prefs = notify.add_parser(
        "prefs", parents=[common], help="a patient's choices: CATEGORY=CHANNEL,… (or =none)"
    )
    prefs.add_argument("ins")
    prefs.add_argument("choices", nargs="*", help="e.g. messages=email,push documents=none")
    prefs.set_defaults(handler=_prefs)


def _list(args: argparse.Namespace) -> int:
    entries = admin.log_entries(
        settings(args), ins=args.ins, statuses=args.status, limit=args.limit
    )
    if not entries:
        print("none")
        return 0
    print(f"{'when':19}  {'INS':15}  {'event':18}  {'channel':7}  {'status':11}  to / detail")
    for entry in entries:
        _print(entry)
    return 0


def _print(e: LogEntry) -> None:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.at))
    tail = " ".join(x for x in (e.destination, e.detail) if x)
    print(f"{when:19}  {e.ins:15}  {e.event:18}  {e.channel or '-':7}  {e.status:11}  {tail}")


def _retry(args: argparse.Namespace) -> int:
    print(f"{admin.retry(settings(args), args.ids or None)} waiting rows due now")
    return 0


def _test(args: argparse.Namespace) -> int:
    print(send_test_notice(settings(args), args.address))
    return 0


def _prefs(args: argparse.Namespace) -> int:
    config = settings(args)
    if args.choices:
        admin.set_preferences(config, args.ins, admin.parse_choices(args.choices))
    chosen = admin.preferences(config, args.ins)
    if not chosen:
        print("defaults: e-mail and push on for every category, SMS when there is no e-mail")
    for (category, channel), enabled in sorted(chosen.items()):
        print(f"{category:10} {channel:6} {'on' if enabled else 'off'}")
    return 0
