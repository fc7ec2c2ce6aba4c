"""Helpers for the tests of the record part of the patient space (documents, history,
settings): a running server with bearer tokens for professionals and the annuaire
loaded, patients (an adult, another, a minor), and documents deposited the real way,
through the DMP API with a professional's token."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mss.security.tokens import jwks_of
from mss.testing.xdmgen import cda

from .harness import Running, running
from .space import OTHER_INS, PATIENT_INS, web
from .test_smtp_oauth import ISSUER, KEY, token

DUPONT = "810003456789"  # Dr Jean Dupont, médecin
LEVEQUE = "0131234567"  # Hélène Lévêque, infirmière (ADELI 131234567)
MARTIN = "810007654321"  # Sophie Martin, pharmacienne
MINOR_INS = "115037505612391"  # born in March 2015: a minor, with a legal representative
PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"


@pytest.fixture
async def record(instance: Path) -> AsyncIterator[Running]:
    """The server, professionals known by the annuaire and trusted by bearer token, and
    three patients: PATIENT_INS, OTHER_INS and MINOR_INS."""
    (instance / "jwks.json").write_text(jwks_of({"psc-1": KEY.public_key()}))
    overrides = {"oauth": {"issuer": ISSUER, "jwks_file": "jwks.json"}}
    async with running(instance, overrides=overrides) as mss:
        from mss.annuaire.importer import import_files

        from .test_annuaire import MSS_FILE

        import_files(mss.store.db, [MSS_FILE])
        await mss.add_patient(
            PATIENT_INS,
            family="PAT-TROIS",
            given="DOMINIQUE",
            birth_date="1979-03-17",
            email="dominique@example.fr",
        )
        await mss.add_patient(
            OTHER_INS, family="CORSE", given="FIGATELLIX", birth_date="1988-10-01"
        )
        await mss.add_patient(
            MINOR_INS, family="MINEUR", given="LEO", birth_date="2015-03-01", sex="M"
        )
        yield mss


def pro(national_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(preferred_username=national_id)}"}


def document(n: int, title: str = "", **extra: Any) -> dict[str, Any]:
    return {
        "unique_id": f"1.2.250.1.999.7.{n}",
        "content_base64": base64.b64encode(cda()).decode(),
        "mime_type": "text/xml",
        "title": title or f"Compte rendu {n}",
        "class_code": "10",
        "type_code": "11488-4",
        **extra,
    }


async def deposit(mss: Running, ins: str, *docs: dict[str, Any], by: str = DUPONT) -> list[int]:
    """Deposit through the DMP API as professional `by`; the new documents' ids."""
    async with web(mss) as client:
        done = await client.post(
            f"/api/dmp/patients/{ins}/documents", json={"documents": list(docs)}, headers=pro(by)
        )
    assert done.status_code == 201, done.text
    return [d["id"] for d in done.json()["deposited"]]


async def authorise(client: httpx.AsyncClient, ins: str, national_id: str) -> None:
    consent = await client.post(
        f"/api/dmp/patients/{ins}/authorization",
        json={"basis": "presumed"},
        headers=pro(national_id),
    )
    assert consent.status_code == 200, consent.text


async def found_by(client: httpx.AsyncClient, ins: str, national_id: str) -> list[str]:
    """The titles a professional finds in the patient's DMP (the API)."""
    found = await client.get(f"/api/dmp/patients/{ins}/documents", headers=pro(national_id))
    assert found.status_code == 200, found.text
    return [d["title"] for d in found.json()["documents"]]


__all__ = ["OTHER_INS", "PATIENT_INS", "record"]
