"""What the login tests share: a running server whose notices go to a real smarthost
sink (the codes are read from the e-mails it gets), the space's `SpaceDeps` reached so a
test can move its clock, and the browser's steps (activation, login, the code)."""

from __future__ import annotations

import email
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email import policy
from pathlib import Path
from typing import Any

import httpx
import pytest

import mss.app
from mss.space.deps import SpaceDeps
from mss.store.space_accounts import issue_activation

from .harness import Running, running
from .notifying import Sink, notify_settings, until
from .space import csrf_of, web

PASSWORD = "une phrase de passe assez longue"
ACTIVATION = re.compile(r"code d'activation [^:]*: (\d+)")
LOGIN = re.compile(r"code de connexion [^:]*: (\d+)")


@dataclass
class Clock:
    """The space's clock, moved by the tests (starts at the real time)."""

    offset: float = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class Space:
    mss: Running
    box: Sink
    deps: SpaceDeps
    clock: Clock = field(default_factory=Clock)

    async def add_patient(self, ins: str, mail: str | None, **traits: str) -> str:
        """A patient with an account and an activation code (sent, as `patient add` does)."""
        extra = {"email": mail} if mail else {}
        await self.mss.add_patient(ins, **extra, **traits)
        return await self.mss.store.write(lambda tx: issue_activation(tx, ins, int(time.time())))

    async def code_for(self, to: str, pattern: re.Pattern[str], after: int = 0) -> str:
        """The code in the first e-mail to `to`, from the `after`-th mail on."""
        found: list[str] = []

        async def arrived() -> bool:
            for _, rcpts, raw in self.box.mail[after:]:
                if to in rcpts and (match := pattern.search(text_of(raw))):
                    found.append(match.group(1))
                    return True
            return False

        await until(arrived)
        return found[0]

    async def activate(self, client: httpx.AsyncClient, ins: str, to: str) -> None:
        code = await self.code_for(to, ACTIVATION)
        response = await post_form(client, "/espace/activation", identifiant=ins, code=code,
                                   mot_de_passe=PASSWORD, confirmation=PASSWORD)  # fmt: skip
        assert response.status_code == 303, response.text
        assert response.headers["location"] == "/espace/connexion?etat=active"

    async def login(
        self, client: httpx.AsyncClient, ins: str, to: str, password: str = PASSWORD
    ) -> httpx.Response:
        """Both steps with the code e-mailed to `to`; the response of the second."""
        seen = len(self.box.mail)
        first = await post_form(client, "/espace/connexion", identifiant=ins,
                                mot_de_passe=password)  # fmt: skip
        assert first.status_code == 303, first.text
        code = await self.code_for(to, LOGIN, after=seen)
        return await post_form(client, "/espace/connexion/code", code=code)


def text_of(raw: bytes) -> str:
    parsed = email.message_from_bytes(raw, policy=policy.default)
    body = parsed.get_body(("plain",))
    return "" if body is None else str(body.get_content())  # type: ignore[attr-defined]


async def post_form(client: httpx.AsyncClient, path: str, **fields: str) -> httpx.Response:
    """Fetch the form (its CSRF cookie and field), then post it with `fields`."""
    page = await client.get(path)
    return await client.post(path, data={"csrf": csrf_of(page.text), **fields})


@pytest.fixture(name="space")
async def space_fixture(
    instance: Path, sink: tuple[Sink, int], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Space]:
    """The server with the sink as its smarthost, and its space's deps (clock moveable)."""
    captured: dict[str, SpaceDeps] = {}
    build = mss.app.build_space

    def capture(*args: Any) -> Any:
        built = build(*args)
        captured["deps"] = built.app.state.deps
        return built

    monkeypatch.setattr(mss.app, "build_space", capture)
    async with running(instance, overrides=notify_settings(sink[1])) as server:
        made = Space(server, sink[0], captured["deps"])
        made.deps.clock = made.clock
        yield made


def client_of(space: Space) -> httpx.AsyncClient:
    return web(space.mss)
