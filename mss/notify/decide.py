"""Which notices an event makes, to whom and on which channels: a pure decision.

The rules (DOMAIN.md §8, and what patients expect of Mon espace santé):
- a category the patient switched off on a channel sends nothing there; by default
  e-mail and Web Push are on, SMS is the fallback when there is no usable e-mail
  (or is on when the patient chose it);
- a closed or opposed profile gets only the notices about the profile and the account;
- coalescing: a notice of the same category that went to the patient within the
  window (5 minutes) covers this event too ("ten messages in five minutes make one
  notification");
- a rate limit per patient (notices a day): beyond it the event waits (deferred, not
  dropped) until the oldest notice of the last 24 hours leaves the window;
- account notices (codes, security) are never coalesced nor limited, and go to the
  channel asked for;
- an address or a number that bounced for good is not used; when one channel fails
  for good the notice falls back to the next (`fallback`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mss.notify.base import EVENTS, Category, ChannelName
from mss.store.notify import Recipient

DAY = 86400
# Whether a channel is on for a category when the patient said nothing.
DEFAULT_ON = {ChannelName.EMAIL: True, ChannelName.SMS: False, ChannelName.PUSH: True}
ALWAYS = (Category.PROFILE, Category.ACCOUNT)  # sent even to a closed profile


@dataclass(frozen=True, slots=True)
class Target:
    channel: ChannelName
    destination: str  # address, E.164 number, or push subscription id
    fallback: tuple[tuple[str, str], ...] = ()  # (channel, destination) to try next


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one event: send to `targets`, or say why not (`status`), or wait."""

    targets: list[Target] = field(default_factory=list)
    status: str = "queued"  # or coalesced, no_contact, switched_off, profile_closed
    detail: str = ""
    defer_until: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Rules:
    coalesce_seconds: int = 300
    daily_limit: int = 20
    channels: frozenset[ChannelName] = frozenset(ChannelName)  # those configured


def decide(
    event: str,
    who: Recipient,
    *,
    rules: Rules,
    now: int,
    recent: list[int],
    recent_same: list[int],
    asked: str | None = None,
) -> Decision:
    """`recent`: when notices went to this patient in the last 24 h; `recent_same`: those
    of this event's category within the coalescing window; `asked`: the channel an
    account notice must use (the one the patient chose for the code)."""
    category = EVENTS[event]
    if who.profile_status != "active" and category not in ALWAYS:
        return Decision(status="profile_closed", detail=f"profile {who.profile_status}")
    if category is not Category.ACCOUNT:
        if recent_same:
            return Decision(status="coalesced", detail="a notice went out within the window")
        if len(recent) >= rules.daily_limit:
            return Decision(status="deferred", defer_until=recent[0] + DAY,
                            detail=f"{rules.daily_limit} notices in 24 hours")  # fmt: skip
    targets = _targets(category, who, rules, asked)
    if targets:
        return Decision(targets=targets)
    if _usable(who, rules):
        return Decision(status="switched_off", detail=f"{category.value} switched off")
    return Decision(status="no_contact", detail=_why_none(who, rules))


def _usable(who: Recipient, rules: Rules) -> dict[ChannelName, str]:
    """The e-mail address and phone number that may be tried (known, not failing)."""
    out: dict[ChannelName, str] = {}
    if ChannelName.EMAIL in rules.channels and who.email and who.email not in who.failing:
        out[ChannelName.EMAIL] = who.email
    if ChannelName.SMS in rules.channels and who.phone and who.phone not in who.failing:
        out[ChannelName.SMS] = who.phone
    return out


def _on(who: Recipient, category: Category, channel: ChannelName) -> bool:
    return who.preferences.get((category.value, channel.value), DEFAULT_ON[channel])


def _targets(category: Category, who: Recipient, rules: Rules, asked: str | None) -> list[Target]:
    usable = _usable(who, rules)
    if category is Category.ACCOUNT:
        return _account_targets(usable, asked)
    chosen = [
        c for c in (ChannelName.EMAIL, ChannelName.SMS) if c in usable and _on(who, category, c)
    ]
    if not chosen and ChannelName.SMS in usable and _on(who, category, ChannelName.EMAIL):
        chosen = [ChannelName.SMS]  # no e-mail to use: SMS stands in for it
    # what a failed channel falls back to: never one the patient switched off for this
    said = who.preferences
    spare = [(c.value, usable[c]) for c in usable
             if c not in chosen and said.get((category.value, c.value)) is not False]  # fmt: skip
    targets = [Target(c, usable[c], tuple(spare)) for c in chosen]
    if ChannelName.PUSH in rules.channels and _on(who, category, ChannelName.PUSH):
        targets += [Target(ChannelName.PUSH, str(s.id)) for s in who.subscriptions]
    return targets


def _account_targets(usable: dict[ChannelName, str], asked: str | None) -> list[Target]:
    order = [ChannelName(asked)] if asked in (ChannelName.EMAIL, ChannelName.SMS) else []
    order += [c for c in (ChannelName.EMAIL, ChannelName.SMS) if c not in order]
    available = [c for c in order if c in usable]
    if not available:
        return []
    first, *rest = available
    return [Target(first, usable[first], tuple((c.value, usable[c]) for c in rest))]


def _why_none(who: Recipient, rules: Rules) -> str:
    reasons = []
    if not who.email:
        reasons.append("no e-mail address")
    elif who.email in who.failing:
        reasons.append("the e-mail address bounced")
    if not who.phone:
        reasons.append("no phone number")
    elif who.phone in who.failing:
        reasons.append("the phone number was refused")
    missing = [
        c.value for c in ChannelName if c not in rules.channels and c is not ChannelName.PUSH
    ]
    if missing:
        reasons.append(f"channel not configured: {', '.join(missing)}")
    return "; ".join(reasons) or "every channel switched off"
