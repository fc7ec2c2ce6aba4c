"""Issue 17, accounts from the CLI: `mss pro list|show|password|disable|enable|delete`
and the lists that say "none" when empty, so that an operator never opens the database."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

from mss.security.passwords import verify_password

from .conftest import run_mss

JEAN = "jean.dupont@pro.mssante.test"


def _mss(instance: Path, *args: str, stdin: str | None = None) -> str:
    result = run_mss(*args, "--data-dir", str(instance), stdin=stdin)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _password_hash(instance: Path, address: str) -> str:
    with closing(sqlite3.connect(instance / "mss.db")) as conn, conn:
        row = conn.execute("SELECT password_hash FROM account WHERE address = ?", (address,))
        return str(row.fetchone()[0])


def test_pro_list_says_none_then_lists_what_add_made(instance: Path) -> None:
    assert _mss(instance, "pro", "list").strip() == "none"
    assert json.loads(_mss(instance, "pro", "list", "--json")) == []
    added = _mss(instance, "pro", "add", JEAN, "--rpps", "99700367909", "--name", "Dr Jean")
    assert added.strip() == f"added {JEAN}"
    assert _mss(instance, "pro", "list").split() == [JEAN, "PER", "Dr", "Jean", "899700367909",
                                                       "active"]  # fmt: skip
    [listed] = json.loads(_mss(instance, "pro", "list", "--json"))
    expected = {"address": JEAN, "type": "PER", "name": "Dr Jean",
                "national_id": "899700367909", "password": False, "disabled": False}  # fmt: skip
    assert listed == expected


def test_pro_show_password_disable_enable(instance: Path) -> None:
    _mss(instance, "pro", "add", JEAN)
    _mss(instance, "pro", "password", "Jean.Dupont@pro.mssante.test", "--password-stdin",
         stdin="un-mot-de-passe-solide\n")  # fmt: skip
    assert verify_password(_password_hash(instance, JEAN), "un-mot-de-passe-solide")
    shown = json.loads(_mss(instance, "pro", "show", JEAN, "--json"))
    assert shown["password"] is True and shown["disabled"] is False
    _mss(instance, "pro", "disable", JEAN)
    assert "disabled: True" in _mss(instance, "pro", "show", JEAN)
    _mss(instance, "pro", "enable", JEAN)
    assert json.loads(_mss(instance, "pro", "show", JEAN, "--json"))["disabled"] is False


def test_pro_delete_needs_yes_and_removes_mailboxes(instance: Path) -> None:
    _mss(instance, "pro", "add", JEAN)
    refused = run_mss("pro", "delete", JEAN, "--data-dir", str(instance))
    assert refused.returncode == 1 and "--yes" in refused.stderr
    assert _mss(instance, "pro", "delete", JEAN, "--yes").strip().startswith(f"deleted {JEAN}")
    assert _mss(instance, "pro", "list").strip() == "none"
    with closing(sqlite3.connect(instance / "mss.db")) as conn, conn:
        assert conn.execute("SELECT count(*) FROM mailbox").fetchone()[0] == 0


def test_pro_commands_refuse_an_unknown_or_patient_address(instance: Path) -> None:
    for command in (["show"], ["disable"], ["delete", "--yes"]):
        result = run_mss("pro", command[0], "nobody@pro.mssante.test", *command[1:],
                         "--data-dir", str(instance))  # fmt: skip
        assert result.returncode == 1
        assert "no professional mailbox" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_trust_list_says_none_when_empty(instance: Path) -> None:
    assert _mss(instance, "trust", "list").startswith("none")
