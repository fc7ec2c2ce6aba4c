"""`FastJSONResponse` writes the bytes Starlette's `JSONResponse` writes, for JSON's own
types: the DMP's answers changed encoder, not content."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.responses import JSONResponse
from hypothesis import given, settings
from hypothesis import strategies as st

from mss.web.responses import FastJSONResponse

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)


@given(JSON_VALUES)
@settings(max_examples=400, deadline=None)
def test_fast_json_response_writes_what_json_response_writes(value: Any) -> None:
    assert FastJSONResponse(value).body == JSONResponse(value).body


def test_fast_json_response_keeps_hostile_text_as_json_response_does() -> None:
    value = {"titre": 'é \u2028\u2029 "q" \\ </script> \x00\x1f\x7f 😀', "n": [1, None]}
    fast, plain = FastJSONResponse(value), JSONResponse(value)
    assert fast.body == plain.body
    assert fast.headers["content-type"] == plain.headers["content-type"] == "application/json"


def test_fast_json_response_refuses_a_lone_surrogate_as_json_response_does() -> None:
    value = {"titre": "moitié de paire \ud800"}
    with pytest.raises(UnicodeEncodeError):
        JSONResponse(value)
    with pytest.raises(ValueError, match="surrogates not allowed"):
        FastJSONResponse(value)
