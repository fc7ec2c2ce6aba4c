"""Professional (and applicative) mailboxes: `mss pro add`."""

from __future__ import annotations

import time

from mss.config import Settings
from mss.core.address import Address, InvalidAddress, parse_address
from mss.errors import InputError
from mss.instance import opened_store
from mss.notify.webhooks import new_secret
from mss.security.passwords import hash_password
from mss.store import notify as notes
from mss.store.accounts import add_account, get_account
from mss.store.models import AccountKind, BalType


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
        if not (len(rpps) == 11 and rpps.isdigit()):
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
