"""`mss patient password|show|list|disable|enable|code|represent|representatives|
unrepresent` as an operator runs them (real processes on a real installation), and the
activation code `patient add --print-code` prints opening the space for real."""

from __future__ import annotations

import json
import time
from pathlib import Path

from mss.store.space import create_session, find_session

from .conftest import run_mss
from .harness import running
from .space import OTHER_INS, PATIENT_INS, csrf_of, web

CHILD = "133061764035249"
PASSWORD = "une phrase de passe assez longue"


def mss(instance: Path, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    done = run_mss(*args, "--data-dir", str(instance), stdin=stdin)
    return done.returncode, done.stdout, done.stderr


def add(instance: Path, ins: str, *more: str, birth: str = "1979-03-28") -> str:
    code, out, err = mss(instance, "patient", "add", ins, "--family", "PAT-TROIS", "--given",
                         "DOMINIQUE", "--birth-date", birth, "--sex", "F", *more)  # fmt: skip
    assert code == 0, err
    return out


def test_an_empty_list_says_none(instance: Path) -> None:
    assert mss(instance, "patient", "list") == (0, "none\n", "")
    assert mss(instance, "patient", "list", "--json") == (0, "[]\n", "")


def test_show_and_list_say_whether_the_account_is_activated(instance: Path) -> None:
    add(instance, PATIENT_INS, "--email", "d@exemple.fr")
    code, out, _ = mss(instance, "patient", "show", PATIENT_INS, "--json")
    shown = json.loads(out)
    assert code == 0 and shown["account"] == "not activated" and shown["profile"] == "active"
    assert shown["address"] == f"{PATIENT_INS}@patient.mssante.fr"
    assert mss(instance, "patient", "password", PATIENT_INS, "--password-stdin",
               stdin=PASSWORD + "\n")[0] == 0  # fmt: skip
    code, out, _ = mss(instance, "patient", "list")
    assert code == 0 and out.startswith(PATIENT_INS) and "account: active" in out
    code, out, _ = mss(instance, "patient", "show", PATIENT_INS)
    assert "account: active" in out and "password" not in out.lower()


def test_a_short_password_and_an_unknown_patient_are_one_line_errors(instance: Path) -> None:
    add(instance, PATIENT_INS)
    code, out, err = mss(instance, "patient", "password", PATIENT_INS, "--password-stdin",
                         stdin="court\n")  # fmt: skip
    assert (code, out) == (1, "") and "at least 12 characters" in err
    code, _, err = mss(instance, "patient", "show", OTHER_INS)
    assert code == 1 and "no patient with INS" in err and len(err.splitlines()) == 1


async def test_a_printed_activation_code_opens_the_space(instance: Path) -> None:
    out = add(instance, PATIENT_INS, "--print-code")
    code = out.split("activation code: ")[1].strip()
    assert len(code) == 8 and code.isdigit()
    async with running(instance) as server, web(server) as client:
        page = await client.get("/espace/activation")
        done = await client.post("/espace/activation", data={
            "csrf": csrf_of(page.text), "identifiant": PATIENT_INS, "code": code,
            "mot_de_passe": PASSWORD, "confirmation": PASSWORD,
        })  # fmt: skip
    assert done.status_code == 303 and done.headers["location"].endswith("etat=active")
    assert "account: active" in mss(instance, "patient", "show", PATIENT_INS)[1]


def test_a_new_code_replaces_the_old_one(instance: Path) -> None:
    first = add(instance, PATIENT_INS, "--print-code").split("activation code: ")[1].strip()
    code, out, _ = mss(instance, "patient", "code", PATIENT_INS)
    assert code == 0 and "activation code for patient" in out
    assert out.split(": ")[1].strip() != first


async def test_disable_ends_the_sessions_and_enable_lets_the_patient_in_again(
    instance: Path,
) -> None:
    add(instance, PATIENT_INS)
    address = f"{PATIENT_INS}@patient.mssante.fr"
    async with running(instance) as server:
        now = int(time.time())
        opened = await server.store.write(
            lambda tx: create_session(
                tx, account=address, ins=PATIENT_INS, representative=False, now=now, lifetime=3600
            )
        )
        code, out, _ = mss(instance, "patient", "disable", PATIENT_INS)
        assert code == 0 and "disabled" in out
        gone = await server.store.read(lambda c: find_session(c, opened.token, now, 3600))
        assert gone is None
    assert "account: disabled" in mss(instance, "patient", "show", PATIENT_INS)[1]
    assert mss(instance, "patient", "enable", PATIENT_INS)[0] == 0
    assert "account: not activated" in mss(instance, "patient", "show", PATIENT_INS)[1]


def test_representatives_are_linked_listed_and_unlinked(instance: Path) -> None:
    add(instance, PATIENT_INS)
    add(instance, CHILD, birth="2019-05-01")
    add(instance, OTHER_INS)
    assert mss(instance, "patient", "representatives", CHILD) == (0, "none\n", "")
    code, out, _ = mss(instance, "patient", "represent", PATIENT_INS, CHILD, "--kind", "minor")
    assert code == 0 and "now represents" in out
    code, _, err = mss(instance, "patient", "represent", PATIENT_INS, OTHER_INS, "--kind",
                       "minor")  # fmt: skip
    assert code == 1 and "is not a minor" in err
    assert mss(instance, "patient", "represent", PATIENT_INS, OTHER_INS, "--kind",
               "protected-adult")[0] == 0  # fmt: skip
    code, out, _ = mss(instance, "patient", "representatives", CHILD)
    assert out.split() == [PATIENT_INS, "minor", "active"]
    assert mss(instance, "patient", "unrepresent", PATIENT_INS, CHILD)[0] == 0
    assert mss(instance, "patient", "representatives", CHILD)[1].split()[-1] == "ended"
    code, _, err = mss(instance, "patient", "unrepresent", PATIENT_INS, CHILD)
    assert code == 1 and "does not represent" in err


def test_an_account_whose_profile_is_closed_is_not_enabled(instance: Path) -> None:
    add(instance, PATIENT_INS)
    assert mss(instance, "patient", "status", PATIENT_INS, "closed")[0] == 0
    code, _, err = mss(instance, "patient", "enable", PATIENT_INS)
    assert code == 1 and "reopen it first" in err


def test_an_import_issues_an_activation_code_to_each_patient_with_an_account(
    instance: Path,
) -> None:
    rows = [f"{PATIENT_INS},PAT-TROIS,DOMINIQUE,1979-03-28,F,active",
            f"{OTHER_INS},CORSE,FIGATELLIX,1988-10-12,M,opposed"]  # fmt: skip
    csv_file = instance / "patients.csv"
    csv_file.write_text("ins,family,given,birth_date,sex,status\n" + "\n".join(rows) + "\n")
    code, out, err = mss(instance, "patient", "import", str(csv_file), "--print-codes")
    assert code == 0, err
    [summary, line] = out.splitlines()
    assert summary == "imported 2 patients (1 with a mailbox)"
    ins, activation = line.split()
    assert ins == PATIENT_INS and len(activation) == 8 and activation.isdigit()
