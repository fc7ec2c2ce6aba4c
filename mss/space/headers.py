"""The security headers of every space response (an ASGI middleware: no per-request
task). A response that sets its own Content-Security-Policy (the sandboxed frame of an
HTML mail) keeps it. And how large a request's body may be, and its refusal."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mss.space.errors import SpaceError

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# What an HTML mail's frame may do: nothing but show sanitised markup and inline images.
MAIL_FRAME_CSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_ALWAYS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"SAMEORIGIN"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers += [(n, v) for n, v in _ALWAYS if n not in names]
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", CSP.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


# A message's attachments (18 MB at most, mail_send.MAX_TOTAL) and its form, encoded.
MAX_BODY = 19 * 1024 * 1024
TOO_BIG = SpaceError(
    "Ce que vous envoyez est trop volumineux (19 Mo au plus).",
    "Request body too large (19 MB at most).",
    status=413,
)
_TOO_BIG_PAGE = (
    "<!doctype html><html lang=fr><meta charset=utf-8><title>Trop volumineux</title>"
    f"<p>{TOO_BIG.french}</p><p lang=en>{TOO_BIG.english}</p>"
).encode()


# How the space refuses a body over MAX_BODY (`security.http_limits.BodyLimit`)
REFUSAL = (b"text/html; charset=utf-8", _TOO_BIG_PAGE)
