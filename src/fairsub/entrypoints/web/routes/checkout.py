"""Buying a plan: the price list, the checkout summary with its choices, the confirmation.

A signed-in customer buys at their account's regional price; a new customer picks a
region on the price list and creates the account in that region on the checkout page.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from fairsub.domain.accounts import Account
from fairsub.domain.catalog import Catalog, Region
from fairsub.domain.errors import FairsubError, InvalidInput
from fairsub.domain.money import Money
from fairsub.domain.periods import Term
from fairsub.entrypoints.web.deps import (
    ContainerDep,
    CsrfChecked,
    CurrentCustomer,
    Id,
    OptionalCustomer,
    parse_id,
)
from fairsub.entrypoints.web.pages import Formatter, render
from fairsub.entrypoints.web.routes.payment_methods import CardNumber, Cvc, Expiry, parse_card
from fairsub.entrypoints.web.security import client_address
from fairsub.services import accounts, checkout, payment_methods

router = APIRouter()

Field = Annotated[str, Form(max_length=200)]


def _region(catalog: Catalog, customer: Account | None, asked: str | None) -> Region:
    """The customer's own region once signed in; before that, the one they picked."""
    if customer is not None and customer.region in catalog.regions:
        return catalog.regions[customer.region]
    if asked and asked in catalog.regions:
        return catalog.regions[asked]
    return next(iter(catalog.regions.values()))


def _formatter(customer: Account | None, region: Region) -> Formatter:
    if customer is not None:
        return Formatter(customer.locale, customer.timezone)
    return Formatter(region.locale, region.timezone)


def _checkout_path(plan: str, region: str) -> str:
    return "/checkout?" + urlencode({"plan": plan, "region": region})


@router.get("/plans")
def plans_page(
    request: Request, app: ContainerDep, customer: OptionalCustomer, region: str | None = None
) -> Response:
    catalog = app.catalog()
    chosen = _region(catalog, customer, region)
    return render(
        request,
        "plans.html",
        account=customer,
        catalog=catalog,
        region=chosen,
        products=checkout.price_list(catalog, chosen.code),
        lfmt=_formatter(customer, chosen),
    )


def _checkout_page(
    request: Request,
    app: Any,
    customer: Account | None,
    plan: str,
    region: str | None,
    status: int = 200,
    **context: Any,
) -> Response:
    catalog = app.catalog()
    chosen = _region(catalog, customer, region)
    shown = checkout.offer(catalog, plan, chosen.code, app.clock.now())
    cards = payment_methods.wallet(app.uows, customer.id).cards if customer else []
    context.setdefault("form", {})
    return render(
        request,
        "checkout.html",
        status,
        account=customer,
        offer=shown,
        asked_region=region,
        cards=cards,
        terms_version=checkout.TERMS_VERSION,
        lfmt=_formatter(customer, chosen),
        here=_checkout_path(plan, chosen.code),
        **context,
    )


@router.get("/checkout")
def checkout_page(
    request: Request,
    app: ContainerDep,
    customer: OptionalCustomer,
    plan: str | None = None,
    region: str | None = None,
) -> Response:
    if not plan:
        return RedirectResponse("/plans", 303)
    return _checkout_page(request, app, customer, plan, region)


@router.post("/checkout/account", dependencies=[CsrfChecked])
def create_account(
    request: Request,
    app: ContainerDep,
    plan: Field = "",
    region: Field = "",
    email: Annotated[str, Form(max_length=320)] = "",
    name: Field = "",
    password: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    """Step one for a new customer: the account, in the region they are buying in."""
    catalog = app.catalog()
    try:
        if region not in catalog.regions:
            raise InvalidInput("Choose the country you live in on the price list.")
        signed_in = accounts.create_account(
            app.uows(),
            app.clock,
            app.hasher,
            email=email,
            name=name,
            password=password,
            region=catalog.regions[region],
            address=client_address(request, app.settings.trust_proxy_headers),
            user_agent=request.headers.get("user-agent", ""),
        )
    except FairsubError as error:
        return _checkout_page(
            request,
            app,
            None,
            plan,
            region,
            error.status,
            account_error=error.message,
            error_field=error.field,
            form={"email": email, "name": name},
        )
    response = RedirectResponse(_checkout_path(plan, region), 303)
    request.app.state.cookies.set_session(response, signed_in.session_token)
    return response


def _price_shown(minor: str, currency: str) -> Money | None:
    try:
        return Money(int(minor), currency)
    except (ValueError, InvalidInput):
        return None


@router.post("/checkout", dependencies=[CsrfChecked])
def place_order(
    request: Request,
    app: ContainerDep,
    customer: CurrentCustomer,
    plan: Field = "",
    renewal: Field = "",
    accept_terms: Field = "",
    immediate_start: Field = "",
    withdrawal_right_waived: Field = "",
    terms_version: Field = "",
    price_minor: Field = "",
    currency: Field = "",
    payment_method: Field = "",
    card_number: CardNumber = "",
    expiry: Expiry = "",
    cvc: Cvc = "",
) -> Response:
    choice = {"renew": True, "once": False}.get(renewal)
    try:
        order = checkout.Order(
            plan_code=plan,
            auto_renew=choice,
            accepted_terms=accept_terms == "yes",
            terms_version=terms_version,
            price_shown=_price_shown(price_minor, currency),
            card=parse_card(card_number, expiry, cvc) if card_number.strip() else None,
            payment_method_id=parse_id(payment_method),
            immediate_start=immediate_start == "yes",
            withdrawal_right_waived=withdrawal_right_waived == "yes",
        )
        bought = checkout.purchase(
            app.uows,
            app.clock,
            app.gateway,
            app.catalog(),
            account_id=customer.id,
            order=order,
            client=checkout.Client(
                client_address(request, app.settings.trust_proxy_headers),
                request.headers.get("user-agent", ""),
            ),
        )
    except FairsubError as error:
        return _checkout_page(
            request,
            app,
            customer,
            plan,
            None,
            error.status,
            error=error.message,
            error_field=error.field,
            form={
                "expiry": expiry,
                "renewal": renewal,
                "accept_terms": accept_terms,
                "immediate_start": immediate_start,
                "withdrawal_right_waived": withdrawal_right_waived,
                "payment_method": payment_method,
            },
        )
    return RedirectResponse(f"/checkout/done/{bought.subscription_id}", 303)


@router.get("/checkout/done/{subscription_id}")
def confirmation(
    request: Request, app: ContainerDep, customer: CurrentCustomer, subscription_id: Id
) -> Response:
    found = checkout.receipt(app.uows(), customer.id, subscription_id)
    return render(request, "checkout_done.html", account=customer, order=found)


@router.get("/terms")
def terms_page(request: Request, customer: OptionalCustomer) -> Response:
    return render(
        request,
        "terms.html",
        account=customer,
        terms_version=checkout.TERMS_VERSION,
        how_to_cancel=checkout.HOW_TO_CANCEL,
        refund_year=checkout.REFUND_DAYS[Term.YEAR],
        refund_month=checkout.REFUND_DAYS[Term.MONTH],
        withdrawal_days=checkout.WITHDRAWAL_DAYS,
    )
