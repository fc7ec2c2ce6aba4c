"""Issue 14, throttling: the login throttle of the mail doors is in the store, so it holds
against parallel attempts over separate connections, workers and processes; one client
address failing too often is slowed, its good logins still served; an account is
throttled per address, and from everywhere but its usual addresses; every failed login
is logged on one line; old counters are purged.

Real clients (smtplib, aiosmtplib, imaplib, httpx) over loopback with the dev PKI. The
other client addresses are 127.0.0.x, which Linux routes to the loopback.
"""

from __future__ import annotations

import asyncio
import base64
import imaplib
import logging
import os
import smtplib
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from mss.store import login_throttle as throttle
from mss.store.api import Store
from mss.testing.xdmgen import INS

from .harness import PASSWORD, Running, running
from .space import PATIENT_INS, csrf_of
from .space import web as web_client
from .test_dmp_api import patient
from .test_serve import ALL_PORTS_FREE, stop_server, wait_ready

JEAN = "jean.dupont@pro.mssante.test"
MARIE = "marie.martin@pro.mssante.test"
LIMITS = throttle.LoginLimits()
NOW = 1_800_000_000
WRONG, THROTTLED, OK = 535, 454, 235


def smtp_auth(port: int, ca: Path, user: str, password: str, source: str = "127.0.0.1") -> int:
    """AUTH PLAIN over STARTTLS with the standard library's client, from `source`; the
    reply code."""
    import ssl

    context = ssl.create_default_context(cafile=str(ca))
    with smtplib.SMTP("localhost", port, timeout=60, source_address=(source, 0)) as client:
        client.starttls(context=context)
        client.ehlo()
        plain = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        code, _ = client.docmd("AUTH", f"PLAIN {plain}")
        return code


async def smtp_auths(port: int, ca: Path, attempts: list[tuple[str, str, str]]) -> list[int]:
    """Each (user, password, source address) on its own connection, all at once."""
    jobs = [(port, user, password, source) for user, password, source in attempts]
    return await at_once(jobs, ca)


async def at_once(jobs: list[tuple[int, str, str, str]], ca: Path) -> list[int]:
    """`smtp_auth` of each (port, user, password, source), on threads of their own (not
    the default executor's: the server in this process needs it for its password checks)."""
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(len(jobs)) as pool:
        return list(
            await asyncio.gather(*(
                loop.run_in_executor(pool, smtp_auth, port, ca, user, password, source)
                for port, user, password, source in jobs
            ))
        )  # fmt: skip


def imap_login(port: int, ca: Path, user: str, password: str) -> str:
    """LOGIN over IMAPS with the standard library's client: "OK", or the response code."""
    import ssl

    context = ssl.create_default_context(cafile=str(ca))
    client = imaplib.IMAP4_SSL("localhost", port, ssl_context=context, timeout=60)
    try:
        client.login(user, password)
        return "OK"
    except imaplib.IMAP4.error as exc:
        return str(exc).split("]")[0].split("[")[-1]
    finally:
        client.shutdown()


def _env(request: pytest.FixtureRequest, database: str) -> dict[str, str]:
    if database == "postgresql":
        return {"MSS_STORAGE_URL": request.getfixturevalue("postgres_url")}
    return {}


# --- the store: one atomic charge per attempt, before the check ------------------------------


async def test_parallel_attempts_pass_the_store_throttle_at_most_the_limit(store: Store) -> None:
    admissions = await asyncio.gather(*(
        store.write(lambda tx: throttle.admit(tx, JEAN, "192.0.2.7", NOW, LIMITS))
        for _ in range(50)
    ))  # fmt: skip
    assert sum(a.wait == 0 for a in admissions) == LIMITS.per_pair
    refused = [a for a in admissions if a.wait]
    assert {a.rule for a in refused} == {"account from this address"}
    assert all(0 < a.wait <= LIMITS.window for a in refused)


async def test_the_addresses_of_one_ipv6_network_are_one_client(store: Store) -> None:
    """A host moves within its /64 at will (RFC 8981): the network is what is counted."""
    sources = [f"2001:db8:0:7::{n:x}" for n in range(1, 2 * LIMITS.per_pair)]
    admissions = [
        await store.write(lambda tx, ip=ip: throttle.admit(tx, JEAN, ip, NOW, LIMITS))  # type: ignore[misc]
        for ip in sources
    ]
    assert [a.wait == 0 for a in admissions] == [True] * LIMITS.per_pair + [False] * (
        LIMITS.per_pair - 1
    )
    other = await store.write(lambda tx: throttle.admit(tx, JEAN, "2001:db8:0:8::1", NOW, LIMITS))
    assert other.wait == 0


async def test_a_right_password_is_not_counted(store: Store) -> None:
    for _ in range(3 * LIMITS.per_pair):
        admission = await store.write(lambda tx: throttle.admit(tx, JEAN, "192.0.2.7", NOW, LIMITS))
        assert admission.wait == 0
        await store.write(
            lambda tx, a=admission: throttle.succeeded(tx, JEAN, "192.0.2.7", a, NOW, LIMITS)  # type: ignore[misc]
        )
    assert not await store.read(lambda c: throttle.held(c, JEAN, "192.0.2.7", NOW, LIMITS))


async def test_old_attempt_rows_are_purged(store: Store) -> None:
    for n in range(LIMITS.per_pair + 2):
        await store.write(
            lambda tx, n=n: throttle.admit(tx, f"u{n}@x.test", "192.0.2.8", NOW, LIMITS)
        )  # type: ignore[misc]
    first = await store.write(lambda tx: throttle.admit(tx, JEAN, "192.0.2.9", NOW, LIMITS))
    await store.write(lambda tx: throttle.succeeded(tx, JEAN, "192.0.2.9", first, NOW, LIMITS))
    assert await store.write(lambda tx: throttle.purge_logins(tx, NOW + 60, LIMITS)) == 0
    later = NOW + LIMITS.window + 1
    purged = await store.write(lambda tx: throttle.purge_logins(tx, later, LIMITS))
    # every counter: 7 accounts, 7 pairs, 2 addresses, and JEAN's; the known address stays
    assert purged == 2 * (LIMITS.per_pair + 2) + 2 + 2
    assert await store.read(lambda c: throttle.is_known(c, JEAN, "192.0.2.9", later))
    gone = NOW + LIMITS.known_for + 1
    assert await store.write(lambda tx: throttle.purge_logins(tx, gone, LIMITS)) == 1


# --- served: the doors ----------------------------------------------------------------------


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_throttle_holds_against_parallel_attempts_on_two_servers(
    instance: Path, request: pytest.FixtureRequest, database: str
) -> None:
    """Two servers on one database, each with its own store and login service, as the
    workers of `mss serve` are: 50 wrong passwords at once, split between them, are
    checked (535) as often as one address may fail, the rest refused unchecked (454)."""
    env = _env(request, database)
    async with running(instance, env=env, workers=2) as one:
        await one.add_pro(JEAN)
        async with running(instance, env=env, workers=2) as two:
            ports = [one.ports["submission"], two.ports["submission"]]
            jobs = [(ports[n % 2], JEAN, f"mauvais-{n}", "127.0.0.1") for n in range(50)]
            answers = await at_once(jobs, one.ca)
            assert answers.count(WRONG) == LIMITS.per_pair, answers
            assert answers.count(THROTTLED) == 50 - LIMITS.per_pair, answers
            # the other door, the other server: the same counter, the right password too
            imap = await asyncio.to_thread(imap_login, two.ports["imaps"], two.ca, JEAN, PASSWORD)
            assert imap == "UNAVAILABLE"


@pytest.mark.slow
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_throttle_holds_against_parallel_attempts_across_processes(
    instance: Path, request: pytest.FixtureRequest, database: str
) -> None:
    """`mss serve` with two worker processes, and this process serving the same database:
    50 wrong passwords at once over separate connections, split between them."""
    env = _env(request, database)
    async with running(instance, env=env) as here:
        await here.add_pro(JEAN)
        with _served(instance, env) as ports:
            targets = [ports["submission"], here.ports["submission"]]
            jobs = [(targets[n % 3 // 2], JEAN, f"faux-{n}", "127.0.0.1") for n in range(50)]
            answers = await at_once(jobs, here.ca)
            assert answers.count(WRONG) <= LIMITS.per_pair, answers
            assert answers.count(THROTTLED) >= 50 - LIMITS.per_pair, answers
            assert await asyncio.to_thread(
                imap_login, ports["imaps"], here.ca, JEAN, PASSWORD
            ) == "UNAVAILABLE"  # fmt: skip


@contextmanager
def _served(instance: Path, env: dict[str, str]) -> Iterator[dict[str, int]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "mss", "serve", "--data-dir", str(instance)],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        env={**os.environ, **ALL_PORTS_FREE, "MSS_SERVER_WORKERS": "2", **env},
    )  # fmt: skip
    try:
        yield wait_ready(process)
        assert stop_server(process) == 0
    finally:
        process.kill()


async def test_throttled_ip_still_serves_good_logins(mss: Running) -> None:
    """Behind one address (a hospital's NAT): past its failures the address is slowed and
    its failures answered 454, but a right password for an account not itself throttled
    logs in, over SMTP and IMAP."""
    await mss.add_pro(JEAN)
    await mss.add_pro(MARIE)
    port, ca = mss.ports["submission"], mss.ca
    assert await smtp_auths(port, ca, [(MARIE, "faux", "127.0.0.1")]) == [WRONG]
    strangers = [(f"inconnu{n}@pro.mssante.test", "x", "127.0.0.1") for n in range(LIMITS.per_ip)]
    # the address's 21st failure (whichever it is) is answered 454
    answers = sorted(await smtp_auths(port, ca, strangers))
    assert answers == [THROTTLED] + [WRONG] * (LIMITS.per_ip - 1)
    assert await smtp_auths(port, ca, [(MARIE, "faux", "127.0.0.1")]) == [THROTTLED]
    assert await smtp_auths(port, ca, [(JEAN, PASSWORD, "127.0.0.1")]) == [OK]
    assert await smtp_auths(port, ca, [(MARIE, PASSWORD, "127.0.0.1")]) == [OK]
    assert await asyncio.to_thread(imap_login, mss.ports["imaps"], ca, JEAN, PASSWORD) == "OK"
    assert await asyncio.to_thread(imap_login, mss.ports["imaps"], ca, MARIE, "faux") == (
        "UNAVAILABLE"
    )
    # another address is not slowed
    assert await smtp_auths(port, ca, [(MARIE, "faux", "127.0.0.2")]) == [WRONG]


async def test_a_client_opening_its_connections_at_once_is_not_throttled(mss: Running) -> None:
    """A mail client starts with several connections, all with the right password, before
    any of them has been answered: one attempt, charged once."""
    await mss.add_pro(JEAN)
    many = 3 * LIMITS.per_pair
    jobs = [(mss.ports["submission"], JEAN, PASSWORD, "127.0.0.1")] * many
    assert await at_once(jobs, mss.ca) == [OK] * many
    with ThreadPoolExecutor(many) as pool:
        loop = asyncio.get_running_loop()
        logins = await asyncio.gather(*(
            loop.run_in_executor(pool, imap_login, mss.ports["imaps"], mss.ca, JEAN, PASSWORD)
            for _ in range(many)
        ))  # fmt: skip
    assert logins == ["OK"] * many


async def test_one_address_cannot_lock_an_account_out_from_another(mss: Running) -> None:
    await mss.add_pro(JEAN)
    port, ca = mss.ports["submission"], mss.ca
    # checked once: this process remembers the right password, the throttle still holds
    assert await smtp_auths(port, ca, [(JEAN, PASSWORD, "127.0.0.1")]) == [OK]
    attempts = [(JEAN, f"faux{n}", "127.0.0.2") for n in range(LIMITS.per_pair + 3)]
    answers = await smtp_auths(port, ca, attempts)
    assert sorted(answers) == [THROTTLED] * 3 + [WRONG] * LIMITS.per_pair
    assert await smtp_auths(port, ca, [(JEAN, PASSWORD, "127.0.0.2")]) == [THROTTLED]
    assert await smtp_auths(port, ca, [(JEAN, PASSWORD, "127.0.0.1")]) == [OK]


async def test_an_account_guessed_from_everywhere_is_throttled_but_at_its_usual_addresses(
    mss: Running,
) -> None:
    """Past `per_account` failures from many addresses, the account is refused from every
    new address, even with its password; the addresses it logged in from still work."""
    await mss.add_pro(JEAN)
    port, ca = mss.ports["submission"], mss.ca
    assert await smtp_auths(port, ca, [(JEAN, PASSWORD, "127.0.0.1")]) == [OK]
    sources = [f"127.0.0.{n}" for n in range(2, 2 + LIMITS.per_account // LIMITS.per_pair)]
    attempts = [(JEAN, f"faux{n}", s) for s in sources for n in range(LIMITS.per_pair)]
    assert await smtp_auths(port, ca, attempts) == [WRONG] * LIMITS.per_account
    assert await smtp_auths(port, ca, [(JEAN, PASSWORD, "127.0.0.99")]) == [THROTTLED]
    assert await smtp_auths(port, ca, [(JEAN, PASSWORD, "127.0.0.1")]) == [OK]
    # at the usual address, wrong passwords are still bounded by the address's own count
    usual = [(JEAN, f"faux{n}", "127.0.0.1") for n in range(LIMITS.per_pair + 1)]
    assert sorted(await smtp_auths(port, ca, usual)) == [THROTTLED] + [WRONG] * LIMITS.per_pair


async def test_failed_logins_are_logged_with_door_account_address_and_reason(
    instance: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mss.security.auth")
    async with running(instance) as mss:
        await mss.add_pro(JEAN)
        await mss.add_patient(INS, password=PASSWORD)
        port, ca = mss.ports["submission"], mss.ca
        await smtp_auths(port, ca, [(JEAN, "secret-faux", "127.0.0.3")])
        await smtp_auths(port, ca, [("personne@pro.mssante.test", "secret-faux", "127.0.0.3")])
        await asyncio.to_thread(imap_login, mss.ports["imaps"], ca, JEAN, "secret-faux")
        url = f"https://localhost:{mss.ports['https']}/api/dmp/me/documents"
        async with httpx.AsyncClient(verify=mss.client_tls()) as web:
            answers = [
                (await web.get(url, auth=patient("secret-faux"))).status_code
                for _ in range(LIMITS.per_pair + 1)
            ]
            refused = await web.get(
                url.replace("/me/documents", f"/patients/{INS}/documents"),
                headers={"Authorization": "Bearer pas-un-jeton"},
            )
        async with web_client(mss) as space:
            page = await space.get("/espace/connexion")
            form = {"csrf": csrf_of(page.text), "identifiant": PATIENT_INS,
                    "mot_de_passe": "secret-faux"}  # fmt: skip
            assert (await space.post("/espace/connexion", data=form)).status_code == 400
    assert answers == [401] * LIMITS.per_pair + [429]
    assert refused.status_code == 401
    lines = [r.getMessage() for r in caplog.records if "login refused" in r.getMessage()]
    assert (
        f"login refused: door=submission account='{JEAN}' ip=127.0.0.3 reason=wrong password"
        in lines
    )
    assert (
        "login refused: door=submission account='personne@pro.mssante.test' ip=127.0.0.3"
        " reason=unknown account" in lines
    )
    assert f"login refused: door=imap account='{JEAN}' ip=127.0.0.1 reason=wrong password" in lines
    dmp = [line for line in lines if "door=dmp-api" in line]
    basic = [line for line in dmp if "account='-'" not in line]
    assert len(basic) == LIMITS.per_pair + 1
    assert "reason=throttled (account from this address" in basic[-1]
    assert any(line.startswith("login refused: door=dmp-api account='-'") for line in dmp)
    assert (
        f"login refused: door=space account='{PATIENT_INS}' ip=127.0.0.1 reason=wrong password"
        in lines
    )
    assert not any("secret-faux" in r.getMessage() for r in caplog.records)


async def test_a_long_account_name_is_logged_truncated(
    mss: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mss.security.auth")
    await smtp_auths(mss.ports["submission"], mss.ca, [("a" * 300, "x", "127.0.0.4")])
    (line,) = [r.getMessage() for r in caplog.records if "login refused" in r.getMessage()]
    assert f"account='{'a' * 100}' ip=127.0.0.4" in line
