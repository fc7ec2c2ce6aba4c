"""The notifications, for the operator: `mss notify list|retry|prefs` (`test` needs the
channels: `wiring_notify.send_test_notice`)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from mss.config import Settings
from mss.core.ins import InvalidINS, parse_ins
from mss.errors import InputError
from mss.instance import opened_store
from mss.notify.base import Category, ChannelName
from mss.store import notify as notes
from mss.store import outbox
from mss.store.notify import LogEntry
from mss.store.sql import Tx

NOTICE_KINDS = ["notification"] + [f"notice_{c.value}" for c in ChannelName]


def log_entries(
    settings: Settings, *, ins: str | None, statuses: Sequence[str] | None, limit: int
) -> list[LogEntry]:
    with opened_store(settings) as store:
        return store.db.read_sync(
            lambda c: notes.log_entries(c, ins=ins, statuses=statuses, limit=limit)
        )


def retry(settings: Settings, ids: Sequence[int] | None) -> int:
    """Make waiting notices and events due now (dead ones live again)."""
    with opened_store(settings) as store:
        return store.db.write_sync(
            lambda tx: outbox.retry(tx, ids=ids, kinds=NOTICE_KINDS, now=int(time.time()))
        )


def set_preferences(settings: Settings, ins: str, choices: dict[str, dict[str, bool]]) -> None:
    """`choices`: category → channel → on/off."""
    ins = _ins(ins)
    with opened_store(settings) as store:

        def write(tx: Tx) -> None:
            for category, per_channel in choices.items():
                for channel, enabled in per_channel.items():
                    notes.set_preference(tx, ins, category, channel, enabled)

        store.db.write_sync(write)


def preferences(settings: Settings, ins: str) -> dict[tuple[str, str], bool]:
    ins = _ins(ins)
    with opened_store(settings) as store:
        return store.db.read_sync(lambda c: notes.preferences(c, ins))


def parse_choices(items: Sequence[str]) -> dict[str, dict[str, bool]]:
    """`messages=email,push` → {"messages": {"email": True, "sms": False, "push": True}}."""
    out: dict[str, dict[str, bool]] = {}
    for item in items:
        category, sep, wanted = item.partition("=")
        if not sep or category not in {c.value for c in Category}:
            raise InputError(f"{item!r}: expected CATEGORY=CHANNEL,… "
                             f"(categories: {', '.join(c.value for c in Category)})")  # fmt: skip
        chosen = {w.strip() for w in wanted.split(",") if w.strip() and w.strip() != "none"}
        unknown = chosen - {c.value for c in ChannelName}
        if unknown:
            raise InputError(f"unknown channel {', '.join(sorted(unknown))} (email, sms, push)")
        out[category] = {c.value: c.value in chosen for c in ChannelName}
    return out


def _ins(text: str) -> str:
    try:
        return parse_ins(text).matricule
    except InvalidINS as exc:
        raise InputError(f"INS {text}: {exc}") from None
