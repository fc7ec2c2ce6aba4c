"""Fixtures shared by the tests and the benchmarks: a throw-away PostgreSQL, a raw
IMAP client, XDM/CDA builders. The product never imports this package (an
import-linter contract checks it); it needs nothing beyond the runtime dependencies.
"""

import socket


def free_port() -> int:
    """A TCP port of the loopback that nothing listens on (just now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
