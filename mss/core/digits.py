"""Numbers written by clients, files and configuration: the digits 0-9 only.

`str.isdigit` also accepts every other Unicode digit: `'²'.isdigit()` is True and
`int('²')` raises, while `int('١٢')` (Arabic-Indic) reads 12. A check made with it lets
such text through to a crash or to a number the writer did not mean.
"""

from __future__ import annotations


def ascii_digits(text: str) -> bool:
    """`text` is one or more of the ASCII digits 0-9, and nothing else."""
    return text.isascii() and text.isdigit()
