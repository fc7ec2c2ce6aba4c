"""A smarthost for tests and benchmarks: an aiosmtpd server on loopback that
requires STARTTLS with the installation's development server certificate."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from mss.testing import free_port


@contextmanager
def smarthost(handler: Any, certs: Path) -> Iterator[int]:
    """Serve `handler` (an aiosmtpd handler) until the block ends; yields the port."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs / "server.crt", certs / "server.key")
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, tls_context=context,
                            require_starttls=True)  # fmt: skip
    controller.start()
    try:
        yield port
    finally:
        controller.stop()
