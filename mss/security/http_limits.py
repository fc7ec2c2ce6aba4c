"""The cap on an HTTP request's body, before anything reads it (an ASGI middleware): a
declared Content-Length over the limit is refused at once (413, nothing read); a body
sent without one (chunked) is counted as it is read, and past the limit the client gets
the 413 while the app is told the client went away (whatever it would answer is
dropped). Memory never holds more than the limit, whoever asks, before any
authentication."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_GONE: Message = {"type": "http.disconnect"}


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int, refusal: tuple[bytes, bytes]) -> None:
        self.app = app
        self.limit = limit
        self.content_type, self.page = refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.limit:
            await self._refuse(send)
            return
        seen = 0
        refused = False

        async def counted() -> Message:
            nonlocal seen, refused
            if refused:
                return _GONE
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                refused = True
                await self._refuse(send)
                return _GONE
            return message

        async def unless_refused(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, counted, unless_refused)

    async def _refuse(self, send: Send) -> None:
        headers = [(b"content-type", self.content_type), (b"connection", b"close"),
                   (b"content-length", str(len(self.page)).encode())]  # fmt: skip
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": self.page})
