"""The DMP's access rules (DOMAIN.md §5), as pure functions.

Who may feed a DMP, who may consult it and in which mode, which documents a
professional, the patient or a legal representative sees, who may mask,
unmask or reveal a document. The service (`service.py`) loads the state from
the store, asks these functions, and traces what happened.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from pathlib import Path

from mss.dmp.errors import (
    DMPAccessForbidden,
    DMPAuthorizationExpired,
    DMPAuthorizationNotFound,
    DMPClosed,
    DMPError,
    DMPPatientNotFound,
    IncompleteINS,
)

MAX_TREATING_DOCTORS = 7  # médecins traitants DMP (seed 000)
MAJORITY = 18


class Mode(StrEnum):
    NORMAL = "normal"
    BRIS_DE_GLACE = "bris_de_glace"  # emergency
    CENTRE_15 = "centre15"  # SAMU regulation


@dataclass(frozen=True)
class Professional:
    national_id: str
    profession: str = ""  # TRE_G15 code: 10 Médecin, 60 Infirmier…
    name: str = ""


@dataclass(frozen=True)
class RecordState:
    """What the rules need to know of one DMP."""

    ins: str
    closed: bool = False
    oppose_bris_de_glace: bool = False
    oppose_centre15: bool = False
    blocked: frozenset[str] = frozenset()  # national ids
    treating: frozenset[str] = frozenset()  # médecins traitants DMP
    qualified: bool = True  # the INS identity is qualified (QUAL)


@dataclass(frozen=True)
class DocumentState:
    class_code: str
    type_code: str
    author_national_id: str
    masked: bool = False
    invisible_patient: bool = False
    hidden_from_representatives: bool = False


@dataclass(frozen=True)
class Habilitations:
    """The "matrice d'habilitation": profession → document classes and types."""

    classes: dict[str, frozenset[str]]
    types: dict[str, frozenset[str]] = field(default_factory=dict)
    denied_types: dict[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None = None) -> Habilitations:
        """The operator's file, or the default shipped in `mss/data/habilitations.toml`."""
        if path is None:
            text = resources.files("mss").joinpath("data/habilitations.toml").read_text("utf-8")
        else:
            text = path.read_text("utf-8")
        data = tomllib.loads(text)
        entries = {"": data.get("default", {}), **data.get("professions", {})}
        return cls(
            classes={k: frozenset(v.get("classes", ())) for k, v in entries.items()},
            types={k: frozenset(v.get("types", ())) for k, v in entries.items()},
            denied_types={k: frozenset(v.get("denied_types", ())) for k, v in entries.items()},
        )

    def rules(self, profession: str) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
        """(allowed classes, allowed types, denied types) of a profession."""
        key = profession if profession in self.classes else ""
        empty: frozenset[str] = frozenset()
        return (
            self.classes.get(key, empty),
            self.types.get(key, empty),
            self.denied_types.get(key, empty),
        )

    def allows(self, profession: str, class_code: str, type_code: str) -> bool:
        classes, types, denied = self.rules(profession)
        if type_code in denied:
            return False
        return type_code in types or "*" in classes or class_code in classes


# --- feeding and consulting ------------------------------------------------------------------


def check_feed(record: RecordState | None, author: Professional) -> RecordState:
    """A professional may deposit: the DMP exists, is open, the author is not blocked,
    the patient's INS is qualified (DOMAIN.md §5). Consent to feed is presumed:
    authorisations govern consultation, not feeding."""
    record = check_open(record, author)
    if not record.qualified:
        raise IncompleteINS("l'identité INS de ce patient n'est pas qualifiée : pas de dépôt")
    return record


def check_open(record: RecordState | None, professional: Professional) -> RecordState:
    """The DMP exists, is open, and the patient has not blocked this professional."""
    if record is None:
        raise DMPPatientNotFound("ce patient n'a pas de DMP (patient inconnu)")
    if record.closed:
        raise DMPClosed("le DMP de ce patient est fermé")
    if professional.national_id in record.blocked:
        raise DMPAccessForbidden("le patient a bloqué l'accès de ce professionnel à son DMP")
    return record


def check_consult(
    record: RecordState | None,
    professional: Professional,
    mode: Mode,
    authorization_expires: dt.datetime | None,
    now: dt.datetime,
) -> RecordState:
    """A professional may consult in `mode`; raises the DMP error otherwise."""
    record = check_open(record, professional)
    if mode is Mode.BRIS_DE_GLACE:
        if record.oppose_bris_de_glace:
            raise DMPAccessForbidden("le patient s'est opposé à l'accès en bris de glace")
        return record
    if mode is Mode.CENTRE_15:
        if record.oppose_centre15:
            raise DMPAccessForbidden("le patient s'est opposé à l'accès par le centre 15")
        return record
    if authorization_expires is None:
        raise DMPAuthorizationNotFound("aucune autorisation d'accès à ce DMP")
    if authorization_expires <= now:
        raise DMPAuthorizationExpired("l'autorisation d'accès à ce DMP a expiré")
    return record


# --- visibility --------------------------------------------------------------------------------


def professional_sees(
    doc: DocumentState, record: RecordState, professional: Professional, matrix: Habilitations
) -> bool:
    """An authorised professional sees a document: its author always; others when the
    matrix allows its class/type for their profession, and, when it is masked, only
    the patient's médecins traitants DMP. Invisibility to the patient does not
    hide a document from professionals."""
    if doc.author_national_id == professional.national_id:
        return True
    if not matrix.allows(professional.profession, doc.class_code, doc.type_code):
        return False
    return not doc.masked or professional.national_id in record.treating


def patient_sees(doc: DocumentState, adult: bool = True) -> bool:
    """The patient sees every document but those invisible to them; a minor's space is
    read by the legal representatives: documents hidden from them appear at majority."""
    if doc.invisible_patient:
        return False
    return adult or not doc.hidden_from_representatives


def is_adult(birth_date: dt.date, today: dt.date) -> bool:
    before_birthday = (today.month, today.day) < (birth_date.month, birth_date.day)
    return today.year - birth_date.year - before_birthday >= MAJORITY


# --- changes -----------------------------------------------------------------------------------


class Actor(StrEnum):
    PATIENT = "patient"
    PROFESSIONAL = "professional"


def check_unmask(doc: DocumentState, record: RecordState, actor: Actor, actor_id: str) -> None:
    """Unmasking: by the patient, by a médecin traitant DMP (on the patient's request),
    by the author for their own document."""
    if actor is Actor.PATIENT:
        return
    if actor_id in record.treating or actor_id == doc.author_national_id:
        return
    raise DMPAccessForbidden(
        "seuls le patient, ses médecins traitants DMP et l'auteur peuvent démasquer ce document"
    )


def check_mask(actor: Actor) -> None:
    """Masking after the deposit is the patient's choice (a professional masks at
    deposit, on the patient's request)."""
    if actor is not Actor.PATIENT:
        raise DMPAccessForbidden(
            "un professionnel ne masque un document qu'au dépôt, à la demande du patient"
        )


def check_reveal_to_patient(doc: DocumentState) -> None:
    """Any authorised professional may make an invisible document visible; nothing may
    make a visible one invisible again (invisibility is set at deposit only)."""
    if not doc.invisible_patient:
        raise DMPError("ce document est déjà visible du patient")


def check_treating_doctors(wanted: frozenset[str]) -> None:
    if len(wanted) > MAX_TREATING_DOCTORS:
        raise DMPError(
            f"au plus {MAX_TREATING_DOCTORS} médecins traitants DMP ({len(wanted)} demandés)"
        )


def check_block(actor: Actor, actor_id: str, record: RecordState, target: str) -> None:
    """The patient blocks a professional; a médecin traitant DMP may do it on the
    patient's behalf. A médecin traitant DMP cannot be blocked while named."""
    if actor is Actor.PROFESSIONAL and actor_id not in record.treating:
        raise DMPAccessForbidden("seuls le patient et ses médecins traitants DMP bloquent un accès")
    if target in record.treating:
        raise DMPError("un médecin traitant DMP ne peut pas être bloqué : retirez-le d'abord")


def check_read_traces(actor: Actor, actor_id: str, record: RecordState) -> None:
    """The history of accesses: the patient and the médecins traitants DMP read it all."""
    if actor is Actor.PROFESSIONAL and actor_id not in record.treating:
        raise DMPAccessForbidden("seuls le patient et ses médecins traitants DMP lisent les traces")
