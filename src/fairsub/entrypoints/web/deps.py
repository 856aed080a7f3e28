"""Dependencies for routes: the container, the signed-in customer, the CSRF check."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Form, Request

from fairsub.bootstrap import Container
from fairsub.domain.accounts import Account
from fairsub.entrypoints.web.pages import container
from fairsub.entrypoints.web.security import check_csrf
from fairsub.services import accounts


class SignInRequiredError(Exception):
    """Raised by CurrentCustomer; the app answers with a redirect to /login."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


ContainerDep = Annotated[Container, Depends(container)]


def current_customer(request: Request, app: ContainerDep) -> Account:
    token = request.app.state.cookies.session_token(request)
    account = accounts.current_account(app.uows(), app.clock, token) if token else None
    if account is None:
        raise SignInRequiredError(request.url.path)
    request.state.account = account
    return account


def optional_customer(request: Request, app: ContainerDep) -> Account | None:
    token = request.app.state.cookies.session_token(request)
    return accounts.current_account(app.uows(), app.clock, token) if token else None


CurrentCustomer = Annotated[Account, Depends(current_customer)]
OptionalCustomer = Annotated[Account | None, Depends(optional_customer)]


def csrf_checked(
    request: Request, app: ContainerDep, csrf_token: Annotated[str | None, Form()] = None
) -> None:
    check_csrf(app.secret_key, request.app.state.cookies.seed(request), csrf_token)


CsrfChecked = Depends(csrf_checked)
