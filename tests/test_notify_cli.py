"""`mss notify list|retry|test|prefs` as an operator runs them: real processes on a
real installation, a real smarthost; bad input ends in one line and exit 1."""

from __future__ import annotations

import asyncio
import email
from email import policy
from pathlib import Path

from .conftest import run_mss
from .harness import running
from .notifying import Sink, notify_settings, until

INS = "279035121518989"
EMAIL = "ruth.devinci@exemple.fr"


def mss(instance: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    done = run_mss(*args, "--data-dir", str(instance), env=env)
    return done.returncode, done.stdout, done.stderr


def add_patient(instance: Path) -> None:
    identity = ["--family", "DE VINCI", "--given", "RUTH", "--birth-date", "1979-03-21"]
    code, _, err = mss(instance, "patient", "add", INS, *identity, "--sex", "F", "--email", EMAIL)
    assert code == 0, err


def test_an_empty_log_says_none(instance: Path) -> None:
    assert mss(instance, "notify", "list") == (0, "none\n", "")


async def test_the_log_shows_each_notice_with_its_status_and_a_masked_address(
    instance: Path,
) -> None:
    async with running(instance, overrides=notify_settings(9)) as server:  # nothing on port 9
        await server.add_patient(INS, email=EMAIL)

        async def retrying() -> bool:
            code, out, _ = await asyncio.to_thread(mss, instance, "notify", "list", "--ins", INS)
            return code == 0 and "retrying" in out

        await until(retrying)
    code, out, _ = mss(instance, "notify", "list", "--status", "retrying")
    [header, line] = out.splitlines()
    assert code == 0 and header.split()[:4] == ["when", "INS", "event", "channel"]
    assert INS in line and "profile_created" in line and "email" in line
    assert EMAIL not in line and "r***@exemple.fr" in line
    assert "smarthost 127.0.0.1" in line
    assert mss(instance, "notify", "list", "--status", "sent")[1] == "none\n"
    code, out, _ = mss(instance, "notify", "retry")
    assert code == 0 and out.endswith("waiting rows due now\n")


def test_a_test_notice_reaches_the_smarthost(instance: Path, sink: tuple[Sink, int]) -> None:
    box, port = sink
    env = {"MSS_NOTIFY_SMARTHOST": f"127.0.0.1:{port}", "MSS_NOTIFY_SMARTHOST_TLS": "starttls",
           "MSS_NOTIFY_SMARTHOST_CA": "certs/ca.crt"}  # fmt: skip
    code, out, err = mss(instance, "notify", "test", EMAIL, env=env)
    assert (code, err) == (0, ""), err
    [(_, to, raw)] = box.mail
    assert to == [EMAIL] and email.message_from_bytes(raw, policy=policy.default)[
        "Subject"
    ].startswith("[test]")
    box.refuse.add(EMAIL)
    code, out, err = mss(instance, "notify", "test", EMAIL, env=env)
    assert code == 1 and out == "" and "refused for good" in err and len(err.splitlines()) == 1


def test_a_test_notice_without_a_smarthost_or_to_a_dead_one_says_so(instance: Path) -> None:
    code, _, err = mss(instance, "notify", "test", EMAIL)
    assert code == 1 and "no email channel is configured" in err
    dead = {"MSS_NOTIFY_SMARTHOST": "127.0.0.1:9", "MSS_NOTIFY_SMARTHOST_TLS": "starttls"}
    code, _, err = mss(instance, "notify", "test", EMAIL, env=dead)
    assert code == 1 and "failed for now" in err and "Traceback" not in err


def test_preferences_are_set_shown_and_checked(instance: Path) -> None:
    add_patient(instance)
    code, out, _ = mss(instance, "notify", "prefs", INS)
    assert code == 0 and out.startswith("defaults:")
    code, out, _ = mss(instance, "notify", "prefs", INS, "messages=sms,push", "documents=none")
    assert code == 0
    shown = {tuple(line.split()) for line in out.splitlines()}
    assert ("messages", "sms", "on") in shown and ("messages", "email", "off") in shown
    assert ("documents", "email", "off") in shown and ("documents", "push", "off") in shown
    for bad, said in [
        (["santé=email"], "expected CATEGORY=CHANNEL"),
        (["messages"], "expected CATEGORY=CHANNEL"),
        (["messages=fax"], "unknown channel fax"),
    ]:
        code, out, err = mss(instance, "notify", "prefs", INS, *bad)
        assert (code, out) == (1, "") and said in err and len(err.splitlines()) == 1
    assert {
        tuple(line.split()) for line in mss(instance, "notify", "prefs", INS)[1].splitlines()
    } == shown  # nothing changed
    code, _, err = mss(instance, "notify", "prefs", "279035121518988", "messages=email")
    assert code == 1 and "INS" in err  # a wrong control key
