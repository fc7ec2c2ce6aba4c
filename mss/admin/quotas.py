"""An account's own quotas: `mss pro quota` (store/quotas.py)."""

from __future__ import annotations

from mss.config import Settings
from mss.core.address import InvalidAddress, parse_address
from mss.core.digits import ascii_digits
from mss.errors import InputError
from mss.instance import opened_store
from mss.instance import quota as default_quota
from mss.store.accounts import get_account
from mss.store.quotas import RESOURCES, Quota, Usage, account_quota, set_account_quota

_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_limit(text: str, *, size: bool = False) -> int | None:
    """A limit from the command line: a number (sizes may end in K, M, G, T: powers of
    1024), 0 for none, or `default` (None: the settings' again)."""
    value = text.strip().upper()
    if value == "DEFAULT":
        return None
    unit = value[-1:] if size and value[-1:] in _UNITS else ""
    digits = value[: len(value) - len(unit)]
    if not ascii_digits(digits) or len(digits) > 15:
        kind = "a size (5G, 500M, 0 = none)" if size else "a number (0 = none)"
        raise InputError(f"{text!r} is not {kind} nor default")
    return int(digits) * _UNITS[unit]


def set_quota(
    settings: Settings, address: str, changes: dict[str, int | None]
) -> tuple[Quota, Usage]:
    """Set an account's own limits (`changes`: resource -> number, 0 none, None the
    settings'); return its limits and usage now. Any account of this instance."""
    try:
        mailbox = str(parse_address(address))
    except InvalidAddress as exc:
        raise InputError(str(exc)) from None
    assert set(changes) <= set(RESOURCES)
    with opened_store(settings) as store:
        account = store.db.read_sync(lambda c: get_account(c, mailbox))
        if account is None or account.id is None:
            raise InputError(f"{mailbox} is not a mailbox of this instance")
        account_id = account.id
        if changes:
            store.db.write_sync(lambda tx: set_account_quota(tx, account_id, **changes))
        default = default_quota(settings)
        return store.db.read_sync(lambda c: account_quota(c, account_id, default))
