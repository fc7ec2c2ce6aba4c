"""Patients: `mss patient add|import|status`.

A patient with an active profile and a qualified identity gets a mailbox on the
patient domain (`store.accounts.add_patients` decides) and, in the same transaction, an
activation code for their space (sent by the notifications; returned for the operator
who prints it for a patient without contact); an import is one transaction, all rows or
none.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mss.config import Settings
from mss.core.identity import InvalidPatient, PatientIdentity, build_patient
from mss.errors import InputError
from mss.instance import opened_store
from mss.store.accounts import add_patients, get_patient, set_profile_status
from mss.store.models import ProfileStatus
from mss.store.space_accounts import issue_activation
from mss.store.sql import Tx

PATIENT_CSV_REQUIRED = ("ins", "family", "given", "birth_date", "sex")
PATIENT_CSV_OPTIONAL = (
    "birth_place",
    "email",
    "phone",
    "status",
    "oid",
    "identity_status",
    "used_family",
    "used_given",
)


@dataclass(frozen=True, slots=True)
class ImportReport:
    imported: int
    with_mailbox: int
    ignored_columns: list[str]
    codes: dict[str, str] = field(default_factory=dict)  # INS → activation code


@dataclass(frozen=True, slots=True)
class AddedPatient:
    identity: PatientIdentity
    code: str | None  # the activation code, when the patient got an account


def _add_with_codes(
    tx: Tx, identities: Sequence[PatientIdentity], patient_domain: str
) -> dict[str, str]:
    add_patients(tx, identities, patient_domain)
    now = int(time.time())
    return {
        i.ins.matricule: issue_activation(tx, i.ins.matricule, now)
        for i in identities
        if i.has_mailbox
    }


def add_patient(settings: Settings, values: dict[str, str | None]) -> AddedPatient:
    try:
        identity = build_patient(values)
    except InvalidPatient as exc:
        raise InputError(str(exc)) from None
    with opened_store(settings) as store:
        codes = store.db.write_sync(
            lambda tx: _add_with_codes(tx, [identity], settings.domains.patient)
        )
    return AddedPatient(identity, codes.get(identity.ins.matricule))


def read_patient_csv(data: str) -> tuple[list[PatientIdentity], list[str]]:
    """Validate every row of a patient CSV; raise InputError naming the first bad line."""
    first_line = data.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.DictReader(io.StringIO(data), delimiter=delimiter)
    header = [h.strip().lower() for h in reader.fieldnames or []]
    _check_header(header)
    ignored = [h for h in header if h not in PATIENT_CSV_REQUIRED + PATIENT_CSV_OPTIONAL]
    identities: list[PatientIdentity] = []
    for row in reader:
        values = {(k or "").strip().lower(): v for k, v in row.items()}
        try:
            identities.append(build_patient(values))
        except InvalidPatient as exc:
            raise InputError(f"line {reader.line_num}: {exc}") from None
    return identities, ignored


def _check_header(header: list[str]) -> None:
    missing = [c for c in PATIENT_CSV_REQUIRED if c not in header]
    if missing:
        raise InputError(
            f"the CSV header lacks {', '.join(missing)} (expected: "
            f"{', '.join(PATIENT_CSV_REQUIRED + PATIENT_CSV_OPTIONAL)})"
        )


def import_patients(settings: Settings, path: Path) -> ImportReport:
    """Import a CSV of patients in one transaction: all rows or none."""
    try:
        data = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    identities, ignored = read_patient_csv(data)
    with opened_store(settings) as store:
        codes = store.db.write_sync(
            lambda tx: _add_with_codes(tx, identities, settings.domains.patient)
        )
    return ImportReport(len(identities), sum(i.has_mailbox for i in identities), ignored, codes)


def set_patient_status(settings: Settings, ins: str, status: str) -> None:
    """Close, oppose or reopen the profile of the patient `ins`."""
    try:
        chosen = ProfileStatus(status.lower())
    except ValueError:
        raise InputError(f"status {status!r} is not one of active, closed, opposed") from None
    with opened_store(settings) as store:
        if store.db.read_sync(lambda conn: get_patient(conn, ins.upper())) is None:
            raise InputError(f"no patient with INS {ins}")
        store.db.write_sync(
            lambda tx: set_profile_status(tx, ins.upper(), chosen.value, settings.domains.patient)
        )
