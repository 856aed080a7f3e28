"""Cards on file: see them, and add one that replaces the card of every direct subscription."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from fairsub.domain.errors import FairsubError, InvalidInput
from fairsub.entrypoints.web.deps import ContainerDep, CsrfChecked, CurrentCustomer
from fairsub.entrypoints.web.pages import render
from fairsub.services import payment_methods
from fairsub.services.ports import CardDetails

router = APIRouter(prefix="/account/payment-methods")

_EXPIRY = re.compile(r"^\s*(\d{1,2})\s*[/\-. ]\s*(\d{2}|\d{4})\s*$")


def parse_card(number: str, expiry: str, cvc: str) -> CardDetails:
    """The card as typed. Only the shape of the expiry is checked here; the gateway
    checks the rest and says what to correct."""
    found = _EXPIRY.match(expiry)
    if found is None:
        raise InvalidInput("Enter the expiry date as month and year, like 04/29.", field="expiry")
    month, year = int(found.group(1)), int(found.group(2))
    return CardDetails(
        number=number.strip(),
        exp_month=month,
        exp_year=year + 2000 if year < 100 else year,
        cvc=cvc.strip(),
    )


CardNumber = Annotated[str, Form(max_length=40)]
Expiry = Annotated[str, Form(max_length=10)]
Cvc = Annotated[str, Form(max_length=8)]


@router.get("")
def cards_page(
    request: Request,
    app: ContainerDep,
    customer: CurrentCustomer,
    added: str = "",
) -> Response:
    """`?added=ID` after a card was saved. The note says so only of a card this customer
    pays with, and says that failed payments are being tried again only while some are:
    the page states what is true, whatever a link it was reached by says."""
    found = payment_methods.wallet(app.uows, customer.id)
    card = next((c for c in found.cards if str(c.id) == added), None)
    return render(
        request,
        "payment_methods.html",
        account=customer,
        wallet=found,
        added=card,
        retrying=found.retrying if card else 0,
    )


@router.post("", dependencies=[CsrfChecked])
def add_card(
    request: Request,
    app: ContainerDep,
    customer: CurrentCustomer,
    card_number: CardNumber = "",
    expiry: Expiry = "",
    cvc: Cvc = "",
) -> Response:
    try:
        result = payment_methods.add_card(
            app.uows,
            app.clock,
            app.gateway,
            account_id=customer.id,
            card=parse_card(card_number, expiry, cvc),
            actor=f"customer:{customer.id}",
            channel="portal",
        )
    except FairsubError as error:
        return render(
            request,
            "payment_methods.html",
            error.status,
            account=customer,
            wallet=payment_methods.wallet(app.uows, customer.id),
            error=error.message,
            error_field=error.field,
            form={"expiry": expiry},
            added=None,
            retrying=0,
        )
    return RedirectResponse(f"/account/payment-methods?added={result.card.id}", 303)
