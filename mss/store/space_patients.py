"""What the patient space and the operator need to know of a patient's login: the
account (password hash, disabled) joined to the patient (profile, contacts, birth date),
the list of patients, and switching an account off or on."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select, update

from mss.errors import NotFoundError
from mss.store.accounts import patient_name
from mss.store.models import account_table, patient_table
from mss.store.sql import Conn, RawStatement, Tx

_acc = account_table
_pat = patient_table


@dataclass(frozen=True, slots=True)
class PatientLogin:
    ins: str
    name: str
    birth_date: dt.date
    profile_status: str
    identity_status: str
    email: str | None
    phone: str | None
    address: str | None  # the account's, None without an account
    disabled: bool  # what every door checks: the operator's switch or a closed profile
    password_hash: str | None = field(default=None, repr=False)
    operator_disabled: bool = False  # `mss patient disable`, the operator's alone

    @property
    def activated(self) -> bool:
        return bool(self.password_hash)


def _select() -> object:
    return select(
        _pat.c.ins, _pat.c.birth_given, _pat.c.birth_family, _pat.c.used_family,
        _pat.c.birth_date, _pat.c.profile_status, _pat.c.identity_status, _pat.c.email,
        _pat.c.phone, _acc.c.address, _acc.c.disabled, _acc.c.password_hash,
        _acc.c.operator_disabled,
    ).select_from(_pat.outerjoin(_acc, _acc.c.patient_id == _pat.c.id))  # fmt: skip


def _record(row: tuple[object, ...]) -> PatientLogin:
    ins, given, family, used_family, birth, profile, identity, email, phone = row[:9]
    name = patient_name(str(given), str(used_family or family))
    return PatientLogin(str(ins), name, birth, str(profile), str(identity), email, phone,  # type: ignore[arg-type]
                        row[9], bool(row[10]), row[11], bool(row[12]))  # type: ignore[arg-type]  # fmt: skip


@dataclass(frozen=True, slots=True)
class SessionFacts:
    """What every request of a session checks of the patient it shows."""

    address: str | None
    disabled: bool
    operator_disabled: bool
    profile_status: str


_SESSION_FACTS = RawStatement(
    "SELECT a.address, a.disabled, a.operator_disabled, p.profile_status FROM patient p"
    " LEFT JOIN account a ON a.patient_id = p.id WHERE p.ins = ?"
)


def session_facts(conn: Conn, ins: str) -> SessionFacts | None:
    """`patient_login`'s few columns, read on every request (a plain statement)."""
    row = _SESSION_FACTS.first(conn, ins)
    if row is None:
        return None
    return SessionFacts(row[0], bool(row[1]), bool(row[2]), str(row[3]))


def patient_login(conn: Conn, ins: str) -> PatientLogin | None:
    row = conn.execute(_select().where(_pat.c.ins == ins)).first()  # type: ignore[attr-defined]
    return None if row is None else _record(tuple(row))


def list_patient_logins(conn: Conn) -> list[PatientLogin]:
    rows = conn.execute(_select().order_by(_pat.c.ins))  # type: ignore[attr-defined]
    return [_record(tuple(row)) for row in rows]


def set_account_disabled(tx: Tx, address: str, disabled: bool) -> None:
    """The operator's switch (`mss patient disable|enable`): switched on again, the
    account stays disabled while its patient's profile is not active."""
    row = tx.conn.execute(
        select(_pat.c.profile_status, _pat.c.identity_status)
        .select_from(_acc.outerjoin(_pat, _acc.c.patient_id == _pat.c.id))
        .where(_acc.c.address == address)
    ).first()
    closed = row is not None and row[0] is not None and (row[0], row[1]) != ("active", "QUAL")
    done = tx.conn.execute(
        update(_acc)
        .where(_acc.c.address == address)
        .values(operator_disabled=disabled, disabled=disabled or closed)
    ).rowcount
    if not done:
        raise NotFoundError(f"no account {address}")
