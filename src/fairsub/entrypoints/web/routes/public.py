"""Pages anyone can open: the front page, official contacts, the contact checker, health."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import PlainTextResponse, RedirectResponse

from fairsub.domain.errors import FairsubError
from fairsub.entrypoints.web.deps import ContainerDep, CsrfChecked, OptionalCustomer
from fairsub.entrypoints.web.pages import render
from fairsub.services import contact

router = APIRouter()


@router.get("/")
def home(customer: OptionalCustomer) -> Response:
    return RedirectResponse("/account" if customer else "/login", status_code=303)


@router.get("/contact")
def contact_page(request: Request, app: ContainerDep, customer: OptionalCustomer) -> Response:
    return render(
        request,
        "contact.html",
        account=customer,
        channels=app.channels,
        settings=app.settings,
        value="",
    )


@router.post("/contact", dependencies=[CsrfChecked])
def check_contact(
    request: Request,
    app: ContainerDep,
    customer: OptionalCustomer,
    value: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    try:
        verdict = contact.check(value, app.channels)
    except FairsubError as error:
        return render(
            request,
            "contact.html",
            error.status,
            account=customer,
            channels=app.channels,
            settings=app.settings,
            value=value,
            error=error.message,
        )
    return render(
        request,
        "contact.html",
        account=customer,
        channels=app.channels,
        settings=app.settings,
        value=value,
        verdict=verdict,
    )


@router.get("/healthz")
def health() -> Response:
    return PlainTextResponse("ok")
