"""A minimal raw IMAP client (tests, benchmarks, the stress tool): lines in, lines out,
literals kept. Not a client library: it checks nothing but what its callers ask."""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from dataclasses import dataclass

LITERAL_END = re.compile(rb"\{(\d+)\}\r\n$")


@dataclass
class Reply:
    lines: list[bytes]  # untagged and continuation lines, literals inline
    tagged: bytes  # the final "tag OK ..." line

    @property
    def ok(self) -> bool:
        return self.tagged.split(b" ", 2)[1] == b"OK"

    @property
    def response(self) -> bytes:
        """The tagged line without its tag: b"OK [READ-WRITE] SELECT completed\r\n"."""
        return self.tagged.split(b" ", 1)[1]

    @property
    def status(self) -> str:
        return self.tagged.split(b" ", 2)[1].decode()

    def untagged(self, word: str) -> list[bytes]:
        """The untagged lines whose first data word (after * and a number) is `word`."""
        found = []
        for line in self.lines:
            parts = line.split(b" ", 3)
            if parts[0] != b"*":
                continue
            first = parts[1].upper().rstrip(b"\r\n")
            second = parts[2].upper().rstrip(b"\r\n") if len(parts) > 2 else b""
            if first == word.encode() or (first.isdigit() and second == word.encode()):
                found.append(line)
        return found

    def text(self) -> str:
        return b"".join(self.lines).decode("utf-8", "replace") + self.tagged.decode()


class RawIMAP:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.counter = 0
        self.greeting = b""

    @classmethod
    async def connect(
        cls, port: int, tls: ssl.SSLContext | None, *, host: str = "localhost",
        source: str | None = None,
    ) -> RawIMAP:  # fmt: skip
        """`source`: the loopback address to connect from (127.0.0.2…), to 127.0.0.1: each
        source address has its own ~28,000 ephemeral ports toward one server port."""
        reader, writer = await asyncio.open_connection(
            "127.0.0.1" if source else host, port, ssl=tls,
            server_hostname=host if tls else None, limit=2**26,
            local_addr=(source, 0) if source else None,
        )  # fmt: skip
        client = cls(reader, writer)
        client.greeting = await client.read_line()
        return client

    async def start_tls(self, tls: ssl.SSLContext | None, host: str = "localhost") -> None:
        """After a tagged OK to STARTTLS."""
        await self.writer.start_tls(tls or ssl.create_default_context(), server_hostname=host)

    async def read_line(self) -> bytes:
        line = await asyncio.wait_for(self.reader.readuntil(b"\r\n"), 30)
        while (match := LITERAL_END.search(line)) is not None:
            data = await self.reader.readexactly(int(match.group(1)))
            line += data + await self.reader.readuntil(b"\r\n")
        return line

    def tag(self) -> str:
        self.counter += 1
        return f"t{self.counter}"

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def command(self, text: str | bytes, *, tag: str | None = None) -> Reply:
        tag = tag or self.tag()
        data = text.encode() if isinstance(text, str) else text
        await self.send(tag.encode() + b" " + data + b"\r\n")
        return await self.until(tag)

    async def pipeline(self, commands: list[str]) -> list[Reply]:
        """Send several commands at once (RFC 3501 §5.5), then read their replies in order.

        Literals must be non-synchronizing (LITERAL+): nothing waits for a "+"."""
        tags = [self.tag() for _ in commands]
        await self.send(
            b"".join(f"{tag} {text}\r\n".encode() for tag, text in zip(tags, commands, strict=True))
        )
        return [await self.until(tag) for tag in tags]

    async def until(self, tag: str) -> Reply:
        lines: list[bytes] = []
        while True:
            line = await self.read_line()
            if line.startswith(tag.encode() + b" "):
                return Reply(lines, line)
            lines.append(line)

    async def login(self, user: str, password: str) -> Reply:
        reply = await self.command(f'LOGIN "{user}" "{password}"')
        assert reply.ok, reply.text()
        return reply

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()
