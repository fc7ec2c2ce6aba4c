"""Dates as the patient reads them: French words, Europe/Paris time (the space's users
are in France; the store keeps UTC)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
          "septembre", "octobre", "novembre", "décembre")  # fmt: skip


def day(at: dt.datetime) -> str:
    """« 6 décembre 2026 », « 1er juillet 2026 » (the day in Paris)."""
    local = at.astimezone(PARIS)
    number = "1er" if local.day == 1 else str(local.day)
    return f"{number} {MONTHS[local.month - 1]} {local.year}"


def when(at: dt.datetime) -> str:
    """« le 6 décembre 2026 à 10 h 12 », in Paris time."""
    local = at.astimezone(PARIS)
    return f"le {day(at)} à {local.hour} h {local.minute:02d}"
