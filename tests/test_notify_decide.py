"""The rules of `notify/decide.py` and of the SMS quiet hours, one test each, without
a server: preferences, defaults, coalescing, the daily limit, closed profiles,
account notices, failing destinations and fallbacks; quiet hours across the changes
of time in Europe/Paris."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from mss.notify.base import ChannelName
from mss.notify.decide import DAY, Rules, Target, decide
from mss.notify.dispatch import QuietHours
from mss.store.notify import Recipient, Subscription

NOW = 1_800_000_000
EMAIL, PHONE = "p@exemple.fr", "+33612345678"
RULES = Rules(coalesce_seconds=300, daily_limit=20)
PARIS = ZoneInfo("Europe/Paris")


def patient(**more: object) -> Recipient:
    fields: dict[str, object] = {"ins": "1", "profile_status": "active", "email": EMAIL,
                                 "phone": PHONE}  # fmt: skip
    return Recipient(**{**fields, **more})  # type: ignore[arg-type]


def channels(event: str, who: Recipient, **more: object) -> list[str]:
    args: dict[str, object] = {"rules": RULES, "now": NOW, "recent": [], "recent_same": []}
    decision = decide(event, who, **{**args, **more})  # type: ignore[arg-type]
    return [t.channel.value for t in decision.targets]


def test_by_default_a_message_goes_by_e_mail_and_push_not_sms() -> None:
    who = patient(
        subscriptions=[Subscription(id=7, endpoint="https://push.example/x", p256dh="k", auth="a")]
    )
    assert channels("new_message", who) == ["email", "push"]


def test_without_a_usable_e_mail_sms_stands_in_for_it() -> None:
    assert channels("new_message", patient(email=None)) == ["sms"]
    assert channels("new_message", patient(failing={EMAIL})) == ["sms"]


def test_a_category_switched_off_on_a_channel_sends_nothing_there() -> None:
    off = {("messages", "email"): False}
    assert channels("new_message", patient(preferences=off)) == []
    decision = decide("new_message", patient(preferences=off), rules=RULES, now=NOW, recent=[],
                      recent_same=[])  # fmt: skip
    assert decision.status == "switched_off"
    assert channels("new_document", patient(preferences=off)) == ["email"]  # other category


def test_a_patient_who_chose_sms_gets_both() -> None:
    assert channels("new_message", patient(preferences={("messages", "sms"): True})) == [
        "email",
        "sms",
    ]


def test_a_notice_falls_back_to_the_other_usable_destination() -> None:
    decision = decide("new_message", patient(), rules=RULES, now=NOW, recent=[], recent_same=[])
    assert decision.targets == [Target(ChannelName.EMAIL, EMAIL, (("sms", PHONE),))]


def test_a_notice_of_the_same_category_within_the_window_coalesces() -> None:
    decision = decide("new_message", patient(), rules=RULES, now=NOW, recent=[NOW - 60],
                      recent_same=[NOW - 60])  # fmt: skip
    assert (decision.status, decision.targets) == ("coalesced", [])


def test_beyond_the_daily_limit_an_event_waits_for_the_oldest_to_leave_the_day() -> None:
    recent = [NOW - 80_000 + i for i in range(20)]
    decision = decide("new_message", patient(), rules=RULES, now=NOW, recent=recent,
                      recent_same=[])  # fmt: skip
    assert decision.status == "deferred" and decision.targets == []
    assert decision.defer_until == recent[0] + DAY > NOW
    below = decide("new_message", patient(), rules=RULES, now=NOW, recent=recent[:19],
                   recent_same=[])  # fmt: skip
    assert below.status == "queued"


def test_account_notices_are_never_coalesced_nor_limited_and_use_the_channel_asked() -> None:
    recent = [NOW - i for i in range(50)]
    decision = decide("login_code", patient(), rules=RULES, now=NOW, recent=recent,
                      recent_same=recent, asked="sms")  # fmt: skip
    assert decision.targets == [Target(ChannelName.SMS, PHONE, (("email", EMAIL),))]


def test_a_closed_profile_hears_only_of_its_profile_and_account() -> None:
    closed = patient(profile_status="closed")
    decision = decide("new_message", closed, rules=RULES, now=NOW, recent=[], recent_same=[])
    assert decision.status == "profile_closed"
    assert channels("profile_closed", closed) == ["email"]
    assert channels("login_code", closed) == ["email"]


def test_no_contact_says_why() -> None:
    decision = decide("new_message", patient(email=None, phone=None), rules=RULES, now=NOW,
                      recent=[], recent_same=[])  # fmt: skip
    assert decision.status == "no_contact"
    assert "no e-mail address" in decision.detail and "no phone number" in decision.detail


def test_a_channel_the_operator_did_not_configure_is_not_used() -> None:
    rules = Rules(channels=frozenset({ChannelName.EMAIL}))
    decision = decide("new_message", patient(email=None), rules=rules, now=NOW, recent=[],
                      recent_same=[])  # fmt: skip
    assert decision.status == "no_contact" and "channel not configured: sms" in decision.detail


def paris(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=PARIS).timestamp())


def test_quiet_hours_end_at_eight_in_paris_including_the_nights_the_time_changes() -> None:
    quiet = QuietHours.parse("21:00-08:00", "Europe/Paris")
    assert quiet is not None
    assert quiet.until(paris(2026, 6, 10, 12, 0)) is None
    assert quiet.until(paris(2026, 6, 10, 22, 30)) == paris(2026, 6, 11, 8, 0)
    assert quiet.until(paris(2026, 6, 11, 3, 0)) == paris(2026, 6, 11, 8, 0)
    # the night of 28 to 29 March 2026 lasts an hour less, 24 to 25 October one more
    assert quiet.until(paris(2026, 3, 28, 23, 0)) == paris(2026, 3, 29, 8, 0)
    assert quiet.until(paris(2026, 10, 24, 23, 0)) == paris(2026, 10, 25, 8, 0)
    assert paris(2026, 10, 25, 8, 0) - paris(2026, 10, 24, 23, 0) == 10 * 3600
    assert quiet.until(paris(2026, 6, 11, 8, 0)) is None


def test_quiet_hours_within_a_day_too() -> None:
    quiet = QuietHours.parse("12:00-14:00", "Europe/Paris")
    assert quiet is not None
    assert quiet.until(paris(2026, 6, 10, 13, 0)) == paris(2026, 6, 10, 14, 0)
    assert quiet.until(paris(2026, 6, 10, 14, 0)) is None
    assert quiet.until(paris(2026, 6, 10, 11, 59)) is None


def test_a_notice_never_falls_back_to_a_channel_the_patient_switched_off() -> None:
    off = {("messages", "sms"): False}
    decision = decide("new_message", patient(preferences=off), rules=RULES, now=NOW, recent=[],
                      recent_same=[])  # fmt: skip
    assert [t.channel.value for t in decision.targets] == ["email"]
    assert decision.targets[0].fallback == ()
    default = decide("new_message", patient(), rules=RULES, now=NOW, recent=[], recent_same=[])
    assert default.targets[0].fallback == (("sms", PHONE),)  # said nothing: SMS stands in
