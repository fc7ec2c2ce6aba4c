"""A JSON response for large answers: the DMP's document lists.

Starlette's `JSONResponse` encodes with `json.dumps(ensure_ascii=False, separators=(",",
":"))`: about 1 ms for a page of 100 documents on a slow core. pydantic-core's encoder
(Rust, installed with FastAPI's pydantic) writes the same bytes for JSON's own types
about five times faster: compact, UTF-8 kept, the same escapes
(`tests/test_web_responses.py` compares them).
"""

from __future__ import annotations

from typing import Any

import pydantic_core
from fastapi.responses import JSONResponse


class FastJSONResponse(JSONResponse):
    """`JSONResponse`, encoded by pydantic-core. For answers built of JSON's own types
    (dicts with text keys, lists, text, integers, booleans, None), as the DMP's
    answers are: those are encoded byte for byte as `JSONResponse` encodes them."""

    def render(self, content: Any) -> bytes:
        return pydantic_core.to_json(content)
