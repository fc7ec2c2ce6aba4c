"""Many sessions on one mailbox, imaptest's profile, each reply checked against a model."""

from __future__ import annotations

import pytest

from bench.imapstress import Options, stress

from .harness import PASSWORD, Running

USER = "stress@pro.mssante.test"


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
async def test_concurrent_sessions_stay_consistent(mss: Running, seed: int) -> None:
    await mss.add_pro(USER)
    options = Options(port=mss.ports["imaps"], tls=mss.client_tls(), user=USER,
                      password=PASSWORD, clients=6, seconds=6, seed=seed)  # fmt: skip
    result = await stress(options)
    assert result.errors == []
    for command in ("LOGIN", "SELECT", "FETCH", "FETCH2", "STORE", "DELETE", "EXPUNGE", "APPEND",
                    "LOGOUT"):  # fmt: skip
        assert result.counts[command] > 0, command
