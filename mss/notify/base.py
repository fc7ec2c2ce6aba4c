"""What every channel of the notifications shares: the notice, the channel interface, its
errors, and the catalogue of events (DOMAIN.md §5, §8).

A notice never carries health data: it says that something is waiting and links to
the patient's space (Mon espace santé's rule, CSP L1110-4); its text comes from
`templates.py` and names neither the sender, the subject, a professional nor a
document. Each notice has an idempotency id, the same at every attempt, so that a
receiver can drop repeats (a notice is sent at least once).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from mss.errors import MssError


class Category(StrEnum):
    """What a patient switches on or off (preferences are per category and channel)."""

    MESSAGES = "messages"
    DOCUMENTS = "documents"
    ACCESSES = "accesses"
    PROFILE = "profile"
    ACCOUNT = "account"  # codes and security notices: always sent, never coalesced


class ChannelName(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"


# event -> category (the events written by the store and the DMP, in the transaction of
# their cause)
EVENTS: dict[str, Category] = {
    "new_message": Category.MESSAGES,
    "conversation_ended": Category.MESSAGES,
    "new_document": Category.DOCUMENTS,
    "first_access": Category.ACCESSES,
    "profile_created": Category.PROFILE,
    "profile_closed": Category.PROFILE,
    "profile_reopened": Category.PROFILE,
    "activation_code": Category.ACCOUNT,
    "login_code": Category.ACCOUNT,
    "password_changed": Category.ACCOUNT,
    "new_device": Category.ACCOUNT,
}


@dataclass(frozen=True, slots=True)
class Notice:
    """One notice to one destination on one channel."""

    id: str  # idempotency id: the same at every attempt of this notice
    ins: str
    event: str
    channel: ChannelName
    destination: str  # an e-mail address, a phone number (E.164), a push subscription id
    subject: str  # French, no health data
    text: str  # French, no health data; ends with the link to the space
    link: str  # the patient space's URL
    extra: dict[str, str] = field(default_factory=dict)  # e.g. a one-time code


class ChannelError(MssError):
    """A notice could not be sent: `permanent` (this destination will never take it:
    fall back to another channel) or not (try again later)."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class Channel(Protocol):
    """One way to reach a patient (e-mail through a smarthost, SMS gateway, Web Push)."""

    @property
    def name(self) -> ChannelName: ...

    async def send(self, notice: Notice) -> str:
        """Send it; return the provider's id of what was sent ("" if none). Raises
        `ChannelError` (permanent or not); never anything else on purpose."""
        ...
