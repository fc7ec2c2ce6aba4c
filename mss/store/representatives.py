"""Legal representatives: a patient of this operator (with their own INS and space, e.g.
a parent) who acts for another patient — a minor until they come of age, or a protected
adult — linked and unlinked by the operator. A link to a minor ends by itself on their
eighteenth birthday (DOMAIN.md §5): every query here decides it from the birth date."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import insert, select, update

from mss.errors import DuplicateError, InputError, NotFoundError
from mss.store.accounts import patient_name
from mss.store.models import patient_table, space_representation_table
from mss.store.sql import Conn, RawStatement, Tx

KINDS = ("minor", "protected_adult")
MAJORITY = 18
_END_SESSIONS = RawStatement(
    "DELETE FROM space_session WHERE ins = ? AND account LIKE ? AND representative = ?"
)

_rep = space_representation_table
_pat = patient_table


@dataclass(frozen=True, slots=True)
class Representation:
    representative_ins: str
    ins: str
    kind: str
    created: int
    ended: int | None
    birth_date: dt.date
    name: str

    def active(self, today: dt.date) -> bool:
        """Not unlinked, and not a minor who came of age."""
        return self.ended is None and not (self.kind == "minor" and of_age(self.birth_date, today))


def of_age(birth_date: dt.date, today: dt.date) -> bool:
    try:
        majority = birth_date.replace(year=birth_date.year + MAJORITY)
    except ValueError:  # born on 29 February
        majority = dt.date(birth_date.year + MAJORITY, 3, 1)
    return majority <= today


def _query(*where: object) -> object:
    return (
        select(
            _rep.c.representative_ins,
            _rep.c.ins,
            _rep.c.kind,
            _rep.c.created,
            _rep.c.ended,
            _pat.c.birth_date,
            _pat.c.birth_given,
            _pat.c.birth_family,
            _pat.c.used_family,
        )
        .join(_pat, _pat.c.ins == _rep.c.ins)
        .where(*where)  # type: ignore[arg-type]
        .order_by(_rep.c.created, _rep.c.id)
    )


def _records(conn: Conn, *where: object) -> list[Representation]:
    rows = conn.execute(_query(*where))  # type: ignore[call-overload]
    return [
        Representation(r[0], r[1], r[2], int(r[3]), r[4], r[5], patient_name(r[6], r[8] or r[7]))
        for r in rows
    ]


def represented_by(conn: Conn, representative_ins: str, today: dt.date) -> list[Representation]:
    """The patients `representative_ins` may act for today."""
    links = _records(conn, _rep.c.representative_ins == representative_ins, _rep.c.ended.is_(None))
    return [link for link in links if link.active(today)]


def representatives_of(conn: Conn, ins: str) -> list[Representation]:
    """Every link to the patient `ins`, ended or not (the operator's view)."""
    return _records(conn, _rep.c.ins == ins)


def may_act_for(conn: Conn, representative_ins: str, ins: str, today: dt.date) -> bool:
    return any(link.ins == ins for link in represented_by(conn, representative_ins, today))


def _patient_birth(conn: Conn, ins: str) -> dt.date:
    found = conn.execute(select(_pat.c.birth_date).where(_pat.c.ins == ins)).first()
    if found is None:
        raise NotFoundError(f"no patient with INS {ins}")
    birth: dt.date = found[0]
    return birth


def add_representation(
    tx: Tx, representative_ins: str, ins: str, kind: str, now: int, today: dt.date
) -> None:
    """Link a representative to a patient; refused for oneself, a duplicate, an adult
    as a minor."""
    if kind not in KINDS:
        raise InputError(f"kind {kind!r} is not one of minor, protected-adult")
    if representative_ins == ins:
        raise InputError("a patient cannot represent themself")
    _patient_birth(tx.conn, representative_ins)
    if kind == "minor" and of_age(_patient_birth(tx.conn, ins), today):
        raise InputError(f"the patient {ins} is not a minor")
    if may_act_for(tx.conn, representative_ins, ins, today):
        raise DuplicateError(f"{representative_ins} already represents {ins}")
    tx.conn.execute(
        insert(_rep).values(
            representative_ins=representative_ins, ins=ins, kind=kind, created=now, ended=None
        )
    )


def end_representation(tx: Tx, representative_ins: str, ins: str, now: int) -> bool:
    """Unlink; the representative's sessions showing that patient end at once."""
    done = tx.conn.execute(
        update(_rep)
        .where(
            _rep.c.representative_ins == representative_ins,
            _rep.c.ins == ins,
            _rep.c.ended.is_(None),
        )
        .values(ended=now)
    ).rowcount
    _END_SESSIONS.run(tx.conn, ins, f"{representative_ins}@%", True)
    return bool(done)
