"""Cookies, CSRF tokens and client addresses for the portal.

CSRF uses signed double-submit: every browser gets a random seed cookie, and every form
carries HMAC(secret, seed). A page on another site can neither read the cookie nor compute
the token, and SameSite cookies stop the browser from sending the session there anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request, Response

from fairsub.domain.errors import CsrfFailed

CSRF_SEED_COOKIE = "fairsub_csrf"
CSRF_FIELD = "csrf_token"


class CookiePolicy:
    def __init__(self, secure: bool) -> None:
        self.secure = secure
        # __Host- makes browsers refuse the cookie unless it is Secure, host-only, path /.
        self.session_name = "__Host-fairsub_session" if secure else "fairsub_session"
        self.seed_name = ("__Host-" if secure else "") + CSRF_SEED_COOKIE

    def set_session(self, response: Response, token: str) -> None:
        """Signed in. The CSRF seed changes with the session: a form token from before
        (seen by whoever shared the browser, or planted) is worth nothing after it."""
        response.set_cookie(
            self.session_name,
            token,
            httponly=True,
            samesite="lax",
            secure=self.secure,
            path="/",
        )
        self.set_seed(response, new_seed())

    def clear_session(self, response: Response) -> None:
        """Signed out; the CSRF seed changes too, as when signing in."""
        response.delete_cookie(
            self.session_name, path="/", secure=self.secure, httponly=True, samesite="lax"
        )
        self.set_seed(response, new_seed())

    def session_token(self, request: Request) -> str | None:
        return request.cookies.get(self.session_name)

    def seed(self, request: Request) -> str | None:
        return request.cookies.get(self.seed_name)

    def set_seed(self, response: Response, seed: str) -> None:
        response.set_cookie(
            self.seed_name, seed, httponly=True, samesite="lax", secure=self.secure, path="/"
        )


def new_seed() -> str:
    return secrets.token_urlsafe(32)


def csrf_token(secret: bytes, seed: str) -> str:
    return hmac.new(secret, b"csrf:" + seed.encode(), hashlib.sha256).hexdigest()


def check_csrf(secret: bytes, seed: str | None, submitted: str | None) -> None:
    if not seed or not submitted or not hmac.compare_digest(csrf_token(secret, seed), submitted):
        raise CsrfFailed(
            "This form has expired or did not come from this site. "
            "Nothing was changed: please try again."
        )


def client_address(request: Request, trust_proxy: bool) -> str:
    if trust_proxy:
        forwarded = request.headers.get("x-forwarded-for", "")
        if forwarded:
            return forwarded.split(",")[0].strip()[:64]
    return request.client.host if request.client else "unknown"


SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}
