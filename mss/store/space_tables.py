"""The patient space's tables (SQLModel): its sessions, one-time codes, TOTP keys, known
devices, login throttle and legal representations. Registered in the store's one metadata
when `mss.store.models` is imported (migrations 0009, 0010, 0013)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index
from sqlmodel import Field, SQLModel


class SpaceSession(SQLModel, table=True):
    """A login to the patient space: the cookie's token is never stored, only its SHA-256
    (`id`); `ins` is whose space is shown (the patient, or one a representative acts for)."""

    __tablename__ = "space_session"

    id: str = Field(max_length=64, primary_key=True)
    account: str = Field(max_length=254, index=True)  # the address that logged in
    ins: str = Field(max_length=15)
    representative: bool = False
    csrf: str = Field(max_length=64)
    created: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_seen: int = Field(sa_column=Column(BigInteger, nullable=False))
    expires: int = Field(sa_column=Column(BigInteger, nullable=False))  # the absolute timeout
    user_agent: str = Field(default="", max_length=200)
    address: str = Field(default="", max_length=45)  # the client's IP address


class SpaceCode(SQLModel, table=True):
    """A one-time code (activation, login, reset): only its hash is kept; it dies when
    used, expired or after five wrong tries. `id` is the SHA-256 of the pending token the
    browser holds between the two steps of a login (random for the other purposes)."""

    __tablename__ = "space_code"
    __table_args__ = (Index("ix_space_code_ins_purpose", "ins", "purpose"),)

    id: str = Field(max_length=64, primary_key=True)
    ins: str = Field(max_length=15)
    purpose: str = Field(max_length=12)  # activation, login, reset
    method: str = Field(max_length=8)  # email, sms, totp, print
    code_hash: str = Field(max_length=64)  # empty for a TOTP login
    created: int = Field(sa_column=Column(BigInteger, nullable=False))
    expires: int = Field(sa_column=Column(BigInteger, nullable=False))
    attempts: int = 0
    used: bool = False


class SpaceTotp(SQLModel, table=True):
    """A patient's TOTP secret (RFC 6238): in use once a first code confirmed it;
    `last_step` refuses a replay of the same time step."""

    __tablename__ = "space_totp"

    ins: str = Field(max_length=15, primary_key=True)
    secret: str = Field(max_length=64)
    confirmed: bool = False
    last_step: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    # a new enrolment started while `secret` is in use: replaces it once confirmed
    pending_secret: str | None = Field(default=None, max_length=64)


class SpaceDevice(SQLModel, table=True):
    """A browser that logged in to a patient's space (the SHA-256 of its long-lived
    device cookie): an unknown one brings the `new_device` notice."""

    __tablename__ = "space_device"

    id: str = Field(max_length=64, primary_key=True)
    ins: str = Field(max_length=15, index=True)
    created: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_seen: int = Field(sa_column=Column(BigInteger, nullable=False))


class SpaceThrottle(SQLModel, table=True):
    """Failed logins of one key (`account:<INS>` or `ip:<address>`), shared by every
    worker process: `failures` in the window started at `since`, `blocked_until` the
    back-off."""

    __tablename__ = "space_throttle"

    key: str = Field(max_length=300, primary_key=True)
    failures: int = 0
    since: int = Field(sa_column=Column(BigInteger, nullable=False))
    blocked_until: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


class SpaceRepresentation(SQLModel, table=True):
    """A legal representative (a patient with their own INS and space) acting for another
    patient: a minor (until they come of age) or a protected adult; `ended` once unlinked."""

    __tablename__ = "space_representation"
    __table_args__ = (Index("ix_space_representation_pair", "representative_ins", "ins"),)

    id: int | None = Field(default=None, primary_key=True)
    representative_ins: str = Field(max_length=15)
    ins: str = Field(max_length=15, index=True)
    kind: str = Field(max_length=16)  # minor, protected_adult
    created: int = Field(sa_column=Column(BigInteger, nullable=False))
    ended: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


space_session_table = SpaceSession.__table__  # type: ignore[attr-defined]
space_representation_table = SpaceRepresentation.__table__  # type: ignore[attr-defined]
