"""JSON request bodies without unpaired UTF-16 surrogates.

`json.loads` turns an escape such as `"\\ud800"` (and, in bytes, the 3-byte form of a
surrogate) into a Python string that no UTF-8 encoder accepts: stored or hashed later,
it failed with a 500 (a DMP deposit whose title held one). The DMP's routes read their
bodies through `StrictJSONRoute`, which refuses such a body like any malformed JSON:
FastAPI's `json_invalid`, answered 422 with the position (`web/errors.py`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

# a \u escape of a surrogate code point: where the refusal points
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def strict_loads(body: bytes) -> Any:
    """`json.loads`, refusing text with an unpaired surrogate (`json.JSONDecodeError`)."""
    value = json.loads(body)
    if _lone_surrogate(value):
        found = _SURROGATE_ESCAPE.search(body)  # where, if it came as an escape
        raise json.JSONDecodeError(
            "unpaired UTF-16 surrogate",
            body.decode("utf-8", "replace"),
            found.start() if found else 0,
        )
    return value


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = strict_loads(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """An `APIRoute` whose JSON bodies are read by `strict_loads` (FastAPI's pattern for
    a custom `Request`)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict
