"""Helpers for the patient space's tests: an HTTPS client on the running server, and a
session opened the way a successful login opens it (a real row, a real cookie) for the
tests whose subject is not the login itself (`tests/test_space_login.py` logs in for real)."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from mss.store.representatives import add_representation
from mss.store.space import NewSession, create_session

from .harness import Running

PATIENT_INS = "279035121518989"  # PAT-TROIS DOMINIQUE, of the ANS test set
OTHER_INS = "188102B17295165"  # CORSE FIGATELLIX
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def web(mss: Running) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"https://localhost:{mss.ports['https']}", verify=mss.client_tls(), timeout=30
    )


async def open_session(
    mss: Running, ins: str, *, account: str | None = None, representative: bool = False
) -> NewSession:
    """A session for `account` (default: the patient's address) showing `ins`'s space."""
    login = account or f"{ins}@patient.mssante.fr"
    now = int(time.time())
    return await mss.store.write(
        lambda tx: create_session(
            tx, account=login, ins=ins, representative=representative, now=now, lifetime=3600
        )
    )


@asynccontextmanager
async def patient_client(
    mss: Running, ins: str, **kwargs: object
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """An HTTPS client logged in to `ins`'s space, and the session's CSRF token."""
    opened = await open_session(mss, ins, **kwargs)  # type: ignore[arg-type]
    async with web(mss) as client:
        client.cookies.set("mss_espace", opened.token)
        yield client, opened.record.csrf


@asynccontextmanager
async def representative_client(
    mss: Running, parent_ins: str, ins: str, kind: str = "minor"
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """The patient `parent_ins` linked as `ins`'s legal representative (`kind`), logged in
    to `ins`'s space as the session a choice on /espace/choisir makes."""
    now = int(time.time())
    today = dt.date.today()
    await mss.store.write(lambda tx: add_representation(tx, parent_ins, ins, kind, now, today))
    account = f"{parent_ins}@patient.mssante.fr"
    async with patient_client(mss, ins, account=account, representative=True) as opened:
        yield opened


def csrf_of(html: str) -> str:
    """The CSRF token of the first form of a page."""
    found = _CSRF.search(html)
    assert found, "no CSRF field in the page"
    return found.group(1)
