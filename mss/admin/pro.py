"""Professional (and applicative) mailboxes: `mss pro add|list|show|password|disable|
enable|delete|webhook`, so that an operator never has to open the database."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from mss.config import Settings
from mss.core.address import Address, InvalidAddress, parse_address
from mss.core.digits import ascii_digits
from mss.errors import InputError
from mss.instance import opened_store
from mss.notify.webhooks import new_secret
from mss.security.passwords import hash_password
from mss.store import notify as notes
from mss.store.accounts import (
    AccountRecord,
    add_account,
    delete_account,
    get_account,
    list_accounts,
    set_password,
)
from mss.store.models import AccountKind, BalType
from mss.store.space_patients import set_account_disabled

PROFESSIONAL_KINDS = (AccountKind.PROFESSIONAL.value, AccountKind.APPLICATIVE.value)


@dataclass(frozen=True, slots=True)
class ProView:
    """What `show` and `list` print of a professional mailbox (no secret)."""

    address: str
    type: str | None
    name: str | None
    national_id: str | None
    password: bool  # whether a password is set (else: certificate or Pro Santé Connect only)
    disabled: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _view(account: AccountRecord) -> ProView:
    return ProView(account.address, account.bal_type, account.display_name,
                   account.national_id, account.password_hash is not None,
                   account.disabled)  # fmt: skip


def list_professionals(settings: Settings) -> list[ProView]:
    with opened_store(settings) as store:
        accounts = store.db.read_sync(list_accounts)
    return [_view(a) for a in accounts if a.kind in PROFESSIONAL_KINDS]


def _professional(settings: Settings, address: str) -> AccountRecord:
    mailbox = address.strip().lower()
    with opened_store(settings) as store:
        account = store.db.read_sync(lambda c: get_account(c, mailbox))
    if account is None or account.kind not in PROFESSIONAL_KINDS:
        raise InputError(f"no professional mailbox {address} here (see mss pro list)")
    return account


def show_professional(settings: Settings, address: str) -> ProView:
    return _view(_professional(settings, address))


def set_professional_password(settings: Settings, address: str, password: str) -> None:
    account = _professional(settings, address)
    hashed = _password_hash(password)
    assert hashed is not None
    with opened_store(settings) as store:
        store.db.write_sync(lambda tx: set_password(tx, account.address, hashed))


def set_professional_disabled(settings: Settings, address: str, disabled: bool) -> None:
    """Disabled: no login on any door, and mail to it refused (550 5.1.1)."""
    account = _professional(settings, address)
    with opened_store(settings) as store:
        store.db.write_sync(lambda tx: set_account_disabled(tx, account.address, disabled))


def delete_professional(settings: Settings, address: str) -> int:
    """Delete the mailbox, its folders and messages; returns how many messages went."""
    account = _professional(settings, address)
    with opened_store(settings) as store:
        return store.db.write_sync(lambda tx: delete_account(tx, account.address))


def add_professional(
    settings: Settings,
    *,
    address: str,
    password: str | None,
    rpps: str | None = None,
    adeli: str | None = None,
    name: str | None = None,
    bal_type: str = "PER",
) -> str:
    """Create a professional (or applicative) mailbox on a local professional domain."""
    parsed = _professional_address(settings, address)
    kind_type = _bal_type(bal_type)
    national = national_id(rpps, adeli)
    password_hash = _password_hash(password)
    kind = AccountKind.APPLICATIVE if kind_type is BalType.APP else AccountKind.PROFESSIONAL
    with opened_store(settings) as store:
        store.db.write_sync(
            lambda tx: add_account(
                tx,
                address=str(parsed),
                kind=kind,
                bal_type=kind_type.value,
                display_name=name,
                password_hash=password_hash,
                national_id=national,
            )
        )
    return str(parsed)


def _professional_address(settings: Settings, address: str) -> Address:
    try:
        parsed = parse_address(address)
    except InvalidAddress as exc:
        raise InputError(str(exc)) from None
    if parsed.domain not in settings.domains.professional:
        raise InputError(
            f"{parsed.domain} is not a professional domain of this instance "
            f"({', '.join(settings.domains.professional)})"
        )
    return parsed


def _bal_type(bal_type: str) -> BalType:
    try:
        return BalType(bal_type.upper())
    except ValueError:
        raise InputError(f"--type {bal_type!r} is not one of PER, ORG, APP, CAB") from None


def _password_hash(password: str | None) -> str | None:
    if password is None:
        return None
    try:
        return hash_password(password)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def national_id(rpps: str | None, adeli: str | None) -> str | None:
    """The national id of a professional: 8+RPPS or 0+ADELI."""
    if rpps is not None:
        if not (len(rpps) == 11 and ascii_digits(rpps)):
            raise InputError(f"--rpps {rpps!r} must be 11 digits")
        return "8" + rpps
    if adeli is not None:
        if not (len(adeli) == 9 and adeli.isalnum()):
            raise InputError(f"--adeli {adeli!r} must be 9 characters")
        return "0" + adeli
    return None


def set_webhook(settings: Settings, address: str, url: str | None, *, rotate: bool) -> str:
    """An applicative mailbox's webhook (Standard Webhooks): set its URL (a new secret,
    returned once), rotate its secret (the old one stays valid beside the new one until
    the next rotation), or remove it (`url` None). Returns the new secret, or ""."""
    mailbox = str(_professional_address(settings, address))
    if url is not None and not url.startswith(("https://", "http://")):
        raise InputError(f"{url!r}: a webhook URL is http(s)://…")
    with opened_store(settings) as store:
        account = store.db.read_sync(lambda c: get_account(c, mailbox))
        if account is None or account.bal_type != BalType.APP.value:
            raise InputError(f"{mailbox} is not an applicative (APP) mailbox of this instance")
        current = store.db.read_sync(lambda c: notes.webhook(c, mailbox))
        if url is None and not rotate:
            store.db.write_sync(lambda tx: notes.remove_webhook(tx, mailbox))
            return ""
        target = url or (current[0] if current else None)
        if target is None:
            raise InputError(f"{mailbox} has no webhook to rotate: give its URL")
        secret = new_secret()
        kept = current[1][:1] if (rotate and current) else []
        now = int(time.time())
        store.db.write_sync(lambda tx: notes.set_webhook(tx, mailbox, target, [secret, *kept], now))
        return secret
