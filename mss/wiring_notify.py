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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from mss.config import Settings
from mss.errors import ConfigError, InputError
from mss.notify.base import Channel, ChannelError, ChannelName, Notice
from mss.notify.decide import Rules
from mss.notify.dispatch import EventHandler, NoticeHandler, QuietHours, Texts
from mss.notify.email import SmarthostChannel
from mss.notify.hooks import WebhookHandler
from mss.notify.push import PushChannel
from mss.notify.sms import HttpSmsChannel, OvhSmsChannel
from mss.notify.templates import render
from mss.notify.webhooks import WebhookSender
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
    return settings.notify.sender or f"notifications@{settings.domains.professional[0]}"


def return_path(settings: Settings) -> str:
    """Where DSNs about notices come back: a domain of ours, so that the MX reads them."""
    return settings.notify.return_path or f"bounces@{settings.domains.professional[0]}"


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


def sms_channel(settings: Settings) -> HttpSmsChannel | OvhSmsChannel | None:
    n = settings.notify
    try:
        if n.sms_provider == "http":
            return HttpSmsChannel(
                url=n.sms_url, body_template=n.sms_body_template,
                content_type=n.sms_content_type, headers=dict(n.sms_headers),
                sender=n.sms_sender, timeout=n.timeout,
            )  # fmt: skip
        if n.sms_provider == "ovh":
            secret = _read_secret(settings, "sms_secret_file", n.sms_secret_file)
            return OvhSmsChannel(
                application_key=n.sms_application_key, application_secret=secret,
                consumer_key=n.sms_consumer_key, service_name=n.sms_service,
                sender=n.sms_sender, base_url=n.sms_url, timeout=n.timeout,
            )  # fmt: skip
    except ValueError as exc:
        raise ConfigError("notify.sms_provider", str(exc)) from None
    return None


def push_channel(settings: Settings) -> PushChannel | None:
    n = settings.notify
    path = settings.path(Path(n.vapid_private_key_file))
    if not path.exists():
        return None
    subject = n.vapid_subject or f"mailto:postmaster@{settings.server.hostname}"
    try:
        return PushChannel(_read_secret(settings, "vapid_private_key_file", str(path)), subject,
                           n.timeout, private_networks=n.push_private_networks)  # fmt: skip
    except ValueError as exc:
        raise ConfigError("notify.vapid_private_key_file", str(exc)) from None


def channels(settings: Settings) -> list[Channel]:
    """The channels the settings configure."""
    found: list[Channel | None] = [
        email_channel(settings), sms_channel(settings), push_channel(settings),
    ]  # fmt: skip
    return [c for c in found if c is not None]


@dataclass
class NotifyParts:
    handlers: list[Handler]
    closers: list[Callable[[], Awaitable[None]]]  # to call when the process stops


def notify_parts(settings: Settings, store: Store) -> NotifyParts:
    """The outbox handlers of the notifications and the webhooks, and what they hold."""
    configured = channels(settings)
    sender = WebhookSender(settings.notify.timeout)
    handlers = [*notify_handlers(settings, store, configured), WebhookHandler(store, sender)]
    closers = [sender.aclose] + [c.aclose for c in configured if hasattr(c, "aclose")]
    return NotifyParts(handlers, closers)


def notify_handlers(settings: Settings, store: Store, configured: list[Channel]) -> list[Handler]:
    """The event handler and one notice handler per configured channel."""
    n = settings.notify
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


def vapid_public_key(settings: Settings) -> str:
    """The public key browsers subscribe to Web Push with ("" when there is none)."""
    path = settings.path(Path(settings.notify.vapid_private_key_file)).with_suffix(".pub")
    try:
        return path.read_text().strip()
    except OSError:
        return ""
