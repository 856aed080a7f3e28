"""What refund a subscription's latest charge gets under the policy, and why. Read-only.

The charge is the subscription's latest paid invoice at the moment asked about (its
succeeded attempt's amount, paid at `paid_at`): a purchase invoice is a first purchase, a
renewal invoice a renewal. A period with no invoice at all (the demo data is seeded
without a ledger) is taken to have been paid at its start, at the subscription's price;
the explanation says so. "Already refunded" is every refund recorded against the charge
that has not failed (services.refunds), as of now; for an assumed charge there are no
refund rows, so it is the whole charge if the subscription's status is refunded, else
nothing. The C27 waiver is not read from the consent yet: without it the statutory
right stays whole, which can only give the customer more. `arrival` is how long a refund
of the charge takes: the window of the payment method that paid it (for an assumed charge,
the subscription's), from the policy's `[refunds.arrival]`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fairsub.domain.billing import InvoiceKind
from fairsub.domain.errors import NotFound
from fairsub.domain.money import Money
from fairsub.domain.periods import Period, require_utc
from fairsub.domain.refunding import ArrivalWindow
from fairsub.domain.refunds import ChargeKind, RefundDecision, RefundKind, RefundPolicy, decide
from fairsub.domain.subscriptions import Status, Subscription
from fairsub.services import refunds
from fairsub.services.ports import UnitOfWork
from fairsub.services.refunds import PaidCharge


@dataclass(frozen=True, slots=True)
class ChargeOnRecord:
    amount: Money
    at: datetime
    kind: ChargeKind
    period: Period
    invoice_number: int | None  # None: assumed, there is no invoice on record
    already_refunded: Money


@dataclass(frozen=True, slots=True)
class Explanation:
    subscription: Subscription
    at: datetime
    charge: ChargeOnRecord | None  # None: nothing was charged, or bought through a reseller
    withdrawal_region: bool
    decision: RefundDecision
    arrival: ArrivalWindow | None = None  # None when there is no charge


def _recorded_arrival(
    uow: UnitOfWork, policy: RefundPolicy, paid: list[PaidCharge]
) -> dict[int, ArrivalWindow]:
    """Each paid invoice's arrival window, by invoice number."""
    return {c.invoice.number: refunds.arrival_window(uow, policy.arrival, c.attempt) for c in paid}


def _recorded(charge: PaidCharge) -> ChargeOnRecord:
    invoice, attempt = charge.invoice, charge.attempt
    first = invoice.kind is InvoiceKind.PURCHASE
    return ChargeOnRecord(
        amount=attempt.amount,
        at=invoice.paid_at or attempt.created_at,
        kind=ChargeKind.FIRST_PURCHASE if first else ChargeKind.RENEWAL,
        period=Period(invoice.period_start, invoice.period_end),
        invoice_number=invoice.number,
        already_refunded=attempt.amount - charge.refundable,
    )


def _assumed(subscription: Subscription, at: datetime) -> ChargeOnRecord | None:
    """For a period with no invoice: the price, paid when the period began."""
    anchor = subscription.trial_ends_at or subscription.started_at
    if subscription.status is Status.INCOMPLETE or at < anchor:
        return None
    moment = at if at < subscription.period.end else subscription.period.start
    period = Period.containing(anchor, subscription.term, max(moment, anchor))
    first = period.start == subscription.started_at
    price = subscription.price
    refunded = price if subscription.status is Status.REFUNDED else Money.zero(price.currency)
    return ChargeOnRecord(
        amount=price,
        at=period.start,
        kind=ChargeKind.FIRST_PURCHASE if first else ChargeKind.RENEWAL,
        period=period,
        invoice_number=None,
        already_refunded=refunded,
    )


def _nothing(subscription: Subscription, reason: str) -> RefundDecision:
    return RefundDecision(RefundKind.NONE, Money.zero(subscription.price.currency), reason, None)


def explain(
    uow: UnitOfWork, policy: RefundPolicy, subscription_id: int, at: datetime
) -> Explanation:
    """The refund the subscription's latest charge gets if asked for at `at`."""
    require_utc(at)
    with uow.read():
        subscription = uow.subscriptions.by_id(subscription_id)
        if subscription is None:
            raise NotFound(f"There is no subscription {subscription_id}.")
        invoiced = {
            invoice.period_start
            for invoice, _ in uow.billing.statement(subscription.account_id)
            if invoice.subscription_id == subscription_id
        }
        paid = refunds.paid_charges(uow, subscription.account_id, subscription_id)
        windows = _recorded_arrival(uow, policy, paid)
    withdrawal = policy.withdrawal_applies(subscription.region)
    if subscription.reseller is not None:
        reseller = subscription.reseller
        reason = (
            f"No refund from us: this subscription was bought through {reseller.name}, "
            f"who handle its refunds (order {reseller.order_number})."
        )
        return Explanation(subscription, at, None, withdrawal, _nothing(subscription, reason))
    charges = [c for c in map(_recorded, paid) if c.at <= at]
    assumed = _assumed(subscription, at)
    if assumed is not None and assumed.period.start not in invoiced:
        charges.append(assumed)
    charge = max(charges, key=lambda c: c.at) if charges else None
    if charge is None:
        reason = f"No refund: nothing had been charged for this subscription by {at:%Y-%m-%d}."
        return Explanation(subscription, at, None, withdrawal, _nothing(subscription, reason))
    decision = decide(
        policy,
        region=subscription.region,
        term=subscription.term,
        kind=charge.kind,
        charged=charge.amount,
        charged_at=charge.at,
        period=charge.period,
        already_refunded=charge.already_refunded,
        now=at,
        eu_or_uk=withdrawal,
    )
    if charge.invoice_number is not None:
        arrival = windows[charge.invoice_number]
    else:
        method = subscription.payment_method
        arrival = policy.arrival.for_kind(method.kind if method else None)
    return Explanation(subscription, at, charge, withdrawal, decision, arrival)
