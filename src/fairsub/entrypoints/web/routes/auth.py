"""Signing in and out, and resetting a forgotten password."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from fairsub.domain.errors import (
    AuthenticationFailed,
    CsrfFailed,
    FairsubError,
    TooManyAttempts,
)
from fairsub.entrypoints.web.deps import ContainerDep, CsrfChecked, OptionalCustomer
from fairsub.entrypoints.web.pages import render
from fairsub.entrypoints.web.security import check_csrf, client_address
from fairsub.services import accounts

router = APIRouter()


def _safe_next(target: str | None) -> str:
    """Only local paths: never let a link send a customer to another site after sign-in."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/account"


@router.get("/login")
def login_form(request: Request, customer: OptionalCustomer, next: str | None = None) -> Response:
    if customer is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return render(request, "login.html", next=_safe_next(next), email="")


@router.post("/login")
def login(
    request: Request,
    app: ContainerDep,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form(max_length=500)] = "/account",
    csrf_token: Annotated[str | None, Form()] = None,
) -> Response:
    def again(message: str, status: int, *, fields_wrong: bool = True) -> Response:
        return render(
            request,
            "login.html",
            status,
            error=message,
            fields_wrong=fields_wrong,
            email=email,
            next=_safe_next(next),
        )

    try:
        check_csrf(app.secret_key, request.app.state.cookies.seed(request), csrf_token)
        signed_in = accounts.sign_in(
            app.uows(),
            app.clock,
            app.hasher,
            email=email,
            password=password,
            address=client_address(request, app.settings.trust_proxy_headers),
            user_agent=request.headers.get("user-agent", ""),
        )
    except TooManyAttempts as error:
        response = again(error.message, error.status)
        response.headers["Retry-After"] = str(error.retry_after_seconds)
        return response
    except CsrfFailed as error:  # the form expired: nothing typed in it was wrong
        return again(error.message, error.status, fields_wrong=False)
    except (AuthenticationFailed, FairsubError) as error:
        return again(error.message, error.status)
    response = RedirectResponse(_safe_next(next), status_code=303)
    request.app.state.cookies.set_session(response, signed_in.session_token)
    return response


@router.post("/logout", dependencies=[CsrfChecked])
def logout(request: Request, app: ContainerDep) -> Response:
    token = request.app.state.cookies.session_token(request)
    if token:
        accounts.sign_out(app.uows(), token)
    response = RedirectResponse("/login?signed_out=1", status_code=303)
    request.app.state.cookies.clear_session(response)
    return response


@router.get("/password-reset")
def reset_request_form(request: Request) -> Response:
    return render(request, "reset_request.html", email="")


@router.post("/password-reset")
def reset_request(
    request: Request,
    app: ContainerDep,
    email: Annotated[str, Form(max_length=320)] = "",
    csrf_token: Annotated[str | None, Form()] = None,
) -> Response:
    try:
        # Checked here rather than by CsrfChecked: an expired form comes back with the email
        # still in it and the message, instead of as an error page.
        check_csrf(app.secret_key, request.app.state.cookies.seed(request), csrf_token)
    except CsrfFailed as error:
        return render(request, "reset_request.html", error.status, error=error.message, email=email)
    accounts.request_password_reset(app.uows(), app.clock, email=email)
    # The same page whether or not the address has an account.
    return render(request, "reset_sent.html", email=email)


@router.get("/password-reset/{token}")
def reset_form(request: Request, app: ContainerDep, token: str) -> Response:
    try:
        accounts.check_reset_token(app.uows(), app.clock, token)
    except FairsubError as error:
        return render(request, "reset_request.html", error.status, error=error.message, email="")
    return render(request, "reset_form.html", token=token)


@router.post("/password-reset/{token}", dependencies=[CsrfChecked])
def reset(
    request: Request,
    app: ContainerDep,
    token: str,
    password: Annotated[str, Form(max_length=1024)] = "",
    confirm: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    if password != confirm:
        return render(
            request,
            "reset_form.html",
            422,
            token=token,
            error="The two passwords are not the same.",
            error_field="confirm",
        )
    try:
        accounts.reset_password(
            app.uows(), app.clock, app.hasher, token=token, new_password=password
        )
    except FairsubError as error:
        field = error.field
        return render(
            request,
            "reset_form.html",
            error.status,
            token=token,
            error=error.message,
            error_field=field,
        )
    return RedirectResponse("/login?reset=1", status_code=303)
