"""The `mss` command: every command has --help; bad input is one line and changes nothing."""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from mss.cli import build_parser, main

from .conftest import SHARED_DATA, run_mss

INS = "279035121518989"
PATIENT_TRAITS = [
    *("--family", "PAT-TROIS", "--given", "DOMINIQUE"),
    *("--birth-date", "1979-03-28", "--sex", "F"),
]


def _commands(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    found = [prefix]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _commands(sub, (*prefix, name))
    return found


@pytest.mark.parametrize("command", _commands(build_parser()), ids=lambda c: " ".join(c) or "mss")
def test_every_command_has_help(
    command: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main([*command, "--help"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("usage: mss")


def test_help_through_the_real_command() -> None:
    result = run_mss("patient", "import", "--help")
    assert result.returncode == 0
    assert "CSV with header" in result.stdout


def _count(instance: Path, table: str) -> int:
    with closing(sqlite3.connect(instance / "mss.db")) as conn, conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def _one_line_error(result: object, fragment: str) -> None:
    assert result.returncode == 1, result.stdout  # type: ignore[attr-defined]
    lines = result.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1, lines
    assert fragment in lines[0]


def test_pro_add_with_password_and_rpps(instance: Path) -> None:
    result = run_mss(
        "pro",
        "add",
        "Jean.Dupont@pro.mssante.test",
        "--password-stdin",
        "--rpps",
        "99700367909",
        "--name",
        "Dr Jean Dupont",
        "--data-dir",
        str(instance),
        stdin="un-mot-de-passe-solide\n",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "added jean.dupont@pro.mssante.test"
    with closing(sqlite3.connect(instance / "mss.db")) as conn, conn:
        row = conn.execute("SELECT national_id, password_hash, kind FROM account").fetchone()
    assert row[0] == "899700367909"
    assert row[1].startswith("$argon2id$")
    assert row[2] == "professional"
    assert _count(instance, "mailbox") == 6


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["pro", "add", "jean@other.test"], "not a professional domain"),
        (["pro", "add", "jean dupont@pro.mssante.test"], "invalid address"),
        (["pro", "add", "jean@pro.mssante.test", "--rpps", "123"], "11 digits"),
        (["pro", "add", "jean@pro.mssante.test", "--type", "XYZ"], "PER, ORG, APP, CAB"),
        (
            [
                "patient",
                "add",
                "288091234567823",
                "--family",
                "X",
                "--given",
                "Y",
                "--birth-date",
                "1988-09-01",
                "--sex",
                "F",
            ],
            "control key 23",
        ),
        (
            [
                "patient",
                "add",
                INS,
                "--family",
                "X",
                "--given",
                "Y",
                "--birth-date",
                "1979-03-28",
                "--sex",
                "Z",
            ],
            "sex 'Z' is not one of M, F",
        ),
        (["patient", "status", INS, "closed"], "no patient"),
        (["patient", "status", INS, "gone"], "not one of active, closed, opposed"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(
    instance: Path, args: list[str], fragment: str
) -> None:
    before = (_count(instance, "account"), _count(instance, "patient"))
    _one_line_error(run_mss(*args, "--data-dir", str(instance)), fragment)
    assert (_count(instance, "account"), _count(instance, "patient")) == before


def test_duplicate_address_is_refused(instance: Path) -> None:
    assert (
        run_mss("pro", "add", "jean@pro.mssante.test", "--data-dir", str(instance)).returncode == 0
    )
    _one_line_error(
        run_mss("pro", "add", "JEAN@pro.mssante.test", "--data-dir", str(instance)),
        "already exists",
    )
    assert _count(instance, "account") == 1


def test_short_password_is_refused(instance: Path) -> None:
    result = run_mss(
        "pro",
        "add",
        "jean@pro.mssante.test",
        "--password-stdin",
        "--data-dir",
        str(instance),
        stdin="court\n",
    )
    _one_line_error(result, "at least 8 characters")


def test_patient_add_creates_a_mailbox_only_when_active(instance: Path) -> None:
    common = PATIENT_TRAITS
    result = run_mss("patient", "add", INS, *common, "--data-dir", str(instance))
    assert result.returncode == 0, result.stderr
    assert "with a mailbox" in result.stdout
    result = run_mss(
        "patient",
        "add",
        "188102B17295165",
        "--family",
        "CORSE",
        "--given",
        "FIGATELLIX",
        "--birth-date",
        "1988-10-12",
        "--sex",
        "M",
        "--status",
        "opposed",
        "--data-dir",
        str(instance),
    )
    assert "without a mailbox" in result.stdout
    with closing(sqlite3.connect(instance / "mss.db")) as conn, conn:
        addresses = [r[0] for r in conn.execute("SELECT address FROM account")]
    assert addresses == [f"{INS}@patient.mssante.fr"]
    _one_line_error(
        run_mss("patient", "add", INS, *common, "--data-dir", str(instance)), "already exists"
    )


def test_patient_import_of_the_ans_test_set(instance: Path) -> None:
    result = run_mss(
        "patient", "import", str(SHARED_DATA / "ans-test-patients.csv"), "--data-dir", str(instance)
    )
    assert result.returncode == 0, result.stderr
    assert "imported 62 patients (62 with a mailbox)" in result.stdout
    assert "ignored columns: given_names, dmp_status" in result.stderr
    assert _count(instance, "patient") == 62


def test_patient_import_with_a_bad_line_imports_nothing(instance: Path, tmp_path: Path) -> None:
    csv_file = tmp_path / "patients.csv"
    csv_file.write_text(
        "ins;family;given;birth_date;sex;birth_place;email;phone;status\n"
        f"{INS};PAT-TROIS;DOMINIQUE;1979-03-28;F;51215;d@example.test;0612345678;active\n"
        "288091234567823;BAD;KEY;1988-09-01;F;;;;active\n"
    )
    _one_line_error(
        run_mss("patient", "import", str(csv_file), "--data-dir", str(instance)),
        "line 3: invalid INS",
    )
    assert _count(instance, "patient") == 0


def test_patient_import_refuses_a_file_without_the_header(instance: Path, tmp_path: Path) -> None:
    csv_file = tmp_path / "patients.csv"
    csv_file.write_text(f"{INS},PAT-TROIS,DOMINIQUE,1979-03-28,F\n")
    _one_line_error(
        run_mss("patient", "import", str(csv_file), "--data-dir", str(instance)), "header lacks"
    )


def test_patient_status_closes_the_mailbox(instance: Path) -> None:
    run_mss("patient", "add", INS, *PATIENT_TRAITS, "--data-dir", str(instance))
    result = run_mss("patient", "status", INS, "closed", "--data-dir", str(instance))
    assert result.returncode == 0, result.stderr
    with closing(sqlite3.connect(instance / "mss.db")) as conn, conn:
        assert conn.execute("SELECT disabled FROM account").fetchone()[0] == 1


def test_usage_error_is_one_line(instance: Path) -> None:
    result = run_mss("patient", "add", "--data-dir", str(instance))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1


def test_init_with_a_bad_domain_is_refused(tmp_path: Path) -> None:
    _one_line_error(
        run_mss("init", "--data-dir", str(tmp_path / "d"), "--domain", "not a domain"), "--domain"
    )
    assert not (tmp_path / "d").exists()


def test_keys_rotate(instance: Path) -> None:
    result = run_mss("keys", "rotate", "--data-dir", str(instance))
    assert result.returncode == 0, result.stderr
    assert "new blob key k2" in result.stdout


def test_the_product_imports_no_benchmark_and_no_test_fixture() -> None:
    """A plain `pip install .` must give a working mss: its import path needs only its
    runtime dependencies (the benchmarks live outside it; httpx is a runtime dependency
    since the notifications' SMS and webhooks use it)."""
    probe = (
        "import sys, mss.cli, mss.app\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('bench', 'pytest')"
        " or m.startswith('mss.testing'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_mss_bench_loads_the_benchmarks_of_the_checkout() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mss", "bench", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    for name in ("store", "smtp", "imap", "imapstress", "annuaire", "dmp"):
        assert name in result.stdout


def test_version_answers_without_loading_the_commands() -> None:
    """`mss --version` is what scripts and packagers ask first: it prints the version
    and loads none of the commands' modules (the whole product: seconds of imports)."""
    from mss import __version__

    probe = (
        "import sys; from mss.cli import main; code = main(['--version']); "
        "print(sorted(m for m in sys.modules if m.startswith(('mss.store', 'mss.cli.'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout.splitlines()
    assert out == [f"mss {__version__}", "[]"]
    shell = subprocess.run(
        [sys.executable, "-m", "mss", "--version"], capture_output=True, text=True, timeout=60
    )
    assert (shell.returncode, shell.stdout) == (0, f"mss {__version__}\n")
