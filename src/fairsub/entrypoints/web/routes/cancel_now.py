"""Cancelling now with a refund: one confirmation page, one click, then the proof.

The subscription page shows the offer beside "turn off auto-renew"; the confirmation
page repeats it and posts back the amount it showed, so a figure that changed meanwhile
(a refund window that closed while the page was open) is shown again, never taken
silently. The proof is the cancellation page (routes.account), shown after the commit.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from fairsub.domain.errors import InvalidInput, NotAllowed
from fairsub.domain.money import Money
from fairsub.entrypoints.web.deps import ContainerDep, CsrfChecked, CurrentCustomer, Id
from fairsub.entrypoints.web.pages import render
from fairsub.services import cancel_refund

router = APIRouter(prefix="/account/subscriptions")


def _confirm_page(
    request: Request,
    app: ContainerDep,
    customer: CurrentCustomer,
    subscription_id: Id,
    *,
    message: str | None = None,
    status: int = 200,
) -> Response:
    choices = cancel_refund.options(
        app.uows(), app.refund_policy(), app.clock, customer.id, subscription_id
    )
    if choices.done is not None:  # already done: show the proof, not a second offer
        reference = choices.done.cancellation.reference
        return RedirectResponse(f"/account/cancellations/{reference}", 303)
    return render(
        request,
        "confirm_refund.html",
        status,
        account=customer,
        sub=choices.subscription,
        offer=choices.offer,
        message=message,
    )


@router.get("/{subscription_id}/cancel-now")
def confirm_cancel_now(
    request: Request, app: ContainerDep, customer: CurrentCustomer, subscription_id: Id
) -> Response:
    return _confirm_page(request, app, customer, subscription_id)


@router.post("/{subscription_id}/cancel-now", dependencies=[CsrfChecked])
def cancel_now(
    request: Request,
    app: ContainerDep,
    customer: CurrentCustomer,
    subscription_id: Id,
    shown_minor: Annotated[int, Form()],
    shown_currency: Annotated[str, Form(max_length=3)],
) -> Response:
    try:
        shown = Money(shown_minor, shown_currency)
        done = cancel_refund.cancel_with_refund(
            app.uows,
            app.gateway,
            app.clock,
            app.refund_policy(),
            account_id=customer.id,
            subscription_id=subscription_id,
            actor=f"customer:{customer.id}",
            channel="portal",
            shown_amount=shown,
        )
    except (NotAllowed, InvalidInput) as error:
        # The page again, with the offer as it stands now and why nothing happened.
        return _confirm_page(
            request, app, customer, subscription_id, message=error.message, status=error.status
        )
    # Shown only now, after the commit (invariant 4). Post/redirect/get: a reload is harmless.
    return RedirectResponse(f"/account/cancellations/{done.cancellation.reference}", 303)
