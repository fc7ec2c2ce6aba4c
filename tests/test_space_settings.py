"""The patient's settings in their space: blocking a professional (who then loses their
DMP access), médecins traitants DMP (at most 7), oppositions to emergency access,
notification preferences, Web Push subscriptions (https to public hosts only: the
SSRF of an endpoint inside the network is closed), closing and reopening the profile,
and the export of the patient's own data."""

from __future__ import annotations

import base64
import html
import io
import json
import re
import zipfile

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from mss.core.netaddr import public
from mss.space.choices import check_endpoint
from mss.space.errors import SpaceError
from mss.store import notify as notes
from mss.store.accounts import get_patient

from .harness import Running, message
from .space import OTHER_INS, PATIENT_INS, patient_client, web
from .space_record import DUPONT, LEVEQUE, authorise, deposit, document, found_by, pro, record

__all__ = ["record"]


def text(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def keys() -> dict[str, str]:
    point = ec.generate_private_key(ec.SECP256R1()).public_key()
    raw = point.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return {"p256dh": b64url(raw), "auth": b64url(b"0123456789abcdef")}


@pytest.mark.asyncio
async def test_a_blocked_professional_has_their_dmp_access_refused(record: Running) -> None:
    await deposit(record, PATIENT_INS, document(1, "Bilan"))
    async with web(record) as api, patient_client(record, PATIENT_INS) as (client, csrf):
        await authorise(api, PATIENT_INS, LEVEQUE)
        found = text(
            (await client.get("/espace/parametres/professionnels", params={"q": "lévêque"})).text
        )
        assert "Hélène Lévêque (Infirmier)" in found
        block = await client.post(
            "/espace/parametres/professionnels/bloquer",
            data={"csrf": csrf, "professionnel": "131234567"},
        )
        assert block.status_code == 303
        refused = await api.get(f"/api/dmp/patients/{PATIENT_INS}/documents", headers=pro(LEVEQUE))
        assert refused.status_code == 403 and refused.json()["error"] == "DMPAccessForbidden"
        page = text((await client.get("/espace/parametres/professionnels")).text)
        assert (
            "Professionnels bloqués Un professionnel bloqué ne peut plus accéder à votre "
            "dossier. Hélène Lévêque (Infirmier)" in page
        )
        unblock = await client.post(
            "/espace/parametres/professionnels/debloquer",
            data={"csrf": csrf, "professionnel": LEVEQUE},
        )
        assert unblock.status_code == 303
        await authorise(api, PATIENT_INS, LEVEQUE)  # blocking took the authorisation away
        assert await found_by(api, PATIENT_INS, LEVEQUE) == ["Bilan"]


@pytest.mark.asyncio
async def test_a_professional_is_found_by_rpps(record: Running) -> None:
    async with patient_client(record, PATIENT_INS) as (client, _):
        page = await client.get("/espace/parametres/professionnels", params={"q": "10003456789"})
    assert "Jean Dupont (Médecin)" in text(page.text)


@pytest.mark.asyncio
async def test_at_most_seven_medecins_traitants_the_eighth_is_refused_in_french(
    record: Running,
) -> None:
    async with patient_client(record, PATIENT_INS) as (client, csrf):
        for n in range(7):
            named = await client.post(
                "/espace/parametres/professionnels/medecin-traitant",
                data={"csrf": csrf, "professionnel": f"81000000000{n}"},
            )
            assert named.status_code == 303
        eighth = await client.post(
            "/espace/parametres/professionnels/medecin-traitant",
            data={"csrf": csrf, "professionnel": DUPONT},
        )
        removed = await client.post(
            "/espace/parametres/professionnels/retirer-medecin-traitant",
            data={"csrf": csrf, "professionnel": "810000000000"},
        )
        page = text((await client.get("/espace/parametres/professionnels")).text)
    assert eighth.status_code == 409
    assert "Au plus 7 médecins traitants DMP (8 demandés)" in text(eighth.text)
    assert removed.status_code == 303 and "(6 sur 7 au plus)" in page


@pytest.mark.asyncio
async def test_an_opposition_to_bris_de_glace_refuses_emergency_access(record: Running) -> None:
    await deposit(record, PATIENT_INS, document(1))
    url = f"/api/dmp/patients/{PATIENT_INS}/documents"
    async with web(record) as api, patient_client(record, PATIENT_INS) as (client, csrf):
        before = await api.get(url, params={"mode": "bris_de_glace"}, headers=pro(LEVEQUE))
        assert before.status_code == 200
        saved = await client.post(
            "/espace/parametres/oppositions", data={"csrf": csrf, "bris_de_glace": "oui"}
        )
        assert saved.status_code == 303
        after = await api.get(url, params={"mode": "bris_de_glace"}, headers=pro(LEVEQUE))
        centre15 = await api.get(url, params={"mode": "centre15"}, headers=pro(LEVEQUE))
        page = await client.get("/espace/parametres")
    assert after.status_code == 403 and after.json()["error"] == "DMPAccessForbidden"
    assert centre15.status_code == 200
    assert 'name="bris_de_glace" value="oui" checked' in page.text
    assert 'name="centre15" value="oui" checked' not in page.text


@pytest.mark.asyncio
async def test_notification_preferences_are_kept_per_category_and_channel(
    record: Running,
) -> None:
    async with patient_client(record, PATIENT_INS) as (client, csrf):
        page = await client.get("/espace/parametres/notifications")
        assert 'value="messages:email" checked' in page.text  # the default
        saved = await client.post(
            "/espace/parametres/notifications",
            data={"csrf": csrf, "choix": ["messages:sms", "documents:email"]},
        )
        assert saved.status_code == 303
    chosen = await record.store.read(lambda c: notes.preferences(c, PATIENT_INS))
    assert chosen[("messages", "sms")] and chosen[("documents", "email")]
    assert not chosen[("messages", "email")] and not chosen[("accesses", "push")]
    assert ("account", "email") not in chosen  # codes and security notices always go


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "endpoint",
    [
        "http://push.example.com/abc",
        "https://127.0.0.1/push",
        "https://10.1.2.3/push",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/push",
        "https://localhost/push",
        "https://192.168.0.10/push",
        "https://[::ffff:127.0.0.1]/push",
        "https://0.0.0.0/push",
        "ftp://93.184.215.14/push",
        "https://user@93.184.215.14/push",
    ],
)
async def test_a_push_subscription_to_a_non_public_or_non_https_endpoint_is_refused(
    record: Running, endpoint: str
) -> None:
    async with patient_client(record, PATIENT_INS) as (client, csrf):
        refused = await client.post(
            "/espace/parametres/notifications/push",
            json={"endpoint": endpoint, "keys": keys()},
            headers={"X-CSRF-Token": csrf},
        )
    assert refused.status_code == 400, refused.text
    assert await record.store.read(lambda c: notes.subscriptions(c, PATIENT_INS)) == []


@pytest.mark.asyncio
async def test_a_push_subscription_to_a_public_https_endpoint_is_kept(record: Running) -> None:
    endpoint = "https://93.184.215.14/push/v1/capability"
    async with patient_client(record, PATIENT_INS) as (client, csrf):
        kept = await client.post(
            "/espace/parametres/notifications/push",
            json={"endpoint": endpoint, "keys": keys()},
            headers={"X-CSRF-Token": csrf},
        )
        bad_keys = await client.post(
            "/espace/parametres/notifications/push",
            json={"endpoint": endpoint, "keys": {"p256dh": "x", "auth": "y"}},
            headers={"X-CSRF-Token": csrf},
        )
        forged = await client.post(
            "/espace/parametres/notifications/push", json={"endpoint": endpoint, "keys": keys()}
        )
    assert kept.status_code == 204 and bad_keys.status_code == 400 and forged.status_code == 403
    [sub] = await record.store.read(lambda c: notes.subscriptions(c, PATIENT_INS))
    assert sub.endpoint == endpoint


@pytest.mark.asyncio
async def test_a_host_name_resolving_to_a_private_address_is_refused() -> None:
    async def inside(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "10.0.0.7"]  # one public, one private: refused

    with pytest.raises(SpaceError):
        await check_endpoint("https://push.example.com/x", inside)
    assert public("2a00:1450:4007:80e::200a") and not public("fe80::1%eth0")
    assert not public("100.64.0.1") and not public("224.0.0.1")


@pytest.mark.asyncio
async def test_the_service_worker_and_the_push_script_are_served_under_the_csp(
    record: Running,
) -> None:
    async with web(record) as client:
        worker = await client.get("/espace/static/sw.js")
        script = await client.get("/espace/static/push.js")
    assert worker.status_code == 200 and "showNotification" in worker.text
    assert script.status_code == 200 and "X-CSRF-Token" in script.text
    assert "script-src 'self'" in worker.headers["content-security-policy"]


@pytest.mark.asyncio
async def test_closing_the_profile_needs_a_confirmation_and_can_be_undone(
    record: Running,
) -> None:
    async with web(record) as api, patient_client(record, PATIENT_INS) as (client, csrf):
        confirm = await client.get("/espace/parametres/profil/fermer")
        assert "Je confirme vouloir fermer mon profil" in text(confirm.text)
        unconfirmed = await client.post("/espace/parametres/profil/fermer", data={"csrf": csrf})
        assert unconfirmed.status_code == 400
        closed = await client.post(
            "/espace/parametres/profil/fermer", data={"csrf": csrf, "confirmer": "oui"}
        )
        assert closed.status_code == 303
        patient = await record.store.read(lambda c: get_patient(c, PATIENT_INS))
        assert patient is not None and patient.profile_status == "closed"
        refused = await api.post(
            f"/api/dmp/patients/{PATIENT_INS}/documents",
            json={"documents": [document(9)]},
            headers=pro(DUPONT),
        )
        assert refused.status_code == 409 and refused.json()["error"] == "DMPClosed"
        assert "Rouvrir mon profil" in text((await client.get("/espace/parametres")).text)
        reopened = await client.post("/espace/parametres/profil/rouvrir", data={"csrf": csrf})
        assert reopened.status_code == 303
    patient = await record.store.read(lambda c: get_patient(c, PATIENT_INS))
    assert patient is not None and patient.profile_status == "active"


@pytest.mark.asyncio
async def test_the_export_holds_the_patients_messages_and_documents_and_nothing_of_another(
    record: Running,
) -> None:
    await record.add_pro("jean.dupont@medecin.mssante.fr", national_id=DUPONT)
    mine, theirs = (f"{ins}@patient.mssante.fr" for ins in (PATIENT_INS, OTHER_INS))
    sender = "jean.dupont@medecin.mssante.fr"
    await record.submit(
        sender, message(sender, mine, "Pour vous", "Votre compte rendu.\r\n"), [mine]
    )
    await record.submit(sender, message(sender, theirs, "Pour l'autre", "Autre.\r\n"), [theirs])
    await deposit(record, PATIENT_INS, document(1, "Mon bilan"))
    await deposit(record, OTHER_INS, document(2, "Bilan de l'autre"))
    async with patient_client(record, PATIENT_INS) as (client, _):
        got = await client.get("/espace/parametres/export")
    assert got.status_code == 200 and got.headers["content-type"] == "application/zip"
    assert re.fullmatch(
        r'attachment; filename="export-\d{4}-\d\d-\d\d\.zip"', got.headers["content-disposition"]
    )
    archive = zipfile.ZipFile(io.BytesIO(got.content))
    names = archive.namelist()
    emails = [archive.read(n) for n in names if n.endswith(".eml")]
    assert len(emails) == 1 and b"Subject: Pour vous" in emails[0]
    listed = json.loads(archive.read("documents/documents.json"))
    assert [d["title"] for d in listed] == ["Mon bilan"]
    assert any(n.startswith("documents/") and n.endswith(".xml") for n in names)
    everything = b"".join(archive.read(n) for n in names)
    assert b"Pour l'autre" not in everything and b"Bilan de l'autre" not in everything
    assert {"historique.json", "historique.csv"} <= set(names)


@pytest.mark.asyncio
async def test_every_settings_post_without_the_csrf_token_is_refused(record: Running) -> None:
    async with patient_client(record, PATIENT_INS) as (client, _):
        for path in (
            "professionnels/bloquer",
            "professionnels/medecin-traitant",
            "oppositions",
            "notifications",
            "profil/fermer",
            "profil/rouvrir",
        ):
            forged = await client.post(
                f"/espace/parametres/{path}", data={"professionnel": LEVEQUE, "confirmer": "oui"}
            )
            assert forged.status_code == 403, path
    patient = await record.store.read(lambda c: get_patient(c, PATIENT_INS))
    assert patient is not None and patient.profile_status == "active"


@pytest.mark.asyncio
async def test_the_settings_pages_need_a_session(record: Running) -> None:
    async with httpx.AsyncClient(
        base_url=f"https://localhost:{record.ports['https']}", verify=record.client_tls()
    ) as client:
        page = await client.get("/espace/parametres/export")
    assert page.status_code == 303 and "/espace/connexion" in page.headers["location"]


async def test_a_browser_subscribed_for_one_patient_keeps_its_subscription_for_another(
    record: Running,
) -> None:
    """One browser (one endpoint) subscribed in a parent's own space and, as legal
    representative, in their child's: both subscriptions stay; subscribing again in
    one space replaces that space's only."""
    from .space import representative_client
    from .space_record import MINOR_INS

    endpoint = "https://93.184.215.14/push/v1/one-browser"
    path, body = "/espace/parametres/notifications/push", {"endpoint": endpoint, "keys": keys()}
    async with patient_client(record, OTHER_INS) as (client, csrf):
        own = await client.post(path, json=body, headers={"X-CSRF-Token": csrf})
    async with representative_client(record, OTHER_INS, MINOR_INS) as (client, csrf):
        child = [await client.post(path, json=body, headers={"X-CSRF-Token": csrf})
                 for _ in range(2)]  # fmt: skip
    assert [own.status_code] + [r.status_code for r in child] == [204, 204, 204]
    for ins in (OTHER_INS, MINOR_INS):
        found = await record.store.read(lambda c, ins=ins: notes.subscriptions(c, ins))
        assert [s.endpoint for s in found] == [endpoint], ins


async def test_the_export_folders_never_climb_out_nor_merge_two_mailboxes(
    record: Running,
) -> None:
    """Mailbox names become the zip's folders: `..` (a valid IMAP name) never climbs
    out of `messages/`, and two mailboxes whose names clean alike (`a/b`, `a_b`) keep
    their own folders."""
    from mss.store.accounts import get_account
    from mss.store.folders import create_mailbox
    from mss.store.mailboxes import Target

    address = f"{PATIENT_INS}@patient.mssante.fr"
    names = ["..", ".", "a/b", "a_b", "Envoyés"]

    def make(tx: object) -> list[int]:
        account = get_account(tx.conn, address)  # type: ignore[attr-defined]
        assert account is not None
        return [create_mailbox(tx, account.id, n).id for n in names]  # type: ignore[arg-type]

    boxes = await record.store.write(make)
    for box, name in zip(boxes, names, strict=True):
        raw = message("a@pro.mssante.test", address, f"Classé {name}", "Texte.\r\n")
        await record.store.deliver(raw, [Target(box)])
    async with patient_client(record, PATIENT_INS) as (client, _):
        got = await client.get("/espace/parametres/export")
    paths = [n for n in zipfile.ZipFile(io.BytesIO(got.content)).namelist()
             if n.startswith("messages/")]  # fmt: skip
    folders = [p.split("/") for p in paths]
    assert all(len(f) == 3 and f[1] not in ("", ".", "..") for f in folders), paths
    assert len({f[1] for f in folders}) == len(folders) == len(names), paths
