"""The operator's hold on patients' space accounts: `mss patient password|show|list|
disable|enable|code|represent|representatives|unrepresent`.

A patient logs in to the space with a password they set with an activation code (issued
by `mss patient add|import|code`, sent through the notifications and printed on demand)
or that the operator sets. Disabling an account ends its sessions at once.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import asdict, dataclass
from typing import Any

from mss.config import Settings
from mss.errors import InputError
from mss.instance import opened_store
from mss.security.passwords import hash_password
from mss.store.accounts import set_password
from mss.store.notifications import add_notification
from mss.store.representatives import (
    Representation,
    add_representation,
    end_representation,
    representatives_of,
)
from mss.store.space import end_sessions_about, end_sessions_of
from mss.store.space_accounts import issue_activation
from mss.store.space_patients import (
    PatientLogin,
    list_patient_logins,
    patient_login,
    set_account_disabled,
)
from mss.store.sql import Tx

MIN_PASSWORD = 12  # as the space asks of patients


@dataclass(frozen=True, slots=True)
class PatientView:
    """What `show` and `list` print of a patient (no secret)."""

    ins: str
    name: str
    birth_date: str
    profile: str
    identity: str
    address: str | None
    account: str  # none, not activated, active, disabled
    email: str | None
    phone: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _view(found: PatientLogin) -> PatientView:
    state = "none" if found.address is None else "not activated"
    if found.address is not None and found.activated:
        state = "active"
    if found.disabled:
        state = "disabled"
    return PatientView(found.ins, found.name, str(found.birth_date), found.profile_status,
                       found.identity_status, found.address, state, found.email,
                       found.phone)  # fmt: skip


def _account(settings: Settings, ins: str) -> PatientLogin:
    with opened_store(settings) as store:
        found = store.db.read_sync(lambda c: patient_login(c, ins.upper()))
    if found is None:
        raise InputError(f"no patient with INS {ins}")
    if found.address is None:
        raise InputError(f"the patient {ins} has no account (profile not active or INS not QUAL)")
    return found


def show_patient(settings: Settings, ins: str) -> PatientView:
    with opened_store(settings) as store:
        found = store.db.read_sync(lambda c: patient_login(c, ins.upper()))
    if found is None:
        raise InputError(f"no patient with INS {ins}")
    return _view(found)


def list_patients(settings: Settings) -> list[PatientView]:
    with opened_store(settings) as store:
        return [_view(p) for p in store.db.read_sync(list_patient_logins)]


def set_patient_password(settings: Settings, ins: str, password: str) -> None:
    """Set the space password of `ins` (its sessions end; a notice if it had one)."""
    if len(password) < MIN_PASSWORD:
        raise InputError(f"the password must have at least {MIN_PASSWORD} characters")
    found = _account(settings, ins)
    hashed = hash_password(password)

    def job(tx: Tx) -> None:
        assert found.address is not None
        set_password(tx, found.address, hashed)
        end_sessions_of(tx, found.address)
        if found.activated:
            add_notification(tx, "password_changed", found.ins)

    with opened_store(settings) as store:
        store.db.write_sync(job)


def set_patient_disabled(settings: Settings, ins: str, disabled: bool) -> None:
    """Switch a patient's account off (its sessions end at once; like a closed profile,
    mail to it is refused too) or on again (only with an active profile)."""
    found = _account(settings, ins)
    address = found.address
    assert address is not None
    if not disabled and found.profile_status != "active":
        raise InputError(
            f"the profile of {found.ins} is {found.profile_status}: reopen it first "
            f"(mss patient status {found.ins} active)"
        )

    def job(tx: Tx) -> None:
        set_account_disabled(tx, address, disabled)
        if disabled:  # theirs, and their representatives' showing them
            end_sessions_about(tx, address, found.ins)

    with opened_store(settings) as store:
        store.db.write_sync(job)


def new_activation_code(settings: Settings, ins: str) -> str:
    """A new activation code (any earlier one dies), sent to the patient and returned."""
    found = _account(settings, ins)
    with opened_store(settings) as store:
        return store.db.write_sync(lambda tx: issue_activation(tx, found.ins, int(time.time())))


def represent(settings: Settings, representative: str, ins: str, kind: str) -> None:
    chosen = kind.replace("-", "_").lower()
    now, today = int(time.time()), dt.date.today()
    with opened_store(settings) as store:
        store.db.write_sync(
            lambda tx: add_representation(
                tx, representative.upper(), ins.upper(), chosen, now, today
            )
        )


def unrepresent(settings: Settings, representative: str, ins: str) -> None:
    now = int(time.time())
    with opened_store(settings) as store:
        done = store.db.write_sync(
            lambda tx: end_representation(tx, representative.upper(), ins.upper(), now)
        )
    if not done:
        raise InputError(f"{representative} does not represent {ins}")


def representatives(settings: Settings, ins: str) -> list[Representation]:
    with opened_store(settings) as store:
        return store.db.read_sync(lambda c: representatives_of(c, ins.upper()))
