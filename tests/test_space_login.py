"""Logging in to the patient space for real: the activation code and the login codes read
from the e-mails the real smarthost sink gets, over HTTPS; five wrong codes kill a code;
no session fixation; the idle and absolute timeouts (the space's clock moved); the
throttle under parallel attempts and behind one shared IP; devices, reset, TOTP."""

from __future__ import annotations

import asyncio
import html
import re
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pyotp

from mss.security.passwords import hash_password
from mss.store.accounts import set_password
from mss.store.outbox import list_items
from mss.store.space import find_session, session_id
from mss.store.space_accounts import MAX_CODE_ATTEMPTS, get_totp

from .harness import running
from .space import OTHER_INS, PATIENT_INS, csrf_of, web
from .space_login import (
    LOGIN,
    PASSWORD,
    Space,
    client_of,
    post_form,
    space_fixture,  # noqa: F401  (the fixture `space`)
    text_of,
)

MAIL = "dominique.pat-trois@exemple.fr"
OTHER_MAIL = "figatellix.corse@exemple.fr"
OTHER_ADDRESS = f"{OTHER_INS}@patient.mssante.fr"


async def ready(space: Space, ins: str = PATIENT_INS, mail: str = MAIL) -> None:
    """A patient who activated their space with the e-mailed code."""
    await space.add_patient(ins, mail)
    async with client_of(space) as client:
        await space.activate(client, ins, mail)


async def first_step(space: Space, client: httpx.AsyncClient) -> str:
    """The password given: the login code e-mailed for the second step."""
    seen = len(space.box.mail)
    first = await post_form(client, "/espace/connexion", identifiant=PATIENT_INS,
                            mot_de_passe=PASSWORD)  # fmt: skip
    assert first.status_code == 303
    return await space.code_for(MAIL, LOGIN, after=seen)


async def test_activation_then_login_with_the_emailed_code_opens_the_space(space: Space) -> None:
    await ready(space)
    async with client_of(space) as client:
        done = await space.login(client, PATIENT_INS, MAIL)
        assert done.status_code == 303 and done.headers["location"] == "/espace/"
        devices = await client.get("/espace/appareils")
        assert devices.status_code == 200 and "Cet appareil" in devices.text
        assert f"{PATIENT_INS}@patient.mssante.fr" in devices.text
        cookie = client.cookies.get("mss_espace")
        assert cookie is not None
    session = await space.mss.store.read(lambda c: find_session(c, cookie, int(time.time()), 60))
    assert session is not None and session.ins == PATIENT_INS and not session.representative


async def test_the_patients_address_is_an_identifier_too(space: Space) -> None:
    await ready(space)
    async with client_of(space) as client:
        done = await space.login(client, f"{PATIENT_INS}@patient.mssante.fr", MAIL)
    assert done.status_code == 303


async def test_a_wrong_password_is_refused_in_french_with_its_english_meaning(
    space: Space,
) -> None:
    await ready(space)
    async with client_of(space) as client:
        refused = await post_form(client, "/espace/connexion", identifiant=PATIENT_INS,
                                  mot_de_passe="pas le bon mot de passe")  # fmt: skip
    text = html.unescape(refused.text)
    assert refused.status_code == 400
    assert "Identifiant ou mot de passe incorrect." in text
    assert "Wrong identifier or password." in text


async def test_a_login_code_dies_after_five_wrong_tries(space: Space) -> None:
    await ready(space)
    async with client_of(space) as client:
        code = await first_step(space, client)
        wrong = "000000" if code != "000000" else "111111"
        token = csrf_of((await client.get("/espace/connexion/code")).text)
        for _ in range(MAX_CODE_ATTEMPTS):
            refused = await client.post("/espace/connexion/code",
                                        data={"csrf": token, "code": wrong})  # fmt: skip
            assert refused.status_code == 400 and "Code incorrect." in refused.text
        dead = await client.post("/espace/connexion/code", data={"csrf": token, "code": code})
        assert dead.status_code == 400 and "Wrong code." not in dead.text
        assert "no longer valid" in dead.text
        assert client.cookies.get("mss_espace") is None


async def test_a_login_code_is_used_once(space: Space) -> None:
    await ready(space)
    async with client_of(space) as client:
        code = await first_step(space, client)
        pending = client.cookies.get("mss_connexion")
        token = csrf_of((await client.get("/espace/connexion/code")).text)
        done = await client.post("/espace/connexion/code", data={"csrf": token, "code": code})
        assert done.status_code == 303
        domain = next(c.domain for c in client.cookies.jar if c.name == "mss_formulaire")
        client.cookies.set("mss_connexion", pending or "", domain, "/espace")
        again = await client.post("/espace/connexion/code", data={"csrf": token, "code": code})
    assert again.status_code == 400 and "no longer valid" in again.text


async def test_login_makes_a_new_session_and_ends_the_cookie_the_browser_had(
    space: Space,
) -> None:
    await ready(space)
    async with client_of(space) as client:
        await client.get("/espace/connexion")
        domain = next(c.domain for c in client.cookies.jar if c.name == "mss_formulaire")
        client.cookies.set("mss_espace", "planted-by-an-attacker", domain, "/espace")
        await space.login(client, PATIENT_INS, MAIL)
        first = client.cookies.get("mss_espace")
        assert first and first != "planted-by-an-attacker"
        await space.login(client, PATIENT_INS, MAIL)
        second = client.cookies.get("mss_espace")
    assert second and second != first
    now = int(time.time())
    old = await space.mss.store.read(lambda c: find_session(c, first, now, 3600))
    assert old is None  # the session the browser had before logging in again is over


async def test_an_idle_session_ends_and_the_page_asks_to_log_in_again(space: Space) -> None:
    await ready(space)
    async with client_of(space) as client:
        await space.login(client, PATIENT_INS, MAIL)
        space.clock.offset = space.deps.idle_timeout - 5
        assert (await client.get("/espace/appareils")).status_code == 200  # used: kept alive
        await asyncio.gather(*space.deps.background)  # the idle clock moved after the page
        space.clock.offset += space.deps.idle_timeout - 5
        assert (await client.get("/espace/appareils")).status_code == 200
        space.clock.offset += space.deps.idle_timeout + 1
        idle = await client.get("/espace/appareils")
    assert idle.status_code == 303
    assert idle.headers["location"].startswith("/espace/connexion?suite=")


async def test_a_session_ends_at_its_absolute_timeout_even_when_used(space: Space) -> None:
    await ready(space)
    async with client_of(space) as client:
        await space.login(client, PATIENT_INS, MAIL)
        step = space.deps.idle_timeout - 60
        while space.clock.offset + step < space.deps.absolute_timeout:
            space.clock.offset += step
            assert (await client.get("/espace/appareils")).status_code == 200
            await asyncio.gather(*space.deps.background)  # the idle clock moved after it
        space.clock.offset = space.deps.absolute_timeout + 1
        assert (await client.get("/espace/appareils")).status_code == 303


async def test_twenty_parallel_wrong_passwords_are_checked_at_most_three_times(
    space: Space,
) -> None:
    await ready(space)
    async with client_of(space) as client:
        page = await client.get("/espace/connexion")
        token = csrf_of(page.text)
        form = {"csrf": token, "identifiant": PATIENT_INS, "mot_de_passe": "mauvais mot de passe"}
        answers = await asyncio.gather(
            *(client.post("/espace/connexion", data=form) for _ in range(20))
        )
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(400) <= 3 and statuses.count(429) >= 17, statuses
    throttled = next(a for a in answers if a.status_code == 429)
    assert "Trop de tentatives" in html.unescape(throttled.text)
    async with client_of(space) as client:  # the right password waits too, for now
        late = await post_form(client, "/espace/connexion", identifiant=PATIENT_INS,
                               mot_de_passe=PASSWORD)  # fmt: skip
    assert late.status_code == 429


async def test_a_bad_actor_behind_the_same_ip_does_not_block_another_patients_login(
    space: Space,
) -> None:
    await ready(space)
    await ready(space, OTHER_INS, OTHER_MAIL)
    async with client_of(space) as bad:
        page = await bad.get("/espace/connexion")
        form = {"csrf": csrf_of(page.text), "identifiant": PATIENT_INS, "mot_de_passe": "x" * 12}
        await asyncio.gather(*(bad.post("/espace/connexion", data=form) for _ in range(20)))
    async with client_of(space) as good:  # the same 127.0.0.1, as behind a hospital's NAT
        done = await space.login(good, OTHER_INS, OTHER_MAIL)
    assert done.status_code == 303 and done.headers["location"] == "/espace/"


async def test_a_revoked_device_loses_its_session(space: Space) -> None:
    await ready(space)
    async with client_of(space) as phone, client_of(space) as laptop:
        await space.login(phone, PATIENT_INS, MAIL)
        await space.login(laptop, PATIENT_INS, MAIL)
        phone_sid = session_id(phone.cookies.get("mss_espace") or "")
        listing = await laptop.get("/espace/appareils")
        assert listing.text.count("Retirer cet appareil") == 1
        refused = await laptop.post(f"/espace/appareils/{phone_sid}/retirer", data={})
        assert refused.status_code == 403  # no CSRF token
        revoked = await laptop.post(
            f"/espace/appareils/{phone_sid}/retirer", data={"csrf": csrf_of(listing.text)}
        )
        assert revoked.status_code == 303
        assert (await phone.get("/espace/appareils")).status_code == 303
        assert (await laptop.get("/espace/appareils")).status_code == 200


async def test_a_session_of_someone_else_cannot_be_revoked(space: Space) -> None:
    await ready(space)
    await ready(space, OTHER_INS, OTHER_MAIL)
    async with client_of(space) as mine, client_of(space) as theirs:
        await space.login(mine, PATIENT_INS, MAIL)
        await space.login(theirs, OTHER_INS, OTHER_MAIL)
        their_sid = session_id(theirs.cookies.get("mss_espace") or "")
        listing = await mine.get("/espace/appareils")
        answer = await mine.post(
            f"/espace/appareils/{their_sid}/retirer", data={"csrf": csrf_of(listing.text)}
        )
        assert answer.status_code == 404
        assert (await theirs.get("/espace/appareils")).status_code == 200


async def test_a_reset_by_code_ends_every_session_and_tells_the_patient(space: Space) -> None:
    await ready(space)
    new_password = "un tout nouveau mot de passe"
    async with client_of(space) as old, client_of(space) as client:
        await space.login(old, PATIENT_INS, MAIL)
        seen = len(space.box.mail)
        asked = await post_form(client, "/espace/mot-de-passe-oublie", identifiant=PATIENT_INS)
        assert asked.status_code == 303
        code = await space.code_for(MAIL, LOGIN, after=seen)
        short = await post_form(client, asked.headers["location"], identifiant=PATIENT_INS,
                                code=code, mot_de_passe="court", confirmation="court")  # fmt: skip
        assert short.status_code == 400 and "au moins 12 caractères" in html.unescape(short.text)
        done = await post_form(client, asked.headers["location"], identifiant=PATIENT_INS,
                               code=code, mot_de_passe=new_password,
                               confirmation=new_password)  # fmt: skip
        assert done.headers["location"] == "/espace/connexion?etat=reinitialise"
        assert (await old.get("/espace/appareils")).status_code == 303
        assert (await space.login(client, PATIENT_INS, MAIL, new_password)).status_code == 303
    await space.code_for(MAIL, re.compile(r"(mot de passe).*a été modifié"))


async def test_a_reset_for_an_unknown_identifier_says_the_same_and_sends_nothing(
    space: Space,
) -> None:
    async with client_of(space) as client:
        asked = await post_form(client, "/espace/mot-de-passe-oublie", identifiant=OTHER_INS)
    assert asked.status_code == 303
    await asyncio.sleep(0.5)
    assert space.box.mail == []


async def test_totp_enrolment_then_login_with_totp_and_a_replayed_code_is_refused(
    space: Space,
) -> None:
    await ready(space)
    async with client_of(space) as client:
        await space.login(client, PATIENT_INS, MAIL)
        security = await client.get("/espace/securite")
        started = await client.post("/espace/securite/totp", data={"csrf": csrf_of(security.text)})
        assert "otpauth://totp/" in html.unescape(started.text)
        state = await space.mss.store.read(lambda c: get_totp(c, PATIENT_INS))
        assert state is not None and not state.confirmed
        totp = pyotp.TOTP(state.secret)
        now = space.clock()
        confirm = await client.post("/espace/securite/totp/confirmer",
                                    data={"csrf": csrf_of(started.text),
                                          "code": totp.at(now)})  # fmt: skip
        assert confirm.status_code == 303
    async with client_of(space) as client:
        seen = len(space.box.mail)
        first = await post_form(client, "/espace/connexion", identifiant=PATIENT_INS,
                                mot_de_passe=PASSWORD)  # fmt: skip
        assert first.status_code == 303
        replay = await post_form(client, "/espace/connexion/code", code=totp.at(now))
        assert replay.status_code == 400  # the step of the enrolment's code was used
        space.clock.offset += 30
        done = await post_form(client, "/espace/connexion/code", code=totp.at(space.clock()))
        assert done.status_code == 303
    async with client_of(space) as thief:  # the same code again, by someone who saw it
        await post_form(thief, "/espace/connexion", identifiant=PATIENT_INS,
                        mot_de_passe=PASSWORD)  # fmt: skip
        again = await post_form(thief, "/espace/connexion/code", code=totp.at(space.clock()))
        assert again.status_code == 400
    await asyncio.sleep(0.3)
    assert not any(LOGIN.search(text_of(m[2])) for m in space.box.mail[seen:])  # no code e-mailed


async def test_a_disabled_account_or_a_closed_profile_cannot_log_in(space: Space) -> None:
    await ready(space)
    await space.mss.set_patient_status(PATIENT_INS, "closed")
    async with client_of(space) as client:
        refused = await post_form(client, "/espace/connexion", identifiant=PATIENT_INS,
                                  mot_de_passe=PASSWORD)  # fmt: skip
    assert refused.status_code == 403
    assert "la connexion n'est pas possible" in html.unescape(refused.text)


async def test_a_new_device_brings_a_notice_a_known_one_does_not(space: Space) -> None:
    await ready(space)
    async with client_of(space) as first:
        await space.login(first, PATIENT_INS, MAIL)
        await space.login(first, PATIENT_INS, MAIL)  # the same browser, its device cookie
    async with client_of(space) as second:
        await space.login(second, PATIENT_INS, MAIL)
    notice = re.compile(r"(Un nouvel appareil) s'est connecté")
    await space.code_for(MAIL, notice)
    await asyncio.sleep(0.5)
    assert sum(bool(notice.search(text_of(m[2]))) for m in space.box.mail) == 1


async def test_the_forms_before_login_need_their_csrf_token(space: Space) -> None:
    await ready(space)
    async with client_of(space) as client:
        forged = await client.post(
            "/espace/connexion", data={"identifiant": PATIENT_INS, "mot_de_passe": PASSWORD}
        )
        assert forged.status_code == 403
        await client.get("/espace/connexion")  # the cookie, but a made-up field
        form = {"csrf": "made-up", "identifiant": PATIENT_INS, "mot_de_passe": PASSWORD}
        wrong = await client.post("/espace/connexion", data=form)
    assert wrong.status_code == 403 and "CSRF" in wrong.text


async def test_every_field_of_the_login_pages_has_a_label_and_autocomplete(space: Space) -> None:
    async with client_of(space) as client:
        for path in ("/espace/connexion", "/espace/activation", "/espace/mot-de-passe-oublie",
                     "/espace/mot-de-passe-oublie/code"):  # fmt: skip
            page = (await client.get(path)).text
            for name in re.findall(r'<input id="([^"]+)"', page):
                assert f'<label for="{name}"' in page, (path, name)
            assert 'autocomplete="' in page and 'lang="fr"' in page


async def test_a_strangers_guesses_do_not_lock_the_patient_out_of_a_browser_they_used(
    space: Space,
) -> None:
    await ready(space)
    async with client_of(space) as usual:
        await space.login(usual, PATIENT_INS, MAIL)  # this browser is now a known device
        usual.cookies.delete("mss_espace")
        async with client_of(space) as stranger:
            page = await stranger.get("/espace/connexion")
            form = {"csrf": csrf_of(page.text), "identifiant": PATIENT_INS,
                    "mot_de_passe": "x" * 12}  # fmt: skip
            answers = await asyncio.gather(
                *(stranger.post("/espace/connexion", data=form) for _ in range(10))
            )
            assert any(a.status_code == 429 for a in answers)
        done = await space.login(usual, PATIENT_INS, MAIL)
    assert done.status_code == 303 and done.headers["location"] == "/espace/"


async def test_a_patient_with_only_a_phone_is_sent_the_code_by_sms(space: Space) -> None:
    await space.mss.add_patient(OTHER_INS, phone="0612345678")
    await space.mss.store.write(lambda tx: set_password(tx, OTHER_ADDRESS, hash_password(PASSWORD)))
    async with client_of(space) as client:
        first = await post_form(client, "/espace/connexion", identifiant=OTHER_INS,
                                mot_de_passe=PASSWORD)  # fmt: skip
        assert first.status_code == 303
        page = await client.get("/espace/connexion/code")
    assert "par SMS" in page.text
    events = await space.mss.store.read(lambda c: list_items(c, kinds=["notification"]))
    [asked] = [e.payload for e in events if e.payload["event"] == "login_code"]
    assert asked["channel"] == "sms" and len(asked["code"]) == 6 and asked["ins"] == OTHER_INS


async def test_after_login_the_page_asked_for_opens_but_never_another_site(space: Space) -> None:
    await ready(space)
    for asked, landed in (("/espace/appareils", "/espace/appareils"),
                          ("https://ailleurs.example/", "/espace/"),
                          ("/espace//ailleurs.example", "/espace/")):  # fmt: skip
        async with client_of(space) as client:
            seen = len(space.box.mail)
            await post_form(client, f"/espace/connexion?suite={quote(asked)}",
                            identifiant=PATIENT_INS, mot_de_passe=PASSWORD,
                            suite=asked)  # fmt: skip
            code = await space.code_for(MAIL, LOGIN, after=seen)
            done = await post_form(client, "/espace/connexion/code", code=code, suite=asked)
        assert done.headers["location"] == landed, asked


async def test_a_new_password_asks_the_current_one_and_ends_every_session(space: Space) -> None:
    await ready(space)
    new = "encore un autre mot de passe"
    async with client_of(space) as phone, client_of(space) as laptop:
        await space.login(phone, PATIENT_INS, MAIL)
        await space.login(laptop, PATIENT_INS, MAIL)
        token = csrf_of((await laptop.get("/espace/securite")).text)
        form = {"csrf": token, "actuel": "pas le bon", "nouveau": new, "confirmation": new}
        wrong = await laptop.post("/espace/securite/mot-de-passe", data=form)
        assert wrong.status_code == 400 and "Wrong current password." in wrong.text
        done = await laptop.post("/espace/securite/mot-de-passe", data={**form, "actuel": PASSWORD})
        assert done.headers["location"] == "/espace/connexion?etat=reinitialise"
        for client in (phone, laptop):
            assert (await client.get("/espace/appareils")).status_code == 303
        assert (await space.login(laptop, PATIENT_INS, MAIL, new)).status_code == 303


async def test_reset_codes_are_sent_once_a_minute_at_most(space: Space) -> None:
    await ready(space)
    async with client_of(space) as client:
        for _ in range(3):
            await post_form(client, "/espace/mot-de-passe-oublie", identifiant=PATIENT_INS)
        await space.code_for(MAIL, LOGIN)
        await asyncio.sleep(0.5)
        assert sum(bool(LOGIN.search(text_of(m[2]))) for m in space.box.mail) == 1
        space.clock.offset += 61
        seen = len(space.box.mail)
        await post_form(client, "/espace/mot-de-passe-oublie", identifiant=PATIENT_INS)
        await space.code_for(MAIL, LOGIN, after=seen)


async def test_the_throttle_holds_across_servers_sharing_the_store(instance: Path) -> None:
    """Two servers on one store (as the workers of `mss serve` are): the throttle is in
    the store, so 20 parallel guesses split between them are still checked 3 times."""
    async with running(instance) as one, running(instance) as two:
        await one.add_patient(PATIENT_INS, password=PASSWORD)
        async with web(one) as first, web(two) as second:
            forms = []
            for client in (first, second):
                page = await client.get("/espace/connexion")
                forms.append({"csrf": csrf_of(page.text), "identifiant": PATIENT_INS,
                              "mot_de_passe": "mauvais mot de passe"})  # fmt: skip
            answers = await asyncio.gather(*(
                client.post("/espace/connexion", data=form)
                for _ in range(10) for client, form in ((first, forms[0]), (second, forms[1]))
            ))  # fmt: skip
    statuses = [a.status_code for a in answers]
    assert statuses.count(400) <= 3 and statuses.count(429) >= 17, statuses


async def test_turning_totp_off_asks_for_the_password(space: Space) -> None:
    await ready(space)
    async with client_of(space) as client:
        await space.login(client, PATIENT_INS, MAIL)
        token = csrf_of((await client.get("/espace/securite")).text)
        await client.post("/espace/securite/totp", data={"csrf": token})
        state = await space.mss.store.read(lambda c: get_totp(c, PATIENT_INS))
        assert state is not None
        code = pyotp.TOTP(state.secret).at(space.clock())
        await client.post("/espace/securite/totp/confirmer", data={"csrf": token, "code": code})
        page = await client.get("/espace/securite")
        assert "Ne plus utiliser l'application" in html.unescape(page.text)
        refused = await client.post("/espace/securite/totp/retirer",
                                    data={"csrf": token, "actuel": "pas le bon"})  # fmt: skip
        assert refused.status_code == 400 and "Wrong current password." in refused.text
        done = await client.post("/espace/securite/totp/retirer",
                                 data={"csrf": token, "actuel": PASSWORD})  # fmt: skip
        assert done.status_code == 303
    assert await space.mss.store.read(lambda c: get_totp(c, PATIENT_INS)) is None
