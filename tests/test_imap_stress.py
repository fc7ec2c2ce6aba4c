"""Many sessions on one mailbox, random commands, each reply checked against a model."""

from __future__ import annotations

import pytest

from mss.bench.imapstress import stress

from .harness import PASSWORD, Running

USER = "stress@pro.mssante.test"


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
async def test_concurrent_sessions_stay_consistent(mss: Running, seed: int) -> None:
    await mss.add_pro(USER)
    result = await stress(mss.ports["imaps"], mss.client_tls(), USER, PASSWORD,
                          clients=6, seconds=6, seed=seed)  # fmt: skip
    assert result.errors == []
    for command in ("FETCH", "APPEND", "STORE", "EXPUNGE", "SELECT", "SEARCH"):
        assert result.counts[command] > 0, command
