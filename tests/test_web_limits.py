"""Request bodies are capped before authentication and before they are read into memory
(issue 14: a 300 MB unauthenticated chunked POST grew the server by 730 MB): a declared
Content-Length over the cap is refused at once, a chunked body as soon as it passes it;
413 with a JSON error in French with its English meaning."""

from __future__ import annotations

import asyncio
import json

import httpx

from mss.web.errors import API_MAX_BODY

from .harness import Running

INS = "279035121518989"


def _url(mss: Running, path: str) -> str:
    return f"https://localhost:{mss.ports['https']}{path}"


async def test_a_declared_body_over_the_cap_is_refused_before_reading(mss: Running) -> None:
    reader, writer = await asyncio.open_connection(
        "localhost", mss.ports["https"], ssl=mss.client_tls()
    )
    writer.write(
        f"POST /api/dmp/patients/{INS}/documents HTTP/1.1\r\nHost: localhost\r\n"
        f"Content-Type: application/json\r\nContent-Length: {API_MAX_BODY + 1}\r\n\r\n{{".encode()
    )  # the headers and one byte: the answer comes before the body
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(4096), 10)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    refused = json.loads(body)
    assert refused["error"] == "PayloadTooLarge"
    assert "trop volumineux" in refused["detail"] and "too large" in refused["detail"]


async def test_a_chunked_body_is_refused_once_past_the_cap(mss: Running) -> None:
    reader, writer = await asyncio.open_connection(
        "localhost", mss.ports["https"], ssl=mss.client_tls()
    )
    writer.write(
        f"POST /api/dmp/patients/{INS}/documents HTTP/1.1\r\nHost: localhost\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
    )
    chunk = b"x" * (1024 * 1024)
    answer = b""
    for _ in range(API_MAX_BODY // len(chunk) + 2):  # just past the cap, never announced
        writer.write(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        await writer.drain()
    answer = await asyncio.wait_for(reader.read(4096), 10)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"PayloadTooLarge" in answer
    async with httpx.AsyncClient(verify=mss.client_tls()) as web:
        small = await web.post(_url(mss, f"/api/dmp/patients/{INS}/documents"), json={})
    assert small.status_code == 401  # a small body goes on to authentication, as before
