"""Fixtures shared by the tests and the benchmarks: a throw-away PostgreSQL, a raw
IMAP client, XDM/CDA builders. The product never imports this package (an
import-linter contract checks it); it needs nothing beyond the runtime dependencies.
"""
