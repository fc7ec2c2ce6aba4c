"""Issue 15, logs: `[log] format = "json"` (or MSS_LOG_FORMAT=json) makes every line of
stderr one JSON object (time, level, logger, message), and the lines logged while
serving one SMTP session, IMAP connection or HTTP request carry the same id."""

from __future__ import annotations

import contextlib
import imaplib
import json
import signal
import smtplib
import ssl
from pathlib import Path
from typing import Any

import httpx

from .conftest import run_mss
from .harness import PASSWORD, message
from .test_metrics import JEAN, MARIE, _add_pros, _serve, _wait_for_workers
from .test_serve import stop_server, wait_ready

INS = "1800175123456"  # any patient: the request is refused before it is looked at


def _one_session(port: int, ca: Path) -> None:
    """One SMTP session: a wrong password, then the right one and a message."""
    with smtplib.SMTP("localhost", port, timeout=30) as client:
        client.starttls(context=ssl.create_default_context(cafile=str(ca)))
        client.ehlo()
        client.user, client.password = JEAN, "pas le bon mot de passe"
        with contextlib.suppress(smtplib.SMTPAuthenticationError):
            client.auth("PLAIN", client.auth_plain)  # one attempt (login() tries each)
        client.login(JEAN, PASSWORD)
        client.sendmail(JEAN, [MARIE], message(JEAN, MARIE))


def _by_message(entries: list[dict[str, Any]], fragment: str) -> list[dict[str, Any]]:
    return [e for e in entries if fragment in e["message"]]


def test_json_logs_tie_the_lines_of_one_connection_together(instance: Path) -> None:
    _add_pros(instance, JEAN, MARIE)
    server = _serve(instance, workers=2, extra={"MSS_LOG_FORMAT": "json"})
    try:
        ports = wait_ready(server)
        _wait_for_workers(server.log, 2)  # type: ignore[attr-defined]
        ca = instance / "certs" / "ca.crt"
        _one_session(ports["submission"], ca)
        _one_session(ports["submission"], ca)
        trust = ssl.create_default_context(cafile=str(ca))
        imap = imaplib.IMAP4_SSL("localhost", ports["imaps"], ssl_context=trust)
        with imap, contextlib.suppress(imaplib.IMAP4.error):
            imap.login(JEAN, "pas le bon mot de passe")
        url = f"https://localhost:{ports['https']}/api/dmp/patients/{INS}/documents"
        assert httpx.get(url, verify=trust).status_code == 401
        assert stop_server(server, signal.SIGTERM) == 0
    finally:
        server.kill()
        server.wait()
    lines: list[str] = server.log  # type: ignore[attr-defined]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    for entry in entries:
        assert {"time", "level", "logger", "message"} <= entry.keys(), entry
    refused = _by_message(entries, "login refused: door=submission")
    accepted = _by_message(entries, "accepted ")
    assert len(refused) == 2 and len(accepted) == 2
    sessions = [e["connection"] for e in accepted]
    assert [e["connection"] for e in refused] == sessions  # each session's two lines
    assert sessions[0] != sessions[1] and all(s.startswith("smtp-") for s in sessions)
    (imap_refused,) = _by_message(entries, "login refused: door=imap")
    (imap_end,) = _by_message(entries, "IMAP connection from")
    assert imap_refused["connection"] == imap_end["connection"]
    assert imap_end["connection"].startswith("imap-")
    (http,) = _by_message(entries, "login refused: door=dmp-api")
    assert http["connection"].startswith("http-")
    assert "connection" not in _by_message(entries, "serving (")[0]  # no connection: no id


def test_json_lines_hold_a_traceback_and_line_breaks_on_one_line() -> None:
    import logging
    import sys

    from mss.logs import JsonFormatter, begin, connection_id

    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("mss", logging.ERROR, "f", 1, "two\nlines", None, sys.exc_info())
    token = connection_id.set(None)
    try:
        ident = begin("imap")
        line = JsonFormatter().format(record)
    finally:
        connection_id.reset(token)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "two\nlines" and entry["connection"] == ident
    assert "ValueError: boom" in entry["exception"]


def test_an_unknown_log_format_stops_the_start(instance: Path) -> None:
    result = run_mss("serve", "--data-dir", str(instance), env={"MSS_LOG_FORMAT": "xml"})
    assert result.returncode == 1
    assert "log.format" in result.stderr and "text or json" in result.stderr
