"""The patient's history (DOMAIN.md §5 "the patient sees the history", §8): every
access, deposit and change to their DMP (its traces) and every notification sent to
them (the notifications' log), merged newest first, told in plain French with who
(the professional's name and profession, from the annuaire or the document), what and
when (Europe/Paris time), by pages.

The traces and the notices of a document the viewer may not see (invisible to the
patient, or hidden from a representative who is looking) are left out, a professional's
consultation of one reading as one of the record (`dmp.patient_view`): the history is
no oracle. The
patient's own look at the list of their documents is left out too (every page view
would be one line); their downloads, and anything a representative does, are shown.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from mss.annuaire import lookup as annuaire
from mss.dmp import service
from mss.dmp.access import Actor
from mss.dmp.errors import DMPError
from mss.dmp.patient_view import every_version
from mss.space.dates import when
from mss.space.deps import SpaceDeps, Viewer
from mss.space.record import adult_on, sees, today_of
from mss.store import notify as notes
from mss.store.accounts import accounts_of_national_id
from mss.store.sql import Conn

PAGE = 50
DEPTH = 2000  # traces and notices read, newest first (beyond: the operator's tools)
MODES = {"bris_de_glace": " (accès d'urgence en bris de glace)",
         "centre15": " (accès par la régulation du centre 15)"}  # fmt: skip
NOTICES = {
    "new_message": "nouveau message",
    "conversation_ended": "fin d'échanges",
    "new_document": "nouveau document",
    "first_access": "première consultation de votre dossier",
    "profile_created": "création de votre profil",
    "profile_closed": "fermeture de votre profil",
    "profile_reopened": "réouverture de votre profil",
    "activation_code": "code d'activation",
    "login_code": "code de connexion",
    "password_changed": "mot de passe changé",
    "new_device": "nouvel appareil",
}
CHANNELS = {"email": "par e-mail", "sms": "par SMS", "push": "par notification sur votre appareil"}
STATUSES = {
    "sent": "envoyée", "queued": "en cours d'envoi", "failed": "échec de l'envoi",
    "deferred": "différée (trop de notifications ce jour)",
    "coalesced": "regroupée avec la précédente",
    "no_contact": "non envoyée : aucun moyen de vous joindre",
    "switched_off": "non envoyée : désactivée dans vos préférences",
    "profile_closed": "non envoyée : profil fermé", "dead": "abandonnée après plusieurs échecs",
}  # fmt: skip


@dataclass(frozen=True)
class Line:
    at: dt.datetime  # aware
    kind: str  # "dossier" or "notification"
    text: str  # the whole sentence, date included

    @property
    def iso(self) -> str:
        return self.at.isoformat()


@dataclass(frozen=True)
class HistoryPage:
    lines: list[Line]
    page: int
    more: bool


@dataclass
class _Context:
    """What telling the traces needs: the documents' titles, who is who."""

    conn: Conn
    viewer: Viewer
    titles: dict[int, str]
    hidden: set[int]
    names: dict[str, str]

    def who(self, national_id: str) -> str:
        if national_id not in self.names:
            self.names[national_id] = professional_name(self.conn, national_id)
        return self.names[national_id]

    def title(self, document_id: int | None) -> str:
        return f"« {self.titles.get(document_id or 0) or 'sans titre'} »"


def professional_name(conn: Conn, national_id: str) -> str:
    """« Dr Jean Dupont (Médecin) », from the annuaire; else the name of this operator's
    account with that national id; else the national id."""
    found = annuaire.professional(conn, national_id) or {}
    name = " ".join(_cased(found.get(k)) for k in ("given", "family") if found.get(k))
    if not name:
        local = [a.display_name for a in accounts_of_national_id(conn, national_id)]
        named = next((n for n in local if n), "")
        return named or f"Le professionnel n° {national_id}"
    profession = (found.get("profession") or {}).get("label") or ""
    prefix = "Dr " if (found.get("civilite") or "").upper() == "DR" else ""
    return f"{prefix}{name}" + (f" ({profession})" if profession else "")


def _cased(text: str | None) -> str:
    value = text or ""
    return value.title() if value.isupper() else value


# --- the traces -----------------------------------------------------------------------------------


PROFESSIONAL_TEXTS = {
    "consult": "{who} a consulté votre dossier médical{mode}",
    "consult+doc": "{who} a consulté votre document {doc}{mode}",
    "deposit+doc": "{who} a ajouté le document {doc} à votre dossier",
    "authorize": "{who} a enregistré votre autorisation d'accès à votre dossier",
    "refused": "{who} a tenté d'accéder à votre dossier{mode} : accès refusé",
    "refused+doc": "{who} a tenté d'ouvrir le document {doc}{mode} : accès refusé",
    "unmask+doc": "{who} a rendu le document {doc} de nouveau visible aux professionnels",
    "reveal+doc": "{who} a rendu le document {doc} visible pour vous",
    "block": "{who} a bloqué, à votre demande, l'accès de {other}",
    "unblock": "{who} a débloqué l'accès de {other}",
}
PATIENT_TEXTS = {
    "consult": "{who} consulté la liste des documents",
    "consult+doc": "{who} consulté le document {doc}",
    "deposit+doc": "{who} ajouté le document {doc}",
    "mask+doc": "{who} masqué le document {doc} aux professionnels",
    "unmask+doc": "{who} rendu le document {doc} de nouveau visible aux professionnels",
    "block": "{who} bloqué l'accès de {other} à votre dossier",
    "unblock": "{who} débloqué l'accès de {other}",
    "name_treating": "{who} désigné {other} comme médecin traitant DMP",
    "remove_treating": "{who} retiré {other} de vos médecins traitants DMP",
    "settings": "{who} modifié vos paramètres : {settings}",
    "preferences": "{who} modifié vos préférences de notification",
}


def trace_text(c: _Context, t: dict[str, Any]) -> str | None:
    """The sentence of one trace (None: not shown)."""
    if t["document_id"] in c.hidden:
        return None
    if t["actor_kind"] != Actor.PATIENT.value:
        return _told(c, t, PROFESSIONAL_TEXTS, c.who(t["actor"]))
    if t["actor"] != c.viewer.ins:
        return _told(c, t, PATIENT_TEXTS, f"Votre représentant légal ({t['actor']}) a")
    if t["action"] == "consult" and not t["document_id"]:
        return None  # the patient's own look at their list (every page view)
    return _told(c, t, PATIENT_TEXTS, "Vous avez")


def _told(c: _Context, t: dict[str, Any], texts: dict[str, str], who: str) -> str:
    """The trace's sentence from `texts`, by action (`+doc` when it names a document)."""
    key = t["action"] + ("+doc" if t["document_id"] else "")
    template = texts.get(key) or texts.get(t["action"])
    if template is None:
        return f"{who} : {t['action']}"
    detail = t["detail"] or {}
    other = c.who(detail["national_id"]) if detail.get("national_id") else ""
    return template.format(
        who=who, doc=c.title(t["document_id"]), mode=MODES.get(t["mode"] or "", ""),
        other=other, settings=_settings_text(detail),
    )  # fmt: skip


def _settings_text(detail: dict[str, Any]) -> str:
    parts = {
        "closed": ("dossier fermé", "dossier rouvert"),
        "oppose_bris_de_glace": ("opposition à l'accès en bris de glace",
                                 "accès en bris de glace autorisé"),
        "oppose_centre15": ("opposition à l'accès par le centre 15",
                            "accès par le centre 15 autorisé"),
    }  # fmt: skip
    said = [parts[k][0 if v else 1] for k, v in detail.items() if k in parts]
    return ", ".join(said) or "aucun changement"


def _trace_lines(c: _Context) -> list[Line]:
    try:
        found = service.read_traces(c.conn, c.viewer.ins, Actor.PATIENT, c.viewer.ins, DEPTH)
    except DMPError:
        return []
    lines = []
    for t in found:
        text = trace_text(c, t)
        if text is not None:
            at = dt.datetime.fromisoformat(t["at"])
            lines.append(Line(at, "dossier", f"{text} {when(at)}."))
    return lines


# --- the notices ----------------------------------------------------------------------------------


def notice_text(entry: notes.LogEntry) -> str:
    what = NOTICES.get(entry.event, entry.event)
    how = CHANNELS.get(entry.channel, "")
    to = (
        f" à {entry.destination}" if entry.channel in ("email", "sms") and entry.destination else ""
    )
    status = STATUSES.get(entry.status, entry.status)
    at = dt.datetime.fromtimestamp(entry.created or entry.at, dt.UTC)
    head = f"Notification « {what} »" + (f" {how}{to}" if how else "")
    return f"{head} {when(at)} : {status}."


def notice_shown(c: _Context, entry: notes.LogEntry) -> bool:
    """Whether the viewer may read this notice: not one about a document they may not
    see; for a legal representative, not a `new_document` notice whose document is
    unknown (logged before its document was kept with it)."""
    if entry.document_id is not None:
        return entry.document_id in c.titles  # a document the viewer sees
    return not (c.viewer.representative and entry.event == "new_document")


def _notice_lines(c: _Context) -> list[Line]:
    return [
        Line(dt.datetime.fromtimestamp(e.created or e.at, dt.UTC), "notification", notice_text(e))
        for e in notes.log_entries(c.conn, ins=c.viewer.ins, limit=DEPTH)
        if notice_shown(c, e)
    ]


# --- the page -------------------------------------------------------------------------------------


def _context(conn: Conn, viewer: Viewer, today: dt.date) -> _Context:
    adult = adult_on(conn, viewer.ins, today)
    versions = every_version(conn, viewer.ins)
    hidden = {d.id for d in versions if not sees(d, viewer, adult)}
    titles = {d.id: d.title for d in versions if d.id not in hidden}
    return _Context(conn, viewer, titles, hidden, {})  # fmt: skip


def lines(conn: Conn, viewer: Viewer, today: dt.date) -> list[Line]:
    """The whole history the viewer may read, newest first."""
    c = _context(conn, viewer, today)
    merged = _trace_lines(c) + _notice_lines(c)
    return sorted(merged, key=lambda line: line.at, reverse=True)


async def history(deps: SpaceDeps, viewer: Viewer, page: int = 1) -> HistoryPage:
    """One page of the history (`PAGE` lines; the first is the newest)."""
    page = max(page, 1)
    today = today_of(deps)
    found = await deps.store.read(lambda conn: lines(conn, viewer, today))
    start = (page - 1) * PAGE
    return HistoryPage(found[start : start + PAGE], page, len(found) > start + PAGE)
