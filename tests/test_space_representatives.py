"""Legal representatives in the space: a parent (a patient with their own space) chooses
their child's space and sees it as its representative; the link to a minor ends on their
eighteenth birthday and an unlinked one at once — the session showing them is refused."""

from __future__ import annotations

import datetime as dt
import html

import httpx

from mss.store.representatives import add_representation, end_representation
from mss.store.space import NewSession, create_session, find_session, touch_session

from .space import OTHER_INS, PATIENT_INS, csrf_of
from .space_login import (
    Space,
    client_of,
    space_fixture,  # noqa: F401  (the fixture `space`)
)

PARENT, CHILD, WARD = PATIENT_INS, "133061764035249", OTHER_INS
DAY = 86400


async def family(space: Space, child_birth: dt.date) -> None:
    await space.mss.add_patient(PARENT)
    await space.mss.add_patient(CHILD, birth_date=child_birth.isoformat())
    now, today = int(space.clock()), dt.date.today()
    await space.mss.store.write(
        lambda tx: add_representation(tx, PARENT, CHILD, "minor", now, today)
    )


async def parent_session(space: Space) -> NewSession:
    now = int(space.clock())
    return await space.mss.store.write(
        lambda tx: create_session(
            tx,
            account=f"{PARENT}@patient.mssante.fr",
            ins=PARENT,
            representative=False,
            now=now,
            lifetime=30 * DAY,
        )
    )


def logged_in(space: Space, opened: NewSession) -> httpx.AsyncClient:
    client = client_of(space)
    client.cookies.set("mss_espace", opened.token)
    return client


async def choose(client: httpx.AsyncClient, ins: str) -> httpx.Response:
    listing = await client.get("/espace/choisir")
    return await client.post("/espace/choisir", data={"csrf": csrf_of(listing.text), "ins": ins})


def years_ago(years: int, days: int = 0) -> dt.date:
    today = dt.date.today()
    return today.replace(year=today.year - years) + dt.timedelta(days=days)


async def test_a_parent_chooses_their_childs_space_and_sees_it_as_its_representative(
    space: Space,
) -> None:
    await family(space, years_ago(10))
    opened = await parent_session(space)
    async with logged_in(space, opened) as client:
        listing = await client.get("/espace/choisir")
        assert "Mon espace" in listing.text and "enfant mineur" in html.unescape(listing.text)
        assert (await choose(client, CHILD)).status_code == 303
        page = await client.get("/espace/appareils")
    assert "Vous agissez pour le compte de" in page.text
    assert f"{CHILD}@patient.mssante.fr" in page.text
    now = int(space.clock())
    row = await space.mss.store.read(lambda c: find_session(c, opened.token, now, 3600))
    assert row is not None and (row.ins, row.representative) == (CHILD, True)
    assert row.account == f"{PARENT}@patient.mssante.fr"


async def test_a_patient_not_represented_cannot_be_chosen(space: Space) -> None:
    await family(space, years_ago(10))
    await space.mss.add_patient(WARD)
    async with logged_in(space, await parent_session(space)) as client:
        assert (await choose(client, WARD)).status_code == 404
        assert (await choose(client, PARENT)).status_code == 303  # their own space


async def test_the_link_to_a_minor_ends_on_their_eighteenth_birthday(space: Space) -> None:
    await family(space, years_ago(18, days=1))  # 18 tomorrow
    opened = await parent_session(space)
    async with logged_in(space, opened) as client:
        assert (await choose(client, CHILD)).status_code == 303
        space.clock.offset = 2 * DAY
        now = int(space.clock())
        await space.mss.store.write(lambda tx: touch_session(tx, opened.record.id, now))
        refused = await client.get("/espace/appareils")
        assert refused.status_code == 303 and "/espace/connexion" in refused.headers["location"]
    async with logged_in(space, await parent_session(space)) as client:
        listing = await client.get("/espace/choisir")
        assert CHILD not in listing.text and "enfant mineur" not in html.unescape(listing.text)
        assert (await choose(client, CHILD)).status_code == 404


async def test_an_ended_link_ends_the_sessions_showing_that_patient(space: Space) -> None:
    await family(space, years_ago(10))
    opened = await parent_session(space)
    async with logged_in(space, opened) as client:
        assert (await choose(client, CHILD)).status_code == 303
        now = int(space.clock())
        await space.mss.store.write(lambda tx: end_representation(tx, PARENT, CHILD, now))
        assert (await client.get("/espace/appareils")).status_code == 303
    async with logged_in(space, await parent_session(space)) as client:
        assert CHILD not in (await client.get("/espace/choisir")).text
        assert (await choose(client, CHILD)).status_code == 404


async def test_a_representative_session_without_a_live_link_is_refused_at_each_request(
    space: Space,
) -> None:
    """Whatever left a session row pointing at a patient (the link ended by hand in the
    database, a crash): the viewer checks the link of every representative session."""
    await family(space, years_ago(10))
    await space.mss.add_patient(WARD)
    now = int(space.clock())
    for ins, status in ((CHILD, 200), (WARD, 303)):
        opened = await space.mss.store.write(
            lambda tx, ins=ins: create_session(  # type: ignore[misc]
                tx, account=f"{PARENT}@patient.mssante.fr", ins=ins, representative=True,
                now=now, lifetime=DAY,
            )
        )  # fmt: skip
        async with logged_in(space, opened) as client:
            assert (await client.get("/espace/appareils")).status_code == status, ins


async def test_a_representative_cannot_choose_a_space_whose_profile_is_closed(
    space: Space,
) -> None:
    await family(space, years_ago(10))
    await space.mss.set_patient_status(CHILD, "closed")
    opened = await parent_session(space)
    async with logged_in(space, opened) as client:
        refused = await choose(client, CHILD)
        assert refused.status_code == 403
        still = await client.get("/espace/appareils")  # their own space, still open
    assert still.status_code == 200 and "Vous agissez pour le compte de" not in still.text
