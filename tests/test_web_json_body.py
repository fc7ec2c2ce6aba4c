"""JSON bodies holding an unpaired UTF-16 surrogate are refused like malformed JSON
(422), in every form a client can send one, and nothing is stored; paired surrogates
(an emoji written as two escapes) and plain text pass."""

from __future__ import annotations

import json

import httpx
import pytest

from mss.web.json_body import strict_loads

from .harness import Running
from .test_dmp_api import DUPONT, INS, dmp_api, document, pro

__all__ = ["dmp_api"]  # the fixture

LONE = [
    rb'{"title": "CR \ud800 1"}',  # a high surrogate alone
    rb'{"title": "CR \uDC00"}',  # a low one alone
    rb'{"title": "\ude00\ud83d"}',  # a pair in the wrong order
    b'{"title": "CR \xed\xa0\x80 1"}',  # the 3-byte form, no escape at all
    rb'{"\ud800": "key"}',  # in a key
    rb'{"documents": [{"meta": ["ok", {"deep": "\udbff"}]}]}',  # nested
]
FINE = [
    rb'{"title": "\ud83d\ude00 \u00e9 \\ud800 as text"}',  # a pair, and an escaped backslash
    '{"title": "😀 é"}'.encode(),
    b'{"n": 1, "list": [true, null]}',
]


@pytest.mark.parametrize("body", LONE)
def test_json_with_an_unpaired_surrogate_is_refused(body: bytes) -> None:
    with pytest.raises(json.JSONDecodeError, match="surrogate"):
        strict_loads(body)


@pytest.mark.parametrize("body", FINE)
def test_json_without_one_is_read_as_json_loads_reads_it(body: bytes) -> None:
    assert strict_loads(body) == json.loads(body)


async def test_a_dmp_deposit_with_an_unpaired_surrogate_is_refused_and_stores_nothing(
    dmp_api: tuple[Running, httpx.AsyncClient],
) -> None:
    _mss, web = dmp_api
    url = f"/api/dmp/patients/{INS}/documents"
    good = json.dumps({"documents": [document(1)]})
    for bad in (good.replace('"CR 1"', '"CR \\ud800 1"'),
                good.replace('"CR 1"', '"CR \\udfff"')):  # fmt: skip
        refused = await web.post(url, content=bad, headers={
            **pro(DUPONT), "content-type": "application/json"})  # fmt: skip
        assert refused.status_code == 422, refused.text
        assert "JSON" in refused.json()["detail"]
    raw = good.encode().replace(b'"CR 1"', b'"CR \xed\xa0\x80 1"')
    refused = await web.post(url, content=raw, headers={
        **pro(DUPONT), "content-type": "application/json"})  # fmt: skip
    assert refused.status_code == 422, refused.text
    created = await web.post(url, json={"documents": [document(2, title="CR 😀")]},
                             headers=pro(DUPONT))  # fmt: skip
    assert created.status_code == 201, created.text
    consent = await web.post(f"/api/dmp/patients/{INS}/authorization", json={},
                             headers=pro(DUPONT))  # fmt: skip
    assert consent.status_code == 200, consent.text
    mine = await web.get(url, headers=pro(DUPONT))
    assert mine.status_code == 200, mine.text
    assert [d["title"] for d in mine.json()["documents"]] == ["CR 😀"]
