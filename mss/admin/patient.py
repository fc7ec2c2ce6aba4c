"""Patients: `mss patient add|import|status`.

A patient with an active profile and a qualified identity gets a mailbox on the
patient domain (`store.accounts.add_patients` decides); an import is one
transaction, all rows or none.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from mss.config import Settings
from mss.core.identity import InvalidPatient, PatientIdentity, build_patient
from mss.errors import InputError
from mss.instance import opened_store
from mss.store.accounts import add_patients, get_patient, set_profile_status
from mss.store.models import ProfileStatus

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


def add_patient(settings: Settings, values: dict[str, str | None]) -> PatientIdentity:
    try:
        identity = build_patient(values)
    except InvalidPatient as exc:
        raise InputError(str(exc)) from None
    with opened_store(settings) as store:
        store.db.write_sync(lambda tx: add_patients(tx, [identity], settings.domains.patient))
    return identity


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
        store.db.write_sync(lambda tx: add_patients(tx, identities, settings.domains.patient))
    return ImportReport(len(identities), sum(i.has_mailbox for i in identities), ignored)


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
