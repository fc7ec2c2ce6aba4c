"""The root of the exception tree, here so that the pure `core` can raise its own
errors under it without importing anything outside `core` (the tree is drawn in
`mss/errors.py`)."""

from __future__ import annotations


class MssError(Exception):
    """Base of every error mss raises on purpose."""


class CoreValueError(MssError, ValueError):
    """A value the pure parsers of `core` refuse (still a `ValueError` for callers that
    catch those)."""
