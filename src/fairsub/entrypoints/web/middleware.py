"""The portal's one middleware: the CSRF seed cookie and the security headers.

A plain ASGI middleware rather than `@app.middleware("http")`: Starlette's BaseHTTPMiddleware
runs the rest of the app in a task group and passes the response through memory streams,
which cost more CPU per request than rendering a small page.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fairsub.entrypoints.web.security import SECURITY_HEADERS, CookiePolicy, new_seed

# Pages with personal data or a form's token: browsers and proxies must not keep them.
NO_STORE_PREFIXES = (
    "/account",
    "/login",
    "/password-reset",
    "/dev",
    "/checkout",
    "/withdraw",
    "/vertrag-widerrufen",
    "/vertraege-kuendigen",
)


class SeedAndHeaders:
    """Gives every browser a CSRF seed (request.state.csrf_seed; a cookie on its first
    visit), adds the security headers a response does not set itself, and marks personal
    pages no-store."""

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
        no_store = scope["path"].startswith(NO_STORE_PREFIXES)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if seed is None:
                    headers.append("set-cookie", self._seed_cookie(state["csrf_seed"]))
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if no_store:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)
