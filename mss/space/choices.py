"""The patient's choices in their space (DOMAIN.md §5, §8): the professionals they block,
their médecins traitants DMP (0 to 7), the oppositions to emergency access, their
notification preferences and Web Push subscriptions, and closing or reopening the
profile.

No HTTP here. The DMP's choices go through `mss.dmp.service` (checked and traced
there); preferences and subscriptions through the notifications' store. A push
endpoint is a URL the server will later POST to: it must be https and its host must
resolve only to public addresses (no loopback, private, link-local, reserved…), or a
patient could make the server reach inside its own network (SSRF); the sending checks
the address again (`mss.notify.push`: DNS may answer otherwise then).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from mss.annuaire import lookup as annuaire
from mss.core.digits import ascii_digits
from mss.core.netaddr import public
from mss.dmp import service, traces
from mss.dmp.access import MAX_TREATING_DOCTORS, Actor
from mss.dmp.errors import DMPError
from mss.errors import InputError
from mss.notify.base import Category, ChannelName
from mss.notify.decide import DEFAULT_ON
from mss.notify.push import keys_are_valid
from mss.space.deps import SpaceDeps, Viewer
from mss.space.errors import SpaceError
from mss.space.history import professional_name
from mss.space.record import actor_of, refusal
from mss.store import notify as notes
from mss.store.accounts import get_patient, set_profile_status
from mss.store.models import ProfileStatus
from mss.store.sql import Conn, Tx

# What a patient chooses (the account's notices, codes and security, always go)
CATEGORIES = {
    Category.MESSAGES: "Nouveaux messages", Category.DOCUMENTS: "Nouveaux documents",
    Category.ACCESSES: "Première consultation de mon dossier par un professionnel",
    Category.PROFILE: "Mon profil (création, fermeture, réouverture)",
}  # fmt: skip
CHANNELS = {ChannelName.EMAIL: "E-mail", ChannelName.SMS: "SMS",
            ChannelName.PUSH: "Notification sur cet appareil"}  # fmt: skip
MAX_FOUND = 20
Resolver = Callable[[str, int], Awaitable[list[str]]]


@dataclass(frozen=True)
class Person:
    national_id: str
    name: str


@dataclass(frozen=True)
class Choices:
    """What the settings pages show."""

    blocked: list[Person]
    treating: list[Person]
    oppose_bris_de_glace: bool
    oppose_centre15: bool
    record_closed: bool
    profile_status: str
    preferences: dict[tuple[str, str], bool] = field(default_factory=dict)
    subscriptions: int = 0

    @property
    def treating_full(self) -> bool:
        return len(self.treating) >= MAX_TREATING_DOCTORS


def _people(conn: Conn, ids: frozenset[str]) -> list[Person]:
    return sorted((Person(n, professional_name(conn, n)) for n in ids), key=lambda p: p.name)


def _preferences(conn: Conn, ins: str) -> dict[tuple[str, str], bool]:
    """Every (category, channel) the patient may choose: their choice, else the default."""
    chosen = notes.preferences(conn, ins)
    return {(cat.value, ch.value): chosen.get((cat.value, ch.value), DEFAULT_ON[ch])
            for cat in CATEGORIES for ch in CHANNELS}  # fmt: skip


def read_choices(conn: Conn, ins: str) -> Choices:
    state = service.record_state(conn, ins)
    patient = get_patient(conn, ins)
    return Choices(
        blocked=_people(conn, state.blocked) if state else [],
        treating=_people(conn, state.treating) if state else [],
        oppose_bris_de_glace=bool(state and state.oppose_bris_de_glace),
        oppose_centre15=bool(state and state.oppose_centre15),
        record_closed=bool(state and state.closed),
        profile_status=patient.profile_status if patient else ProfileStatus.CLOSED.value,
        preferences=_preferences(conn, ins),
        subscriptions=len(notes.subscriptions(conn, ins)),
    )  # fmt: skip


async def choices(deps: SpaceDeps, viewer: Viewer) -> Choices:
    return await deps.store.read(lambda conn: read_choices(conn, viewer.ins))


# --- professionals: blocking, médecins traitants DMP ----------------------------------------------


async def find_professionals(deps: SpaceDeps, text: str) -> list[Person]:
    """Professionals of the annuaire by name (prefix) or by RPPS / ADELI / national id."""
    text = " ".join(text.split())[:100]
    if len(text) < 2:
        return []
    digits = text.replace(" ", "")
    if ascii_digits(digits[:1]):  # an RPPS, ADELI or national id, whole or begun
        query = annuaire.Query(national_id=annuaire.national_id_of(digits), limit=MAX_FOUND)
    else:
        query = annuaire.Query(name=text, limit=MAX_FOUND)
    try:
        page = await deps.store.read(lambda conn: annuaire.search_professionals(conn, query))
    except InputError:
        return []
    return [Person(p["national_id"], _label(p)) for p in page.items if p.get("national_id")]


def _label(p: dict[str, object]) -> str:
    names = " ".join(str(p[k]).title() for k in ("given", "family") if p.get(k))
    profession = p.get("profession")
    label = profession.get("label") if isinstance(profession, dict) else ""
    return f"{names} ({label})" if label else names


def national_id(text: str) -> str:
    """A national id from what the patient typed or a form carried (RPPS, ADELI…)."""
    value = annuaire.national_id_of(text.replace(" ", ""))
    if not value.isalnum() or not 9 <= len(value) <= 20:
        raise SpaceError("Identifiant de professionnel invalide (RPPS : 11 chiffres).",
                         "Invalid professional identifier.")  # fmt: skip
    return value


async def set_person(deps: SpaceDeps, viewer: Viewer, role: str, who: str, present: bool) -> None:
    """Block/unblock a professional (`blocked`), name/remove a médecin traitant DMP
    (`treating`, at most 7: refused in French beyond)."""
    if role not in (service.BLOCKED, service.TREATING):
        raise SpaceError("Action inconnue.", "Unknown action.", status=404)
    chosen = national_id(who)
    try:
        await deps.store.write(lambda tx: service.set_people(
            tx, viewer.ins, Actor.PATIENT, actor_of(viewer), role, chosen, present))  # fmt: skip
    except DMPError as exc:
        raise refusal(exc) from None


async def set_oppositions(deps: SpaceDeps, viewer: Viewer, bris: bool, centre15: bool) -> None:
    """Oppose (or not) emergency access: bris de glace, centre 15 (DOMAIN.md §5)."""
    try:
        await deps.store.write(lambda tx: service.set_record(
            tx, viewer.ins, actor_of(viewer), oppose_bris_de_glace=bris,
            oppose_centre15=centre15))  # fmt: skip
    except DMPError as exc:
        raise refusal(exc) from None


# --- notifications ------------------------------------------------------------------------------


async def set_preferences(deps: SpaceDeps, viewer: Viewer, on: set[tuple[str, str]]) -> None:
    """Each (category, channel) the patient may choose: on if in `on`, else off; traced
    as the viewer's change (the patient's, or their legal representative's)."""

    def write(tx: Tx) -> None:
        chosen = []
        for category in CATEGORIES:
            for channel in CHANNELS:
                wanted = (category.value, channel.value) in on
                notes.set_preference(tx, viewer.ins, category.value, channel.value, wanted)
                chosen += [f"{category.value}:{channel.value}"] if wanted else []
        traces.append(tx, viewer.ins, Actor.PATIENT.value, actor_of(viewer), "preferences",
                      detail={"on": chosen})  # fmt: skip

    await deps.store.write(write)


def _bad_subscription(french: str, english: str) -> SpaceError:
    return SpaceError(french, english, status=400)


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def check_endpoint(endpoint: str, resolve: Resolver = system_resolver) -> None:
    """A push endpoint the server may POST to: https, a host resolving only to public
    addresses (the SSRF of an endpoint pointing inside the network is closed here)."""
    try:
        parts = urlsplit(endpoint)
        port = parts.port or 443
    except ValueError:
        raise _bad_subscription("Adresse d'abonnement invalide.", "Invalid endpoint URL.") from None
    if parts.scheme != "https" or not parts.hostname or parts.username or len(endpoint) > 1000:
        raise _bad_subscription("L'abonnement doit être une adresse https.",
                                "The endpoint must be an https URL.")  # fmt: skip
    try:
        addresses = await resolve(parts.hostname, port)
    except (OSError, UnicodeError):
        addresses = []
    if not addresses or not all(public(a) for a in addresses):
        raise _bad_subscription("Ce service de notification n'est pas joignable sur Internet.",
                                "The endpoint's host is not a public address.")  # fmt: skip


async def subscribe(deps: SpaceDeps, viewer: Viewer, endpoint: str, p256dh: str, auth: str) -> None:
    """Store a browser's Web Push subscription, once checked (endpoint and keys)."""
    await check_endpoint(endpoint)
    if not keys_are_valid(p256dh, auth):
        raise _bad_subscription("Les clés de l'abonnement sont invalides.",
                                "Invalid subscription keys.")  # fmt: skip
    now = deps.now()
    await deps.store.write(
        lambda tx: notes.add_subscription(tx, viewer.ins, endpoint, p256dh, auth, now)
    )


# --- the profile --------------------------------------------------------------------------------


async def set_profile(deps: SpaceDeps, viewer: Viewer, open_: bool) -> None:
    """Close the profile (`closed`: no more notices but the profile's, no deposit into the
    DMP, the account disabled for new logins) or reopen it (`active`). The session that
    closed it stays open, so the patient may reopen at once; afterwards reopening is
    the operator's (`mss patient status INS active`)."""
    status = ProfileStatus.ACTIVE if open_ else ProfileStatus.CLOSED
    await deps.store.write(
        lambda tx: set_profile_status(
            tx, viewer.ins, status.value, deps.patient_domain, by_patient=True
        )
    )
