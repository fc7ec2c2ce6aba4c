"""`mss bench dmp`: deposits from mail, and a professional's search on a full DMP.

1. A throw-away instance runs as its own `mss serve` process. N mails (200 by
   default) from a professional to a patient, each with an `IHE_XDM.ZIP` of 5
   CDA documents, are submitted over SMTP (STARTTLS, 10 connections); the
   clock stops when the deposit outbox is empty: mails and documents
   deposited per second, end to end (SMTP accepted → in the DMP).
2. Another patient gets 1,000 documents (through `/api/dmp` deposits of 50);
   a doctor with an authorisation then searches that DMP over HTTPS
   (`GET /api/dmp/patients/{ins}/documents`, bearer token) 200 times: p50,
   p99 (target: p99 under 50 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import create_engine, text

from bench.imap import _mss
from bench.smtp import _percentile, _start_server, print_results
from mss.annuaire.formats import MSSANTE_COLUMNS
from mss.security.tokens import jwks_of
from mss.testing.xdmgen import INS, INS_OID, XDM, XDMDocument, cda

PRO = "bench.dmp@pro.mssante.test"
PRO_ID = "810003456789"
DOCTOR_ID = "810001122334"
PASSWORD = "mot-de-passe-du-banc"  # noqa: S105 - a throw-away instance
SEARCHED = "188102B17295165"  # the second ANS test identity
ISSUER = "https://auth.bench.mss.test"


def _mail(n: int) -> bytes:
    docs = [
        XDMDocument(cda(extension=f"CR-{n}-{k}"), name=f"DOC{k:04d}.XML",
                    unique_id=f"1.2.250.1.999.1.1^CR-{n}-{k}")
        for k in range(1, 6)
    ]  # fmt: skip
    mail = EmailMessage(policy=default)
    mail["From"], mail["To"] = PRO, f"{INS}@patient.mssante.fr"
    mail["Subject"] = f"XDM/1.0/DDM+Compte rendu {n}"
    mail["Message-ID"] = f"<bench-dmp-{n}@pro.mssante.test>"
    mail.set_content("Comptes rendus ci-joints.")
    mail.add_attachment(XDM(docs).build(), maintype="application", subtype="zip",
                        filename="IHE_XDM.ZIP")  # fmt: skip
    return mail.as_bytes()


async def _send(port: int, tls: ssl.SSLContext, mails: list[bytes], connections: int) -> None:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for mail in mails:
        queue.put_nowait(mail)

    async def worker() -> None:
        client = aiosmtplib.SMTP(hostname="localhost", port=port, start_tls=True, tls_context=tls)
        await client.connect()
        await client.login(PRO, PASSWORD)
        while not queue.empty():
            await client.sendmail(PRO, [f"{INS}@patient.mssante.fr"], queue.get_nowait())
        await client.quit()

    await asyncio.gather(*(worker() for _ in range(connections)))


def _pending(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            query = text(
                "SELECT count(*) FROM outbox WHERE kind = 'dmp_deposit' AND status = 'pending'"
            )
            return int(conn.execute(query).scalar_one())
    finally:
        engine.dispose()


async def _search(
    base: str, tls: ssl.SSLContext, key: rsa.RSAPrivateKey, searches: int
) -> dict[str, Any]:
    def bearer(national_id: str) -> dict[str, str]:
        now = int(time.time())
        claims = {"iss": ISSUER, "iat": now, "exp": now + 3600, "preferred_username": national_id}
        return {
            "Authorization": "Bearer " + jwt.encode(claims, key, "RS256", headers={"kid": "k1"})
        }

    url = f"/api/dmp/patients/{SEARCHED}/documents"
    content = base64.b64encode(cda(ins=SEARCHED, ins_oid=INS_OID)).decode()
    async with httpx.AsyncClient(base_url=base, verify=tls, timeout=60) as web:
        for batch in range(20):  # 1,000 documents in 20 deposits of 50
            docs = [{"unique_id": f"1.2.250.1.999.7.{batch * 50 + k}", "content_base64": content,
                     "mime_type": "text/xml", "title": f"Document {batch * 50 + k}",
                     "class_code": ("10", "11", "31", "42")[k % 4], "type_code": "11488-4"}
                    for k in range(50)]  # fmt: skip
            reply = await web.post(url, json={"documents": docs}, headers=bearer(PRO_ID))
            reply.raise_for_status()
        await web.post(f"/api/dmp/patients/{SEARCHED}/authorization", json={},
                       headers=bearer(DOCTOR_ID))  # fmt: skip
        headers = bearer(DOCTOR_ID)
        timings = []
        for n in range(searches):
            params = {"class": "10"} if n % 2 else {}
            started = time.perf_counter()
            reply = await web.get(url, params=params, headers=headers)
            timings.append(time.perf_counter() - started)
            reply.raise_for_status()
        found = len(reply.json()["documents"])
    ms = [t * 1000 for t in timings]
    return {"search_documents_in_dmp": 1000, "search_page": found,
            "search_p50_ms": round(statistics.median(ms), 1),
            "search_p99_ms": round(_percentile(ms, 99), 1)}  # fmt: skip


def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"mails": args.mails, "documents_per_mail": 5}
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with tempfile.TemporaryDirectory(prefix="mss-bench-dmp-") as tmp:
        data = Path(tmp) / "data"
        subprocess.run([sys.executable, "-m", "mss", "init", "--data-dir", str(data)],  # noqa: S603
                       capture_output=True, check=True)  # fmt: skip
        (data / "jwks.json").write_text(jwks_of({"k1": key.public_key()}))
        _mss(
            data, "pro", "add", PRO, "--rpps", PRO_ID[1:], "--password-stdin", stdin=PASSWORD + "\n"
        )
        for ins, sex in ((INS, "F"), (SEARCHED, "M")):
            _mss(data, "patient", "add", ins, "--family", "BANC", "--given", "ESSAI",
                 "--birth-date", "1979-03-17", "--sex", sex)  # fmt: skip
        # the annuaire says who the doctors are (the DMP's rights go by profession)
        header = "|".join(h for _, h in MSSANTE_COLUMNS)
        lines = [
            f"PER|{address}|8|{nid[1:]}|{nid}||||DR|{family}|Jean|C|Civil|10|Médecin"
            + "|" * 14 + "75001||FRANCE"
            for address, nid, family in ((PRO, PRO_ID, "BANC"),
                                         ("dr.search@pro.mssante.test", DOCTOR_ID, "RECHERCHE"))
        ]  # fmt: skip
        extraction = Path(tmp) / "Extraction_Correspondance_MSSante_bench.txt"
        extraction.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
        _mss(data, "annuaire", "import", str(extraction))
        env = {"MSS_OAUTH_ISSUER": ISSUER, "MSS_OAUTH_JWKS_FILE": "jwks.json"}
        server, ports = _start_server(data, env)
        try:
            tls = ssl.create_default_context(cafile=str(data / "certs" / "ca.crt"))
            mails = [_mail(n) for n in range(args.mails)]
            started = time.perf_counter()
            asyncio.run(_send(ports["submission"], tls, mails, args.connections))
            accepted = time.perf_counter() - started
            while _pending(f"sqlite:///{data / 'mss.db'}"):
                time.sleep(0.05)
            elapsed = time.perf_counter() - started
            results["smtp_accept_s"] = round(accepted, 2)
            results["deposit_end_to_end_s"] = round(elapsed, 2)
            results["mails_deposited_per_s"] = round(args.mails / elapsed, 1)
            results["documents_deposited_per_s"] = round(5 * args.mails / elapsed, 1)
            base = f"https://localhost:{ports['https']}"
            results.update(asyncio.run(_search(base, tls, key, args.searches)))
        finally:
            server.terminate()
            server.wait(60)
    return results


def main(args: argparse.Namespace) -> int:
    print_results(run(args), args.json)
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mails", type=int, default=200, help="mails with an XDM of 5 documents")
    parser.add_argument("--connections", type=int, default=10, help="SMTP connections")
    parser.add_argument("--searches", type=int, default=200, help="searches on the full DMP")
    parser.add_argument("--json", help="also write the results to this JSON file")
