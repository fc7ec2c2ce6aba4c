"""The space's account secrets in the store, on SQLite and PostgreSQL: one-time codes
(hash only, five tries, once, expiry), TOTP steps accepted once, the login throttle
under parallel attempts (per account with back-off, per IP counting failures only), and
the representatives' links ending at majority."""

from __future__ import annotations

import asyncio
import datetime as dt

from mss.core.identity import build_patient
from mss.store import space_accounts as guard
from mss.store.accounts import add_patients
from mss.store.api import Store
from mss.store.representatives import add_representation, may_act_for, represented_by

INS, CHILD = "279035121518989", "133061764035249"
NOW = 1_800_000_000


async def patients(store: Store, child_birth: str = "2015-06-01") -> None:
    people = [
        build_patient({"ins": INS, "family": "PAT", "given": "TROIS", "birth_date": "1979-03-28",
                       "sex": "F"}),
        build_patient({"ins": CHILD, "family": "PAT", "given": "QUATRE",
                       "birth_date": child_birth, "sex": "F"}),
    ]  # fmt: skip
    await store.write(lambda tx: add_patients(tx, people, "patient.mssante.fr"))


async def test_a_code_is_kept_as_a_hash_tried_five_times_at_most_and_used_once(
    store: Store,
) -> None:
    issued = await store.write(
        lambda tx: guard.issue_code(tx, INS, "reset", method="email", now=NOW, lifetime=600)
    )
    record = await store.read(lambda c: guard.latest_code(c, INS, "reset"))
    assert record is not None and issued.code not in record.code_hash
    wrong = "000000" if issued.code != "000000" else "111111"
    for _ in range(4):
        assert not await store.write(lambda tx: guard.try_code(tx, record, wrong, NOW))
    assert await store.write(lambda tx: guard.try_code(tx, record, issued.code, NOW))
    assert not await store.write(lambda tx: guard.try_code(tx, record, issued.code, NOW))


async def test_a_code_tried_five_times_or_expired_is_dead(store: Store) -> None:
    issued = await store.write(
        lambda tx: guard.issue_code(tx, INS, "login", method="email", now=NOW, lifetime=600)
    )
    record = await store.read(lambda c: guard.pending_code(c, issued.token, NOW))
    assert record is not None
    assert await store.read(lambda c: guard.pending_code(c, issued.token, NOW + 600)) is None
    for _ in range(5):
        await store.write(lambda tx: guard.try_code(tx, record, "nope", NOW))
    assert not await store.write(lambda tx: guard.try_code(tx, record, issued.code, NOW))
    assert await store.read(lambda c: guard.pending_code(c, issued.token, NOW)) is None


async def test_a_new_code_kills_the_previous_one(store: Store) -> None:
    def issue(tx: object) -> guard.IssuedCode:
        return guard.issue_code(tx, INS, "activation", method="print", now=NOW, lifetime=60)  # type: ignore[arg-type]

    first = await store.write(issue)
    await store.write(issue)
    assert await store.read(lambda c: guard.pending_code(c, first.token, NOW)) is None


async def test_a_totp_step_is_accepted_once(store: Store) -> None:
    await store.write(lambda tx: guard.start_totp(tx, INS, "JBSWY3DPEHPK3PXP"))
    assert await store.write(lambda tx: guard.use_totp_step(tx, INS, 100))
    assert not await store.write(lambda tx: guard.use_totp_step(tx, INS, 100))
    assert not await store.write(lambda tx: guard.use_totp_step(tx, INS, 99))
    state = await store.read(lambda c: guard.get_totp(c, INS))
    assert state is not None and state.confirmed and state.last_step == 100


async def test_parallel_attempts_on_one_account_pass_the_throttle_three_times_at_most(
    store: Store,
) -> None:
    account = guard.account_key(INS)
    waits = await asyncio.gather(
        *(store.write(lambda tx: guard.admit(tx, account, "ip:10.0.0.1", NOW)) for _ in range(20))
    )
    assert waits.count(0) == guard.FREE_FAILURES
    assert await store.write(lambda tx: guard.admit(tx, account, None, NOW + 4)) > 0
    assert await store.write(lambda tx: guard.admit(tx, account, None, NOW + 5)) == 0
    assert await store.write(lambda tx: guard.admit(tx, account, None, NOW + 6)) > 0  # 10 s now


async def test_one_ip_failing_too_often_is_slowed_down_never_refused(store: Store) -> None:
    ip = guard.ip_key("10.0.0.1")
    for n in range(guard.IP_LIMIT + 20):  # many patients behind one NAT, all logging in well
        key = guard.account_key(f"P{n}")
        assert await store.write(lambda tx, key=key: guard.admit(tx, key, ip, NOW)) == 0  # type: ignore[misc]
        await store.write(lambda tx, key=key: guard.right_password(tx, key, ip))  # type: ignore[misc]
    assert not await store.read(lambda c: guard.ip_slowed(c, ip, NOW))
    for n in range(guard.IP_LIMIT):  # then as many failures, on as many accounts
        key = guard.account_key(f"F{n}")
        assert await store.write(lambda tx, key=key: guard.admit(tx, key, ip, NOW)) == 0  # type: ignore[misc]
    assert await store.read(lambda c: guard.ip_slowed(c, ip, NOW))
    other = guard.account_key("someone")
    assert await store.write(lambda tx: guard.admit(tx, other, ip, NOW)) == 0  # slowed, admitted
    later = NOW + guard.IP_WINDOW + 1
    assert await store.write(lambda tx: guard.admit(tx, guard.account_key("x"), ip, later)) == 0
    assert not await store.read(lambda c: guard.ip_slowed(c, ip, later))


async def test_wrong_second_step_codes_hold_the_account_back_until_a_login_succeeds(
    store: Store,
) -> None:
    account = guard.account_key(INS)
    assert await store.write(lambda tx: guard.admit(tx, account, None, NOW)) == 0
    await store.write(lambda tx: guard.right_password(tx, account, None))  # not a reset
    for _ in range(guard.FREE_FAILURES):
        await store.write(lambda tx: guard.failed(tx, account, NOW))
    assert await store.write(lambda tx: guard.admit(tx, account, None, NOW)) > 0
    await store.write(lambda tx: guard.succeeded(tx, account, None))  # the second step, right
    assert await store.write(lambda tx: guard.admit(tx, account, None, NOW)) == 0


async def test_wrong_reset_codes_are_counted_across_codes_for_any_identifier(store: Store) -> None:
    for _ in range(guard.CODE_FAILURES):
        assert await store.write(lambda tx: guard.admit_code(tx, "UNKNOWN", "10.0.0.2", NOW)) == 0
    assert await store.write(lambda tx: guard.admit_code(tx, "UNKNOWN", "10.0.0.2", NOW)) > 0
    assert await store.read(lambda c: guard.codes_held(c, "UNKNOWN", NOW)) > 0
    day = NOW + guard.ACCOUNT_MEMORY + 1
    assert await store.read(lambda c: guard.codes_held(c, "UNKNOWN", day)) == 0


async def test_one_address_guessing_codes_for_many_identifiers_is_held_back(store: Store) -> None:
    for n in range(guard.CODE_IP_FAILURES):
        ins = f"P{n}"
        assert (
            await store.write(lambda tx, ins=ins: guard.admit_code(tx, ins, "10.0.0.3", NOW)) == 0
        )  # type: ignore[misc]
    assert await store.write(lambda tx: guard.admit_code(tx, "OTHER", "10.0.0.3", NOW)) > 0
    assert await store.write(lambda tx: guard.admit_code(tx, "OTHER", "10.0.0.4", NOW)) == 0


async def test_five_login_codes_an_hour_at_most(store: Store) -> None:
    waits = [await store.write(lambda tx: guard.code_issue(tx, INS, NOW)) for _ in range(6)]
    assert waits[:5] == [0] * 5 and waits[5] > 0
    assert await store.write(lambda tx: guard.code_issue(tx, INS, NOW + guard.HOUR + 1)) == 0


async def test_a_link_to_a_minor_ends_on_their_eighteenth_birthday(store: Store) -> None:
    await patients(store, child_birth="2010-02-28")
    await store.write(
        lambda tx: add_representation(tx, INS, CHILD, "minor", NOW, dt.date(2020, 1, 1))
    )
    eve, birthday = dt.date(2028, 2, 27), dt.date(2028, 2, 28)
    assert await store.read(lambda c: may_act_for(c, INS, CHILD, eve))
    assert not await store.read(lambda c: may_act_for(c, INS, CHILD, birthday))
    assert await store.read(lambda c: represented_by(c, INS, birthday)) == []


async def test_dead_codes_and_quiet_throttle_rows_are_purged(store: Store) -> None:
    await store.write(
        lambda tx: guard.issue_code(tx, INS, "reset", method="email", now=NOW, lifetime=600)
    )
    await store.write(lambda tx: guard.admit(tx, guard.account_key(INS), None, NOW))
    assert await store.write(lambda tx: guard.purge_space(tx, NOW + 60, 1800)) == 0
    later = NOW + guard.ACCOUNT_MEMORY + 1
    assert await store.write(lambda tx: guard.purge_space(tx, later, 1800)) == 2
    assert await store.read(lambda c: guard.latest_code(c, INS, "reset")) is None
