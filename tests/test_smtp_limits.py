"""The remaining limits and admin commands of the mail path."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiosmtplib
import pytest

from mss.store.queue import QueueEntry

from .conftest import run_mss
from .harness import Running, message, running

JEAN = "jean.dupont@pro.mssante.test"
MARIE = "marie.martin@pro.mssante.test"

WHITELIST = """<?xml version="1.0" encoding="UTF-8"?>
<ListeBlanche xmlns="https://listeblanche.mssante.fr/schema">
  <Domaine><Nom>autre.mssante.test</Nom><Denomination>Opérateur B</Denomination></Domaine>
  <Domaine><Nom>CHU-Exemple.mssante.fr</Nom></Domaine>
</ListeBlanche>
"""


async def test_header_section_over_the_limit_is_552(mss: Running) -> None:
    await mss.add_pro(JEAN)
    await mss.add_pro(MARIE, password=None)
    headers = {f"X-Padding-{i}": "x" * 900 for i in range(80)}  # ~72 KB of header
    with pytest.raises(aiosmtplib.SMTPDataError) as info:
        await mss.submit(JEAN, message(JEAN, MARIE, headers=headers), [MARIE])
    assert (info.value.code, info.value.message[:5]) == (552, "5.3.4")


async def test_data_that_never_ends_times_out(instance: Path) -> None:
    async with running(instance, overrides={"smtp": {"data_timeout": 1}}) as mss:
        await mss.add_pro(JEAN)
        await mss.add_pro(MARIE, password=None)
        client = mss.smtp()
        await client.connect()
        await client.starttls()
        await client.login(JEAN, "mot-de-passe-de-test")
        await client.mail(JEAN)
        await client.rcpt(MARIE)
        code, _ = await client.execute_command(b"DATA")
        assert code == 354
        reply = await asyncio.wait_for(client.protocol.read_response(), 10)  # type: ignore[union-attr]
        client.close()
        assert (reply.code, reply.message[:5]) == (421, "4.4.2")


def test_trust_import_replaces_the_whitelist(instance: Path, tmp_path: Path) -> None:
    xml = tmp_path / "listeblanchemssante.xml"
    xml.write_text(WHITELIST)
    result = run_mss("trust", "import", str(xml), "--data-dir", str(instance))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "whitelist: 2 domains (2 added, 0 removed)"
    listed = run_mss("trust", "list", "--data-dir", str(instance)).stdout.split()
    assert listed == ["autre.mssante.test", "chu-exemple.mssante.fr"]
    xml.write_text(WHITELIST.replace("<Domaine><Nom>CHU-Exemple.mssante.fr</Nom></Domaine>", ""))
    result = run_mss("trust", "import", str(xml), "--data-dir", str(instance))
    assert result.stdout.strip() == "whitelist: 1 domains (0 added, 1 removed)"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("<x>not the whitelist</x>", "no //Domaine/Nom"),
        ("<ListeBlanche", "not a valid XML"),
        ('<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', "not a valid XML"),
        ("<L><Domaine><Nom>pas un domaine</Nom></Domaine></L>", "is not a domain name"),
    ],
)
def test_trust_import_refuses_bad_files_and_changes_nothing(
    instance: Path, tmp_path: Path, content: str, fragment: str
) -> None:
    xml = tmp_path / "bad.xml"
    xml.write_text(content)
    result = run_mss("trust", "import", str(xml), "--data-dir", str(instance))
    assert result.returncode == 1
    assert fragment in result.stderr
    assert run_mss("trust", "list", "--data-dir", str(instance)).stdout.startswith(
        "none"
    )  # nothing imported


async def test_queue_commands_list_retry_and_drop(mss: Running) -> None:
    await mss.add_pro(JEAN)
    await mss.trust("autre.mssante.test")
    # no route to the peer: the entry stays queued
    await mss.submit(JEAN, message(JEAN, "x@autre.mssante.test"), ["x@autre.mssante.test"])
    data = str(mss.data_dir)
    listed = await asyncio.to_thread(run_mss, "queue", "list", "--data-dir", data)
    assert "jean.dupont@pro.mssante.test → x@autre.mssante.test" in listed.stdout
    retried = await asyncio.to_thread(run_mss, "queue", "retry", "--data-dir", data)
    assert retried.stdout.strip() == "1 queued entries due now"
    entry_id = listed.stdout.splitlines()[1].split()[0]
    dropped = await asyncio.to_thread(run_mss, "queue", "drop", entry_id, "--data-dir", data)
    assert dropped.stdout.strip() == "1 entries dropped"
    after = await asyncio.to_thread(run_mss, "queue", "list", "--data-dir", data)
    assert after.stdout.strip() == "the queue is empty"


def test_relay_never_hands_an_unchecked_address_to_the_smtp_client() -> None:
    from mss.delivery.outbound import _invalid_addresses

    def entry(rcpt: str) -> QueueEntry:
        return QueueEntry(1, 1, "Q", JEAN, rcpt, "autre.mssante.test", None, None, None, None,
                          "queued", 0, 0, 0, 0, 0, None)  # fmt: skip

    [outcome] = _invalid_addresses([entry("x@autre.mssante.test>\r\nRCPT TO:<y@evil.test")])
    assert outcome.state == "failed" and outcome.status == "5.1.3"
    assert _invalid_addresses([entry("x@autre.mssante.test")]) == []
