"""The builders of the notifications (a part of the composition root): the `[notify]`
settings become channels, the rules and the outbox handlers.

A channel that is not configured is simply absent: the events still make log lines
(`no_contact` names the missing channel), nothing waits for a channel that will
never come.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from pathlib import Path

from mss.config import Settings
from mss.errors import ConfigError, InputError
from mss.notify.base import Channel, ChannelError, ChannelName, Notice
from mss.notify.decide import Rules
from mss.notify.dispatch import EventHandler, NoticeHandler, QuietHours, Texts
from mss.notify.email import SmarthostChannel
from mss.notify.templates import render
from mss.store.api import Store
from mss.store.ports import Handler


def _read_secret(settings: Settings, key: str, value: str) -> str:
    if not value:
        return ""
    path = settings.path(Path(value))
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"notify.{key}", f"cannot read {path}: {exc.strerror}") from None


def sender(settings: Settings) -> str:
    return settings.notify.sender or f"notifications@{settings.server.hostname}"


def return_path(settings: Settings) -> str:
    return settings.notify.return_path or f"bounces@{settings.server.hostname}"


def email_channel(settings: Settings) -> SmarthostChannel | None:
    n = settings.notify
    if not n.smarthost:
        return None
    host, _, port = n.smarthost.rpartition(":")
    context = ssl.create_default_context(
        cafile=str(settings.path(Path(n.smarthost_ca))) if n.smarthost_ca else None
    )
    return SmarthostChannel(
        host=host.strip("[]"), port=int(port), tls=n.smarthost_tls, sender=sender(settings),
        return_path=return_path(settings), hostname=settings.server.hostname,
        service=n.service_name, user=n.smarthost_user,
        password=_read_secret(settings, "smarthost_password_file", n.smarthost_password_file),
        tls_context=context, timeout=n.timeout,
    )  # fmt: skip


def channels(settings: Settings) -> list[Channel]:
    """The channels the settings configure."""
    found: list[Channel | None] = [email_channel(settings)]
    return [c for c in found if c is not None]


def notify_handlers(settings: Settings, store: Store) -> list[Handler]:
    """The event handler and one notice handler per configured channel."""
    n = settings.notify
    configured = channels(settings)
    rules = Rules(
        coalesce_seconds=n.coalesce_minutes * 60, daily_limit=n.daily_limit,
        channels=frozenset(c.name for c in configured),
    )  # fmt: skip
    texts = Texts(link=n.space_url, service=n.service_name)
    quiet = QuietHours.parse(n.sms_quiet_hours, n.timezone)
    handlers: list[Handler] = [EventHandler(store, rules)]
    for channel in configured:
        hours = quiet if channel.name is ChannelName.SMS else None
        handlers.append(NoticeHandler(store, channel, texts, quiet=hours))
    return handlers


def send_test_notice(settings: Settings, address: str) -> str:
    """Send a test notice to an e-mail address or a phone number, now, through the
    configured channel; return what the channel said."""
    channel_name = ChannelName.EMAIL if "@" in address else ChannelName.SMS
    found = [c for c in channels(settings) if c.name is channel_name]
    if not found:
        raise InputError(f"no {channel_name.value} channel is configured ([notify])")
    subject, text = render("new_message", channel_name, link=settings.notify.space_url,
                           service=settings.notify.service_name)  # fmt: skip
    notice = Notice(
        id=f"test-{int(time.time())}", ins="", event="new_message", channel=channel_name,
        destination=address, subject=f"[test] {subject}", text=text,
        link=settings.notify.space_url,
    )  # fmt: skip
    try:
        return asyncio.run(found[0].send(notice)) or "sent"
    except ChannelError as exc:
        kind = "refused for good" if exc.permanent else "failed for now"
        raise InputError(f"{kind}: {exc.reason}") from None
