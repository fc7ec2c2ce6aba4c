"""The guards of the space's login, activation and reset against guessing (the hostile
review of issue 12): wrong second-step codes hold the account back across new logins,
wrong reset codes are counted across codes, no Argon2id hash is spent on a wrong code,
the answers do not tell which identifiers have an account, one sprayer behind a shared
address does not lock the others out, and a confirmed TOTP is replaced only with the
password (and only once the new key is confirmed)."""

from __future__ import annotations

import html

import httpx
import pyotp
import pytest

from mss.store.space_accounts import CODE_FAILURES, MAX_CODE_ATTEMPTS, get_totp

from .space import PATIENT_INS, csrf_of
from .space_login import (
    LOGIN,
    PASSWORD,
    Space,
    client_of,
    post_form,
    space_fixture,  # noqa: F401  (the fixture `space`)
)

MAIL = "dominique.pat-trois@exemple.fr"
UNKNOWN = "299999999999999"


async def ready(space: Space, ins: str = PATIENT_INS, mail: str = MAIL) -> None:
    await space.add_patient(ins, mail)
    async with client_of(space) as client:
        await space.activate(client, ins, mail)


async def _wrong_codes(client: httpx.AsyncClient, right: str, times: int) -> None:
    wrong = "000000" if right != "000000" else "111111"
    token = csrf_of((await client.get("/espace/connexion/code")).text)
    for _ in range(times):
        refused = await client.post("/espace/connexion/code", data={"csrf": token, "code": wrong})
        assert refused.status_code == 400


async def _password(space: Space, client: httpx.AsyncClient) -> tuple[httpx.Response, str]:
    """The right password: the answer, and the code e-mailed (empty if refused)."""
    seen = len(space.box.mail)
    first = await post_form(client, "/espace/connexion", identifiant=PATIENT_INS,
                            mot_de_passe=PASSWORD)  # fmt: skip
    code = await space.code_for(MAIL, LOGIN, after=seen) if first.status_code == 303 else ""
    return first, code


async def test_wrong_second_factor_codes_are_throttled_across_new_logins(space: Space) -> None:
    await ready(space)
    answers = []
    async with client_of(space) as attacker:
        for _ in range(4):
            first, code = await _password(space, attacker)
            answers.append(first.status_code)
            if not code:
                break
            await _wrong_codes(attacker, code, MAX_CODE_ATTEMPTS)
    assert answers[-1] == 429, answers


async def test_a_right_second_step_starts_the_account_afresh(space: Space) -> None:
    await ready(space)
    async with client_of(space) as client:
        _first, code = await _password(space, client)
        await _wrong_codes(client, code, 2)  # two typing slips, then the right code
        done = await post_form(client, "/espace/connexion/code", code=code)
        assert done.status_code == 303
        client.cookies.delete("mss_espace")
        again = await space.login(client, PATIENT_INS, MAIL)
    assert again.status_code == 303


async def test_no_more_than_five_login_codes_an_hour(space: Space) -> None:
    await ready(space)
    answers = []
    async with client_of(space) as client:
        for _ in range(6):
            first, _code = await _password(space, client)
            answers.append(first.status_code)
    assert answers[:5] == [303] * 5 and answers[5] == 429, answers
    assert "Trop de codes envoyés" in html.unescape(first.text)


async def test_reset_codes_cannot_be_guessed_without_end(space: Space) -> None:
    await ready(space)
    statuses = []
    refused = None
    async with client_of(space) as attacker:
        for _ in range(4):
            seen = len(space.box.mail)
            asked = await post_form(attacker, "/espace/mot-de-passe-oublie",
                                    identifiant=PATIENT_INS)  # fmt: skip
            if asked.status_code == 429:  # no new code for the day
                refused = html.unescape(asked.text)
                break
            code = await space.code_for(MAIL, LOGIN, after=seen)
            wrong = "000000" if code != "000000" else "111111"
            for _ in range(MAX_CODE_ATTEMPTS):
                tried = await post_form(attacker, "/espace/mot-de-passe-oublie/code",
                                        identifiant=PATIENT_INS, code=wrong,
                                        mot_de_passe=PASSWORD + "x",
                                        confirmation=PASSWORD + "x")  # fmt: skip
                statuses.append(tried.status_code)
            space.clock.offset += 61
    assert statuses.count(400) == CODE_FAILURES and 429 not in statuses[:CODE_FAILURES]
    assert refused is not None and "aucun nouveau code" in refused


async def test_a_wrong_reset_code_for_an_unknown_identifier_is_counted_alike(
    space: Space,
) -> None:
    statuses = []
    async with client_of(space) as stranger:
        for _ in range(CODE_FAILURES + 1):
            tried = await post_form(stranger, "/espace/mot-de-passe-oublie/code",
                                    identifiant=UNKNOWN, code="000000", mot_de_passe=PASSWORD,
                                    confirmation=PASSWORD)  # fmt: skip
            statuses.append(tried.status_code)
    assert statuses == [400] * CODE_FAILURES + [429]


async def test_anonymous_reset_and_activation_posts_cost_no_argon2_hash_unchecked(
    space: Space, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mss.space.accounts as accounts

    hashed: list[str] = []
    real = accounts.hash_password

    def counting(password: str) -> str:
        hashed.append(password)
        return real(password)

    monkeypatch.setattr(accounts, "hash_password", counting)
    await space.add_patient(PATIENT_INS, MAIL)  # awaiting activation: a real code exists
    async with client_of(space) as attacker:
        for path in ("/espace/mot-de-passe-oublie/code", "/espace/activation"):
            for ins in (UNKNOWN, PATIENT_INS):
                page = await attacker.get(path)
                form = {"csrf": csrf_of(page.text), "identifiant": ins, "code": "12345678",
                        "mot_de_passe": PASSWORD, "confirmation": PASSWORD}  # fmt: skip
                for _ in range(5):
                    await attacker.post(path, data=form)
    assert len(hashed) == 0, f"{len(hashed)} Argon2id hashes for 20 anonymous posts"


async def test_the_reset_form_does_not_tell_which_identifiers_have_an_account(
    space: Space,
) -> None:
    await ready(space)
    answers = {}
    async with client_of(space) as stranger:
        for ins in (PATIENT_INS, UNKNOWN):
            await post_form(stranger, "/espace/mot-de-passe-oublie", identifiant=ins)
            tried = await post_form(stranger, "/espace/mot-de-passe-oublie/code",
                                    identifiant=ins, code="000000", mot_de_passe=PASSWORD,
                                    confirmation=PASSWORD)  # fmt: skip
            answers[ins] = (tried.status_code, html.unescape(tried.text).count("Code incorrect"))
    assert answers[PATIENT_INS] == answers[UNKNOWN], answers


async def test_the_activation_form_does_not_tell_which_identifiers_have_an_account(
    space: Space,
) -> None:
    await space.add_patient(PATIENT_INS, MAIL)
    answers = {}
    async with client_of(space) as stranger:
        for ins in (PATIENT_INS, UNKNOWN):
            tried = await post_form(stranger, "/espace/activation", identifiant=ins,
                                    code="00000000", mot_de_passe=PASSWORD,
                                    confirmation=PASSWORD)  # fmt: skip
            answers[ins] = (tried.status_code, html.unescape(tried.text).count("Code incorrect"))
    assert answers[PATIENT_INS] == answers[UNKNOWN], answers


async def test_wrong_tries_do_not_kill_an_activation_code(space: Space) -> None:
    """A stranger who knows the INS may delay the activation (a day of wrong codes), not
    destroy the code of the letter: the patient activates with it afterwards."""
    await space.add_patient(PATIENT_INS, MAIL)
    async with client_of(space) as stranger:
        for _ in range(MAX_CODE_ATTEMPTS + 1):
            await post_form(stranger, "/espace/activation", identifiant=PATIENT_INS,
                            code="00000000", mot_de_passe=PASSWORD,
                            confirmation=PASSWORD)  # fmt: skip
    async with client_of(space) as patient:
        await space.activate(patient, PATIENT_INS, MAIL)  # 303 to the login page


async def test_one_sprayer_behind_a_shared_ip_does_not_lock_every_patient_out(
    space: Space,
) -> None:
    await ready(space)
    async with client_of(space) as bad:
        page = await bad.get("/espace/connexion")
        token = csrf_of(page.text)
        for n in range(50):
            await bad.post("/espace/connexion", data={
                "csrf": token, "identifiant": f"1{n:014d}", "mot_de_passe": "x" * 12})  # fmt: skip
    async with client_of(space) as good:  # the same 127.0.0.1, a browser never used
        done = await space.login(good, PATIENT_INS, MAIL)
    assert done.status_code == 303, done.status_code


async def _enrol(space: Space, client: httpx.AsyncClient, token: str, password: str = "") -> str:
    await client.post("/espace/securite/totp", data={"csrf": token, "actuel": password})
    state = await space.mss.store.read(lambda c: get_totp(c, PATIENT_INS))
    assert state is not None
    secret = state.pending or state.secret
    space.clock.offset += 30  # a fresh time step
    code = pyotp.TOTP(secret).at(space.clock())
    await client.post("/espace/securite/totp/confirmer", data={"csrf": token, "code": code})
    return secret


async def test_enrolling_a_new_totp_does_not_drop_the_confirmed_one_without_the_password(
    space: Space,
) -> None:
    await ready(space)
    async with client_of(space) as client:
        await space.login(client, PATIENT_INS, MAIL)
        token = csrf_of((await client.get("/espace/securite")).text)
        first = await _enrol(space, client, token)
        refused = await client.post("/espace/securite/totp", data={"csrf": token})  # a thief
        assert refused.status_code == 400
    after = await space.mss.store.read(lambda c: get_totp(c, PATIENT_INS))
    assert after is not None and after.confirmed and after.secret == first
    assert after.pending is None


async def test_a_new_totp_key_replaces_the_old_one_only_once_confirmed(space: Space) -> None:
    await ready(space)
    async with client_of(space) as client:
        await space.login(client, PATIENT_INS, MAIL)
        token = csrf_of((await client.get("/espace/securite")).text)
        first = await _enrol(space, client, token)
        await client.post("/espace/securite/totp", data={"csrf": token, "actuel": PASSWORD})
        waiting = await space.mss.store.read(lambda c: get_totp(c, PATIENT_INS))
        assert waiting is not None and waiting.secret == first and waiting.confirmed
        assert waiting.pending is not None and waiting.pending != first
        second = await _enrol(space, client, token, PASSWORD)
    done = await space.mss.store.read(lambda c: get_totp(c, PATIENT_INS))
    assert done is not None and done.secret == second != first and done.pending is None
