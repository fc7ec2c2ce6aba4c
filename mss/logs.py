"""The log's shape: plain text lines or one JSON object per line, and the id of the
connection or request each line belongs to.

Each door names what it serves with `begin` (an SMTP session, an IMAP connection, an
HTTP request) in the task that serves it: a context variable, so every line logged
while serving it, in whatever module, carries the same id (`smtp-…`, `imap-…`,
`http-…`) and nothing else does. JSON lines hold `time` (UTC, ISO 8601), `level`,
`logger`, `message`, `connection` when there is one, and `exception` (the traceback)
when one was logged. The standard library does it all: no dependency.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import sys
from contextvars import ContextVar

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

connection_id: ContextVar[str | None] = ContextVar("mss_connection_id", default=None)


def begin(kind: str) -> str:
    """A new id for the connection or request served by the current task (and the
    tasks it starts from now on)."""
    ident = f"{kind}-{secrets.token_hex(6)}"
    connection_id.set(ident)
    return ident


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in messages are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, str] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        ident = connection_id.get()
        if ident is not None:
            entry["connection"] = ident
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.stack_info:
            entry["exception"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(log_format: str) -> None:
    """Log INFO and above to stderr, in `log_format` ("text" or "json")."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's per-command chatter
