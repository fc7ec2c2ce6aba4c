"""The MSSanté trust space's whitelist: `mss trust import|list`."""

from __future__ import annotations

from pathlib import Path

from mss.config import Settings
from mss.core.trust import WhitelistError, parse_whitelist
from mss.errors import InputError
from mss.instance import opened_store
from mss.store.trust import replace_whitelist, trusted_domains


def import_whitelist(settings: Settings, path: Path) -> tuple[int, int, int]:
    """Replace the whitelist by the domains of the national XML file: (total, added, removed)."""
    try:
        domains = parse_whitelist(path.read_bytes())
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    except WhitelistError as exc:
        raise InputError(f"{path}: {exc}") from None
    with opened_store(settings) as store:
        added, removed = store.db.write_sync(lambda tx: replace_whitelist(tx, domains))
    return len(domains), added, removed


def whitelist(settings: Settings) -> list[str]:
    with opened_store(settings) as store:
        return store.db.read_sync(trusted_domains)
