"""Dependencies for routes: the container, the signed-in customer, the CSRF check.

Those that only compute (the container, the CSRF check, the session cookie) are `async def`:
FastAPI runs a plain `def` dependency in the thread pool, and each trip there and back costs
more CPU than the work itself (with the GIL, the event loop and the worker threads hand it
over many times per trip). Those that read the database stay `def`, off the event loop.

CurrentCustomer is such a trip of its own, before the route's. The busiest pages (the
dashboard, turning auto-renew off and on) take SessionToken instead and call signed_in()
inside their own trip, to the small database pool of threads.py: the same check, one trip
per request instead of two.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Form, Path, Request

from fairsub.bootstrap import Container
from fairsub.domain.accounts import Account
from fairsub.entrypoints.web.pages import container
from fairsub.entrypoints.web.security import check_csrf
from fairsub.services import accounts

# Ids are 64-bit in both databases. An id in a path beyond that names nothing (404, like
# "/subscriptions/abc"); handed to the database, it would not fit the column (a 500).
MAX_ID = 2**63 - 1
Id = Annotated[int, Path(ge=1, le=MAX_ID)]


def parse_id(text: str) -> int | None:
    """An id from a form field: ASCII digits within MAX_ID, else None. ("²".isdigit() is
    True, and int("٣") is 3: neither is an id anyone was shown.)"""
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    value = int(text)
    return value if 1 <= value <= MAX_ID else None


class SignInRequiredError(Exception):
    """Raised by CurrentCustomer and signed_in(); the app answers with a redirect to /login."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


async def app_container(request: Request) -> Container:
    return container(request)


ContainerDep = Annotated[Container, Depends(app_container)]


async def session_token(request: Request) -> str | None:
    token: str | None = request.app.state.cookies.session_token(request)
    return token


SessionToken = Annotated[str | None, Depends(session_token)]


def signed_in(request: Request, app: Container, token: str | None) -> Account:
    """The customer the session cookie signs in; SignInRequiredError (-> /login) if none.
    Reads the database: call it off the event loop (a `def` route, or threads.db_read)."""
    account = accounts.current_account(app.uows(), app.clock, token) if token else None
    if account is None:
        raise SignInRequiredError(request.url.path)
    request.state.account = account
    return account


def current_customer(request: Request, app: ContainerDep, token: SessionToken) -> Account:
    return signed_in(request, app, token)


def optional_customer(request: Request, app: ContainerDep, token: SessionToken) -> Account | None:
    return accounts.current_account(app.uows(), app.clock, token) if token else None


CurrentCustomer = Annotated[Account, Depends(current_customer)]
OptionalCustomer = Annotated[Account | None, Depends(optional_customer)]


async def csrf_checked(
    request: Request, app: ContainerDep, csrf_token: Annotated[str | None, Form()] = None
) -> None:
    check_csrf(app.secret_key, request.app.state.cookies.seed(request), csrf_token)


CsrfChecked = Depends(csrf_checked)
