"""Issue 15, metrics: `/metrics` is the sum over every worker (equal across scrapes of
an idle server), and counts what an operator watches: messages accepted and refused
by door and reply code, failed logins by door and reason class, open IMAP sessions."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiosmtplib
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mss.security.auth import reason_class
from mss.testing.imapclient import RawIMAP
from mss.testing.xdmgen import XDM, XDMDocument, cda

from .conftest import run_mss
from .harness import PASSWORD, Running, message
from .space import PATIENT_INS, patient_client
from .space_mail import PATIENT as SPACE_PATIENT
from .space_mail import add_people, pro_writes
from .test_dmp_mail import PATIENT, _drain, clinic, document_mail  # noqa: F401 (fixture)
from .test_dmp_mail import PRO as DMP_PRO
from .test_serve import ALL_PORTS_FREE, stop_server, wait_ready

JEAN = "jean.dupont@pro.mssante.test"
MARIE = "marie.martin@pro.mssante.test"
NOBODY = "personne@pro.mssante.test"


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one series in a scrape (0 when absent), read by Prometheus's parser."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    return 0.0


async def scrape(server: Running) -> str:
    async with httpx.AsyncClient(verify=server.client_tls()) as client:
        response = await client.get(f"https://localhost:{server.ports['https']}/metrics")
    assert response.status_code == 200
    return response.text


# --- summed over the workers of `mss serve` ------------------------------------------------


def _serve(
    instance: Path, workers: int, extra: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    env = {**os.environ, **ALL_PORTS_FREE, "MSS_SERVER_WORKERS": str(workers), **(extra or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "mss", "serve", "--data-dir", str(instance)],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env,
    )  # fmt: skip


def _add_pros(instance: Path, *addresses: str) -> None:
    for address in addresses:
        added = run_mss("pro", "add", address, "--password-stdin", "--data-dir", str(instance),
                        stdin=PASSWORD + "\n")  # fmt: skip
        assert added.returncode == 0, added.stderr


def _submit(port: int, ca: Path, rcpts: list[str]) -> None:
    """One SMTP connection (the kernel gives it to either worker): one message."""
    with smtplib.SMTP("localhost", port, timeout=30) as client:
        client.starttls(context=ssl.create_default_context(cafile=str(ca)))
        client.login(JEAN, PASSWORD)
        client.sendmail(JEAN, rcpts, message(JEAN, MARIE))


def _scrape(port: int, ca: Path) -> str:
    """One scrape on a connection of its own (the kernel gives it to either worker)."""
    trust = ssl.create_default_context(cafile=str(ca))
    response = httpx.get(f"https://localhost:{port}/metrics", verify=trust)
    assert response.status_code == 200
    return response.text


def _wait_for_workers(log: list[str], workers: int) -> None:
    deadline = time.monotonic() + 30
    while sum("ready" in line for line in log) < workers and time.monotonic() < deadline:
        time.sleep(0.1)


@pytest.mark.slow
def test_metrics_are_summed_over_every_worker_and_equal_across_scrapes(instance: Path) -> None:
    _add_pros(instance, JEAN, MARIE)
    folders = instance / "run" / "metrics"
    for name in ("4194999", "junk", str(os.getpid())):  # a dead server's, junk, a live one's
        (folders / name).mkdir(parents=True)
        (folders / name / "counter_1.db").write_bytes(b"")
    server = _serve(instance, workers=2)
    try:
        ports = wait_ready(server)
        _wait_for_workers(server.log, 2)  # type: ignore[attr-defined]
        assert sorted(os.listdir(folders)) == sorted([str(os.getpid()), str(server.pid)])
        ca = instance / "certs" / "ca.crt"
        sent, refused = 8, 3
        for _ in range(sent):
            _submit(ports["submission"], ca, [MARIE])
        for _ in range(refused):
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                _submit(ports["submission"], ca, [NOBODY])
        time.sleep(1.0)  # idle from now on
        bodies = [_scrape(ports["https"], ca) for _ in range(12)]
        assert all(body == bodies[0] for body in bodies), "scrapes of an idle server differ"
        text = bodies[0]
        assert sample(text, "mss_messages_accepted_total", door="submission") == sent
        refusals = sample(text, "mss_messages_refused_total",
                          door="submission", code="550", enhanced="5.1.1")  # fmt: skip
        assert refusals == refused
        assert sample(text, "mss_store_commit_batches_total", engine="sqlite") > 0
        files = os.listdir(instance / "run" / "metrics" / str(server.pid))
        assert len({f.rsplit("_", 1)[1] for f in files}) >= 2, files  # both workers count
        assert stop_server(server, signal.SIGTERM) == 0
    finally:
        server.kill()
        server.wait()


@pytest.mark.slow
def test_a_dead_workers_counts_stay_and_its_sessions_go(instance: Path) -> None:
    """A worker killed: what it counted is still in the sum; its IMAP sessions are not."""
    _add_pros(instance, JEAN, MARIE)
    server = _serve(instance, workers=2)
    try:
        ports = wait_ready(server)
        _wait_for_workers(server.log, 2)  # type: ignore[attr-defined]
        ca = instance / "certs" / "ca.crt"
        for _ in range(4):
            _submit(ports["submission"], ca, [MARIE])
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        held = [socket.create_connection(("localhost", ports["imap"])) for _ in range(4)]
        for sock in held:
            assert sock.recv(200).startswith(b"* OK")
        assert sample(_scrape(ports["https"], ca), "mss_imap_sessions", door="imap") == 4
        for pid in children:
            os.kill(int(pid), signal.SIGKILL)
        _wait_for_workers(server.log, 4)  # type: ignore[attr-defined]
        text = _scrape(ports["https"], ca)
        assert sample(text, "mss_messages_accepted_total", door="submission") == 4
        assert sample(text, "mss_imap_sessions", door="imap") == 0
        for sock in held:
            sock.close()
        assert stop_server(server, signal.SIGTERM) == 0
    finally:
        server.kill()
        server.wait()


# --- what is counted -----------------------------------------------------------------------


async def test_messages_accepted_and_refused_are_counted_by_door_and_reply_code(
    mss: Running,
) -> None:
    await mss.add_pro(JEAN)
    await mss.add_pro(MARIE)
    before = await scrape(mss)
    await mss.submit(JEAN, message(JEAN, MARIE), [MARIE])
    with pytest.raises(aiosmtplib.SMTPRecipientRefused) as refused:
        await mss.submit(JEAN, message(JEAN, NOBODY), [NOBODY])
    code, enhanced = str(refused.value.code), refused.value.message.split(" ", 1)[0]
    after = await scrape(mss)

    def grew(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert grew("mss_messages_accepted_total", door="submission") == 1
    assert (code, enhanced) == ("550", "5.1.1")
    assert grew("mss_messages_refused_total", door="submission", code=code, enhanced=enhanced) == 1
    assert "personne" not in after  # never an address nor a reply's text


@contextlib.asynccontextmanager
async def _over_tls(mss: Running) -> AsyncIterator[aiosmtplib.SMTP]:
    """A submission session after STARTTLS and EHLO."""
    client = mss.smtp()
    await client.connect()
    try:
        await client.starttls()
        await client.ehlo()
        yield client
    finally:
        client.close()


async def test_refusals_decided_by_the_protocol_layer_count_too(mss: Running) -> None:
    """Not only the pipeline's: an announced SIZE over the limit, MAIL before AUTH."""
    await mss.add_pro(JEAN)
    before = await scrape(mss)
    async with _over_tls(mss) as client:
        unauthenticated = await client.execute_command(b"MAIL", b"FROM:<" + JEAN.encode() + b">")
        await client.login(JEAN, PASSWORD)
        too_big = await client.execute_command(
            b"MAIL", b"FROM:<" + JEAN.encode() + b">", b"SIZE=999999999999"
        )
    after = await scrape(mss)
    for reply in (unauthenticated, too_big):
        assert reply.code >= 500, reply
        labels = {"door": "submission", "code": str(reply.code),
                  "enhanced": reply.message.split(" ", 1)[0]}  # fmt: skip
        name = "mss_messages_refused_total"
        assert sample(after, name, **labels) - sample(before, name, **labels) == 1, labels


async def test_login_failures_are_counted_by_door_and_reason_class(mss: Running) -> None:
    await mss.add_pro(JEAN)
    before = await scrape(mss)
    async with _over_tls(mss) as client:
        with pytest.raises(aiosmtplib.SMTPAuthenticationError):
            await client.auth_plain(JEAN, "pas le bon mot de passe")  # one attempt
    imap = await RawIMAP.connect(mss.ports["imaps"], mss.client_tls())
    assert not (await imap.command(f"LOGIN {NOBODY} secret")).ok
    await imap.close()
    after = await scrape(mss)

    def grew(**labels: str) -> float:
        name = "mss_login_failures_total"
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert grew(door="submission", reason="wrong_password") == 1, after
    assert grew(door="imap", reason="unknown_account") == 1


async def test_open_imap_sessions_are_a_gauge_by_listener(mss: Running) -> None:
    before = sample(await scrape(mss), "mss_imap_sessions", door="imaps")
    clients = [await RawIMAP.connect(mss.ports["imaps"], mss.client_tls()) for _ in range(3)]
    assert sample(await scrape(mss), "mss_imap_sessions", door="imaps") == before + 3
    for client in clients:
        await client.close()
    deadline = time.monotonic() + 5
    while sample(await scrape(mss), "mss_imap_sessions", door="imaps") != before:
        assert time.monotonic() < deadline, "closed sessions still counted"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("throttled (account, 30 s)", "throttled"),
        ("throttled (ip, 3600 s)", "throttled"),
        ("wrong password (address slowed)", "throttled"),
        ("unknown account", "unknown_account"),
        ("wrong password", "wrong_password"),
        ("account disabled", "disabled"),
        ("a patient account cannot log in here", "wrong_kind"),
        ("account without a password", "no_password"),
        ("wrong one-time code", "one_time_code"),
        ("token refused: Signature has expired", "token"),
        ("the token names another person", "token"),
        ("bearer tokens are not configured", "token"),
        ("no verified client certificate", "certificate"),
        ("certificate names no usable account", "certificate"),
        ("say which account", "certificate"),
        ("anything else, free text of 2 000 characters", "other"),
    ],
)
def test_login_failure_reasons_fall_in_few_classes(reason: str, expected: str) -> None:
    assert reason_class(reason) == expected


@pytest.mark.usefixtures("clinic")  # the mss fixture, with a professional and a patient
async def test_dmp_deposits_and_their_mdns_are_counted_by_code(mss: Running) -> None:
    before = await scrape(mss)
    good = document_mail(XDM([XDMDocument(cda())]).build())
    await mss.submit(DMP_PRO, good, [PATIENT])
    other = "188102B17295165^^^&1.2.250.1.213.1.4.10&ISO^NH"
    wrong = XDM([XDMDocument(cda(), patient=other)], submission_patient=other).build()
    await mss.submit(DMP_PRO, document_mail(wrong).replace(b"cr-0001", b"cr-0002"), [PATIENT])
    await _drain(mss)
    await _drain(mss, "mdn")
    after = await scrape(mss)

    def grew(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert grew("mss_dmp_deposits_total", result="deposited", code="") == 1
    assert grew("mss_dmp_deposits_total", result="refused", code="904") == 1
    assert grew("mss_dmp_mdns_total", code="processed") == 1
    assert grew("mss_dmp_mdns_total", code="904") == 1


async def test_a_send_refused_in_the_patient_space_counts_under_door_web(mss: Running) -> None:
    await add_people(mss)
    await mss.add_patient(PATIENT_INS, password=PASSWORD)
    await pro_writes(mss, JEAN, SPACE_PATIENT, "<m1@pro.mssante.test>")
    before = await scrape(mss)
    async with patient_client(mss, PATIENT_INS) as (client, csrf):
        refused = await client.post(  # to a professional who never wrote: the pipeline says no
            "/espace/messages/nouveau",
            data={"csrf": csrf, "destinataire": MARIE, "objet": "Q", "texte": "Docteur ?"},
        )
    assert refused.status_code == 403
    after = await scrape(mss)
    grown = {
        (s.labels["code"], s.labels["enhanced"]): s.value
        for family in text_string_to_metric_families(after)
        for s in family.samples
        if s.name == "mss_messages_refused_total" and s.labels["door"] == "web"
        and s.value != sample(before, s.name, **s.labels)
    }  # fmt: skip
    assert len(grown) == 1
    [(code, enhanced)] = grown
    assert code.startswith("5") and enhanced.startswith("5.")
