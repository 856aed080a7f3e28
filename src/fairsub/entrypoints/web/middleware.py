"""The portal's one middleware: CSRF seed cookie, security headers, body limit, HEAD.

A plain ASGI middleware rather than `@app.middleware("http")`: Starlette's BaseHTTPMiddleware
runs the rest of the app in a task group and passes the response through memory streams,
which cost more CPU per request than rendering a small page.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fairsub.entrypoints.web.security import SECURITY_HEADERS, CookiePolicy, new_seed

# The largest body any form of the portal can send is a few kilobytes (a 4,000-character
# note); one far larger is refused before it is read into memory, not parsed.
MAX_BODY = 256 * 1024

# Every page names who is signed in and carries a form's token, so browsers and proxies
# must keep none of them; only the static files may be cached.
CACHEABLE_PREFIX = "/static/"


class SeedAndHeaders:
    """Gives every browser a CSRF seed (request.state.csrf_seed; a cookie on its first
    visit), adds the security headers a response does not set itself, marks pages
    no-store, and answers HEAD wherever GET is answered (the same headers, no body)."""

    def __init__(self, app: ASGIApp, cookies: CookiePolicy) -> None:
        self.app = app
        self.cookies = cookies

    def _seed_cookie(self, seed: str) -> str:
        """The Set-Cookie value, made by the same CookiePolicy as every other cookie."""
        response = Response()
        self.cookies.set_seed(response, seed)
        return response.headers["set-cookie"]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        seed = self.cookies.seed(Request(scope))
        state = scope.setdefault("state", {})
        state["csrf_seed"] = seed or new_seed()
        no_store = not scope["path"].startswith(CACHEABLE_PREFIX)
        head = scope["method"] == "HEAD"
        if head:  # FastAPI routes answer GET only; HEAD is GET without the body
            scope = {**scope, "method": "GET"}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.body" and head:
                message = {**message, "body": b""}
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if seed is None:
                    headers.append("set-cookie", self._seed_cookie(state["csrf_seed"]))
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if no_store:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, _limited(scope, receive), send_with_headers)


def _too_large() -> HTTPException:
    return HTTPException(413, "That was more than any form here sends. Nothing was changed.")


def _limited(scope: Scope, receive: Receive) -> Receive:
    """`receive`, refusing a body over MAX_BODY (413) when it is announced and as it
    arrives, so a page handler never reads more than that into memory."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > MAX_BODY:

            async def refuse() -> Message:
                raise _too_large()

            return refuse
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > MAX_BODY:
            raise _too_large()
        return message

    return counted
