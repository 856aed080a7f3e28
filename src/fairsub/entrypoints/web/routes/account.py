"""The signed-in customer's pages: dashboard, a subscription, turning auto-renew off and on."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from fairsub.domain.accounts import Account
from fairsub.domain.cancellations import Cancellation
from fairsub.domain.subscriptions import Subscription
from fairsub.entrypoints.web.deps import (
    ContainerDep,
    CsrfChecked,
    CurrentCustomer,
    Id,
    SessionToken,
    signed_in,
)
from fairsub.entrypoints.web.pages import render
from fairsub.entrypoints.web.threads import db_read, db_write
from fairsub.services import cancel_refund, subscriptions

router = APIRouter(prefix="/account")


# The busiest pages: the session check and the change or query in one trip to a small
# database pool (see threads.py and deps.SessionToken), the page rendered after it.


@router.get("")
async def dashboard(request: Request, app: ContainerDep, session: SessionToken) -> Response:
    def load() -> tuple[Account, list[Subscription]]:
        customer = signed_in(request, app, session)
        return customer, subscriptions.list_subscriptions(app.uows(), customer.id)

    customer, found = await db_read(request, load)
    return render(request, "account.html", account=customer, subscriptions=found)


@router.get("/subscriptions/{subscription_id}")
def subscription_page(
    request: Request,
    app: ContainerDep,
    customer: CurrentCustomer,
    subscription_id: Id,
    done: str | None = None,
) -> Response:
    subscription, cancellation = subscriptions.get_subscription(
        app.uows(), customer.id, subscription_id
    )
    # Beside turning auto-renew off: cancel now with a refund, if the policy gives one.
    choices = cancel_refund.options(
        app.uows(), app.refund_policy(), app.clock, customer.id, subscription_id
    )
    return render(
        request,
        "subscription.html",
        account=customer,
        sub=subscription,
        cancellation=cancellation,
        done=done,
        choices=choices,
    )


@router.get("/subscriptions/{subscription_id}/turn-off")
def confirm_turn_off(
    request: Request, app: ContainerDep, customer: CurrentCustomer, subscription_id: Id
) -> Response:
    subscription, cancellation = subscriptions.get_subscription(
        app.uows(), customer.id, subscription_id
    )
    if cancellation is not None and not subscription.auto_renew:
        return RedirectResponse(f"/account/cancellations/{cancellation.reference}", 303)
    if subscription.reseller is not None or not subscription.auto_renew:
        # Nothing to confirm here: its page says where it is managed, or that it is off.
        return RedirectResponse(f"/account/subscriptions/{subscription.id}", 303)
    return render(request, "confirm_off.html", account=customer, sub=subscription)


@router.post("/subscriptions/{subscription_id}/turn-off", dependencies=[CsrfChecked])
async def turn_off(
    request: Request, app: ContainerDep, session: SessionToken, subscription_id: Id
) -> Response:
    def change() -> Cancellation:
        customer = signed_in(request, app, session)
        return subscriptions.turn_off_auto_renew(
            app.uows(),
            app.clock,
            account=customer,
            subscription_id=subscription_id,
            actor=f"customer:{customer.id}",
            channel="portal",
        )

    cancellation = await db_write(request, change)
    # Shown only now, after the commit (invariant 4). Post/redirect/get: a reload is harmless.
    return RedirectResponse(f"/account/cancellations/{cancellation.reference}", 303)


@router.post("/subscriptions/{subscription_id}/turn-on", dependencies=[CsrfChecked])
async def turn_on(
    request: Request, app: ContainerDep, session: SessionToken, subscription_id: Id
) -> Response:
    def change() -> None:
        customer = signed_in(request, app, session)
        subscriptions.turn_on_auto_renew(
            app.uows(),
            app.clock,
            account_id=customer.id,
            subscription_id=subscription_id,
            actor=f"customer:{customer.id}",
            channel="portal",
        )

    await db_write(request, change)
    return RedirectResponse(f"/account/subscriptions/{subscription_id}?done=on", 303)


@router.get("/cancellations/{reference}.txt")
def cancellation_text(
    request: Request, app: ContainerDep, customer: CurrentCustomer, reference: str
) -> Response:
    """The same proof as a file the customer can keep, with no JavaScript needed."""
    cancellation = subscriptions.get_cancellation(app.uows(), customer.id, reference)
    subscription, _ = subscriptions.get_subscription(
        app.uows(), customer.id, cancellation.subscription_id
    )
    refunded = cancel_refund.by_reference(
        app.uows(), customer.id, cancellation.reference, arrival=app.refund_policy().arrival
    )
    page = render(
        request,
        "refund_confirmation.txt" if refunded else "cancellation.txt",
        account=customer,
        cancellation=cancellation,
        sub=subscription,
        refunded=refunded,
    )
    page.headers["Content-Type"] = "text/plain; charset=utf-8"
    page.headers["Content-Disposition"] = f'attachment; filename="{cancellation.reference}.txt"'
    return page


@router.get("/cancellations/{reference}")
def cancellation_page(
    request: Request, app: ContainerDep, customer: CurrentCustomer, reference: str
) -> Response:
    cancellation = subscriptions.get_cancellation(app.uows(), customer.id, reference)
    subscription, _ = subscriptions.get_subscription(
        app.uows(), customer.id, cancellation.subscription_id
    )
    refunded = cancel_refund.by_reference(
        app.uows(), customer.id, cancellation.reference, arrival=app.refund_policy().arrival
    )
    return render(
        request,
        "refund_confirmation.html" if refunded else "cancellation.html",
        account=customer,
        cancellation=cancellation,
        sub=subscription,
        refunded=refunded,
    )
