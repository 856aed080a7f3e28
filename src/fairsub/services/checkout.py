"""Buying a plan: the disclosures, a genuine auto-renew choice, a consent record, one charge.

`offer` (domain.offers) says, before anything is typed, what the customer agrees to (C15).
`purchase` runs like the billing run, in two transactions around the gateway call, so a
lost answer is settled by the janitor under the same idempotency key, never charged twice:
1. store the card with the gateway (no transaction open), then commit the payment
   method, the subscription ('incomplete'), its purchase invoice, a payment attempt in
   'sending', the consent record (C17) and the audit event;
2. charge, then record the answer: paid -> active (or, bought as one term only, canceled:
   active until the period ends and never renewed); declined -> expired, and the form
   says so; no answer -> the attempt is 'unknown' and `billing.settle_unknown` finishes it.
A plan with a trial that is bought to renew starts 'trialing' with nothing charged; the
billing run charges the first period when the trial ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from fairsub.domain.accounts import Account
from fairsub.domain.billing import (
    AttemptStatus,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    PaymentAttempt,
    idempotency_key,
)
from fairsub.domain.catalog import Catalog
from fairsub.domain.errors import InvalidInput, NotFound
from fairsub.domain.money import Money
from fairsub.domain.offers import HOW_TO_CANCEL as HOW_TO_CANCEL
from fairsub.domain.offers import REFUND_DAYS as REFUND_DAYS
from fairsub.domain.offers import TERMS_VERSION as TERMS_VERSION
from fairsub.domain.offers import WITHDRAWAL_DAYS as WITHDRAWAL_DAYS
from fairsub.domain.offers import WITHDRAWAL_REGIONS as WITHDRAWAL_REGIONS
from fairsub.domain.offers import Offer as Offer
from fairsub.domain.offers import offer as offer
from fairsub.domain.offers import price_list as price_list
from fairsub.domain.periods import Period
from fairsub.domain.subscriptions import ENTITLED, Status, Subscription
from fairsub.services import audit
from fairsub.services.billing_stages import charge_attempt
from fairsub.services.ports import (
    CardDetails,
    ChargeResult,
    Clock,
    ConsentRecord,
    NewSubscription,
    PaymentGateway,
    UnitOfWork,
    UnitOfWorkFactory,
)
from fairsub.services.purchase_outcomes import confirmation, settle_purchase
from fairsub.services.statements import decline_words

# While the portal charges a purchase, the janitor leaves it alone (it has its own answer).
CHARGE_LEASE = timedelta(minutes=10)


# --- buying ----------------------------------------------------------------------------


class PurchaseState(StrEnum):
    PAID = "paid"
    TRIAL = "trial"  # nothing charged yet
    PENDING = "pending"  # the gateway's answer was lost; the janitor will settle it


@dataclass(frozen=True, slots=True)
class Order:
    """What the checkout form sent. `auto_renew` None: the customer chose neither option."""

    plan_code: str
    auto_renew: bool | None
    accepted_terms: bool
    terms_version: str
    price_shown: Money | None
    card: CardDetails | None = None
    payment_method_id: int | None = None
    # C27: two separate unticked boxes, offered in withdrawal regions only.
    immediate_start: bool = False
    withdrawal_right_waived: bool = False


@dataclass(frozen=True, slots=True)
class Client:
    """Where the consent came from (C17)."""

    address: str
    user_agent: str


@dataclass(frozen=True, slots=True)
class Purchase:
    subscription_id: int
    state: PurchaseState
    invoice_number: int


def _checked(order: Order) -> bool:
    if order.auto_renew is None:
        raise InvalidInput(
            "Choose how your subscription continues: renew automatically, or one term only."
        )
    if not order.accepted_terms:
        raise InvalidInput("Please accept the terms of sale to buy.")
    if order.terms_version != TERMS_VERSION:
        raise InvalidInput(
            "Our terms changed while this page was open. Please read the summary again."
        )
    if order.card is None and order.payment_method_id is None:
        raise InvalidInput("Enter your card details, or choose a card you have on file.")
    if order.card is not None and order.payment_method_id is not None:
        raise InvalidInput("Choose either a card on file or a new card, not both.")
    return order.auto_renew


def _refuse_duplicate(subscriptions: list[Subscription], shown: Offer, now: datetime) -> None:
    """One subscription per product: also what stops a double-submitted form paying twice."""
    for sub in subscriptions:
        if sub.product_name != shown.product.name:
            continue
        if sub.status is Status.INCOMPLETE:
            raise InvalidInput(
                f"Your order for {sub.product_name} is still being confirmed. "
                "Check My subscriptions before ordering again."
            )
        if sub.status in ENTITLED and sub.is_entitled(now):
            where = f" through {sub.reseller.name}" if sub.reseller else ""
            raise InvalidInput(
                f"You already have {sub.product_name} ({sub.plan_name}){where}. "
                "See it under My subscriptions."
            )


def purchase(
    uows: UnitOfWorkFactory,
    clock: Clock,
    gateway: PaymentGateway,
    catalog: Catalog,
    *,
    account_id: int,
    order: Order,
    client: Client,
) -> Purchase:
    """Buy a plan for a signed-in customer at their region's price. Raises InvalidInput,
    with nothing charged, for anything to correct, including a declined card."""
    auto_renew = _checked(order)
    with uows().read() as uow:
        account = uow.accounts.get(account_id)
        if account is None:
            raise NotFound("There is no such account.")
        shown = offer(catalog, order.plan_code, account.region, clock.now())
        if order.price_shown != shown.price:
            raise InvalidInput(
                "The price changed while this page was open. Please check the summary again."
            )
        _refuse_duplicate(uow.subscriptions.for_account(account_id), shown, shown.at)
        token = None
        if order.payment_method_id is not None:
            token = uow.payment_methods.token_of(account_id, order.payment_method_id)
            if token is None:
                raise InvalidInput("Choose one of your cards on file, or enter a new card.")
    # The card goes to the gateway before any transaction: a slow gateway holds no lock.
    stored = gateway.store_card(order.card) if order.card is not None else None
    with uows().write() as uow:
        # The invoice number's row lock serialises purchases (on PostgreSQL too; SQLite's
        # writes are serial anyway), so a double-submitted form finds the first order here.
        number = uow.billing.take_invoice_numbers(1)
        _refuse_duplicate(uow.subscriptions.for_account(account_id), shown, shown.at)
        method_id = order.payment_method_id
        if stored is not None:
            method_id = uow.payment_methods.add(account_id, stored, gateway.name, shown.at)
            token = stored.token
        assert token is not None  # one of the two was given (_checked)
        subscription, invoice, attempt = _open(
            uow, account, shown, auto_renew, number, method_id, token
        )
        consent_id = uow.consents.add(
            ConsentRecord(
                account_id=account_id,
                subscription_id=subscription.id,
                at=shown.at,
                address=client.address,
                user_agent=client.user_agent,
                terms_version=order.terms_version,
                price=shown.price,
                auto_renew=auto_renew,
                disclosure=shown.disclosure(auto_renew),
                # Boxes forged onto a form outside the withdrawal regions mean nothing.
                immediate_start=shown.withdrawal_right and order.immediate_start,
                withdrawal_right_waived=shown.withdrawal_right and order.withdrawal_right_waived,
            )
        )
        audit.record(
            uow,
            actor=f"customer:{account_id}",
            channel="portal",
            action="portal:subscription:ordered",
            subject=f"subscription:{subscription.id}",
            account_id=account_id,
            at=shown.at,
            after={
                "plan": shown.plan.code,
                "price": shown.price.plain(),
                "auto_renew": auto_renew,
                "status": subscription.status.value,
                "invoice": invoice.number,
                "consent": consent_id,
            },
        )
        if attempt is None:  # a trial: nothing to charge until it ends
            confirmation(uow, account, subscription, invoice, shown.at)
        uow.commit()
    if attempt is None:
        return Purchase(subscription.id, PurchaseState.TRIAL, invoice.number)
    outcome = charge_attempt(gateway, attempt, f"{shown.product.name} ({shown.plan.name})")
    with uows().write() as uow:
        state, declined = _record(uow, attempt, outcome, clock.now())
        uow.commit()
    if declined is not None:
        # "declined (card declined)" said nothing twice: the reason only when there is one.
        words = decline_words(declined)
        why = "" if words in ("declined", "card declined") else f" ({words})"
        raise InvalidInput(
            f"Your card was declined{why}. Nothing was charged and nothing was bought. "
            "You can try another card."
        )
    return Purchase(subscription.id, state, invoice.number)


def _open(
    uow: UnitOfWork,
    account: Account,
    shown: Offer,
    auto_renew: bool,
    number: int,
    method_id: int | None,
    token: str,
) -> tuple[Subscription, Invoice, PaymentAttempt | None]:
    """The subscription, its purchase invoice and (unless a trial) the attempt to send."""
    trial = auto_renew and shown.trial_ends_at is not None
    period = (
        Period(shown.at, shown.first_charge_at) if trial else Period.first(shown.at, shown.term)
    )
    subscription_id = uow.subscriptions.add(
        NewSubscription(
            account_id=account.id,
            plan_code=shown.plan.code,
            region=shown.region.code,
            status=(Status.TRIALING if trial else Status.INCOMPLETE).value,
            auto_renew=auto_renew,
            price_minor=shown.price.amount_minor,
            currency=shown.price.currency,
            started_at=shown.at,
            period_start=period.start,
            period_end=period.end,
            payment_method_id=method_id,
            reseller=None,
            trial_ends_at=shown.trial_ends_at if trial else None,
        )
    )
    subscription = uow.subscriptions.get(account.id, subscription_id)
    assert subscription is not None
    invoice = uow.billing.add_invoice(
        number=number,
        account_id=account.id,
        subscription_id=subscription_id,
        kind=InvoiceKind.PURCHASE,
        period=period,
        amount=Money.zero(shown.price.currency) if trial else shown.price,
        at=shown.at,
    )
    if trial:  # a receipt for the free trial; the first charge is a renewal invoice
        uow.billing.set_invoice_status(invoice.id, InvoiceStatus.PAID, shown.at)
        return subscription, invoice, None
    attempt = uow.billing.add_attempt(
        invoice=invoice,
        attempt_no=1,
        key=idempotency_key(subscription_id, period.start, 1),
        payment_method_id=method_id,
        payment_token=token,
        at=shown.at,
    )
    uow.billing.lease(subscription_id, shown.at + CHARGE_LEASE)
    return subscription, invoice, attempt


def _record(
    uow: UnitOfWork, attempt: PaymentAttempt, outcome: ChargeResult | None, now: datetime
) -> tuple[PurchaseState, str | None]:
    """Record the answer the customer is waiting for. Returns the state and, for a
    decline, its reason (the state is then meaningless)."""
    subscription = uow.subscriptions.get(attempt.account_id, attempt.subscription_id, lock=True)
    account = uow.accounts.get(attempt.account_id)
    invoice = uow.billing.get_invoice(attempt.invoice_id)
    if subscription is None or account is None or invoice is None:  # pragma: no cover
        raise LookupError(f"attempt {attempt.id} points at missing rows")
    before = subscription.status.value
    if outcome is None:
        uow.billing.settle_attempt(attempt.id, AttemptStatus.UNKNOWN, now)
        uow.billing.release(subscription.id)
        action, state = "purchase_pending", PurchaseState.PENDING
    elif uow.billing.settle_attempt(
        attempt.id,
        AttemptStatus.SUCCEEDED if outcome.succeeded else AttemptStatus.DECLINED,
        now,
        gateway_ref=outcome.gateway_ref,
        decline_reason=outcome.decline_reason,
    ):
        action = settle_purchase(
            uow, subscription, account, invoice, outcome, now, customer_waiting=True
        )
        state = PurchaseState.PAID
    else:
        state = PurchaseState.PAID  # the janitor recorded this same answer first
        action = ""
    if action:
        audit.record(
            uow,
            actor=f"customer:{account.id}",
            channel="portal",
            action=f"portal:subscription:{action}",
            subject=f"subscription:{subscription.id}",
            account_id=account.id,
            at=now,
            before={"status": before},
            after={
                "status": subscription.status.value,
                "attempt": attempt.idempotency_key,
                "gateway_ref": outcome.gateway_ref if outcome else None,
            },
        )
    if outcome is not None and not outcome.succeeded:
        return state, outcome.decline_reason or "declined"
    return state, None


# --- the confirmation page ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Receipt:
    """What the confirmation page shows: the subscription, its order and its consent."""

    subscription: Subscription
    invoice: Invoice
    consent: ConsentRecord | None
    state: PurchaseState | None  # None: the payment was declined

    @property
    def refund_days(self) -> int:
        return REFUND_DAYS[self.subscription.term]

    @property
    def withdrawal_right(self) -> bool:
        return self.subscription.region in WITHDRAWAL_REGIONS

    @property
    def last_free_day(self) -> datetime | None:
        """For a trial still running: the last day to cancel without being charged."""
        ends = self.subscription.trial_ends_at
        trialing = self.subscription.status is Status.TRIALING
        return ends - timedelta(days=1) if ends and trialing else None


def receipt(uow: UnitOfWork, account_id: int, subscription_id: int) -> Receipt:
    with uow.read():
        subscription = uow.subscriptions.get(account_id, subscription_id)
        invoice = (
            uow.billing.invoice_for(subscription_id, subscription.started_at)
            if subscription
            else None
        )
        if subscription is None or invoice is None or invoice.kind is not InvoiceKind.PURCHASE:
            raise NotFound("There is no such order on your account.")
        consent = uow.consents.for_subscription(account_id, subscription_id)
    state: PurchaseState | None
    if subscription.status is Status.INCOMPLETE:
        state = PurchaseState.PENDING
    elif invoice.status is InvoiceStatus.VOID:
        state = None
    elif invoice.amount.amount_minor == 0 and subscription.trial_ends_at is not None:
        state = PurchaseState.TRIAL
    else:
        state = PurchaseState.PAID
    return Receipt(subscription, invoice, consent, state)
