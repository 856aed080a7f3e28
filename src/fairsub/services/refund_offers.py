"""What ending a subscription now would give back: the refund offer (journey step 5).

Read-only. The offer is the refund policy's decision (domain.refunds) for the charge that
paid for the current period, the only one that ending the service now can concern, with
the card it would go back to and when it should arrive if sent now (the arrival window of
that card's kind of payment method, from the policy). Where no refund is
possible (a trial, an unpaid or in-flight renewal, no payment on record, or the policy
gives none) the offer says why in one sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fairsub.domain.billing import InvoiceKind
from fairsub.domain.errors import NotFound
from fairsub.domain.money import Money
from fairsub.domain.periods import Period
from fairsub.domain.refunding import ArrivalWindow
from fairsub.domain.refunds import ChargeKind, RefundDecision, RefundPolicy, decide
from fairsub.domain.refunds import RefundKind as Outcome
from fairsub.domain.subscriptions import PaymentMethod, Status, Subscription
from fairsub.services import refunds
from fairsub.services.ports import Clock, UnitOfWork

NO_SUCH_SUBSCRIPTION = "There is no such subscription on your account."
# Statuses in which the service is running and could be ended now.
RUNNING = frozenset({Status.TRIALING, Status.ACTIVE, Status.PAST_DUE, Status.CANCELED})


@dataclass(frozen=True, slots=True)
class RefundOffer:
    """What cancelling now gives back, decided at one moment. Not allowed: `reason` says
    why in one sentence, and `amount` is zero."""

    subscription_id: int
    decision: RefundDecision
    charge: refunds.PaidCharge | None
    card: PaymentMethod | None  # where the money would go back (C32)
    decided_at: datetime
    window: ArrivalWindow  # how long a refund to that payment method takes

    @property
    def arrives_from(self) -> datetime:
        """If the refund were sent now."""
        return self.window.for_refund(self.decided_at)[0]

    @property
    def arrives_by(self) -> datetime:
        return self.window.for_refund(self.decided_at)[1]

    @property
    def allowed(self) -> bool:
        return (
            self.charge is not None
            and self.decision.kind is not Outcome.NONE
            and self.decision.amount.amount_minor > 0
        )

    @property
    def amount(self) -> Money:
        return self.decision.amount

    @property
    def reason(self) -> str:
        return self.decision.reason

    @property
    def deadline(self) -> datetime | None:
        return self.decision.deadline

    @property
    def full(self) -> bool:
        return self.decision.kind is Outcome.FULL


def _no(
    policy: RefundPolicy, subscription: Subscription, now: datetime, reason: str
) -> RefundOffer:
    nothing = RefundDecision(Outcome.NONE, Money.zero(subscription.price.currency), reason, None)
    card = subscription.payment_method
    window = policy.arrival.for_kind(card.kind if card else None)
    return RefundOffer(subscription.id, nothing, None, card, now, window)


def _obstacle(uow: UnitOfWork, subscription: Subscription, now: datetime) -> str | None:
    """Why no charge can be refunded now, before the policy is even asked."""
    if subscription.trial_ends_at is not None and now < subscription.trial_ends_at:
        return "No refund: nothing has been charged yet, because the free trial is still running."
    if uow.billing.in_flight(subscription.id) is not None:
        return (
            "No refund offer right now: a payment for this subscription is being confirmed. "
            "Look again in a few minutes."
        )
    if subscription.status is Status.PAST_DUE or uow.billing.open_invoice_for(subscription.id):
        return (
            "No refund: the payment for the current period has not gone through, so nothing "
            "has been paid for it."
        )
    return None


def _decide(
    uow: UnitOfWork,
    policy: RefundPolicy,
    subscription: Subscription,
    charge: refunds.PaidCharge,
    now: datetime,
) -> RefundDecision:
    invoice, attempt = charge.invoice, charge.attempt
    consent = uow.consents.for_subscription(subscription.account_id, subscription.id)
    first = invoice.kind is InvoiceKind.PURCHASE
    return decide(
        policy,
        region=subscription.region,
        term=subscription.term,
        kind=ChargeKind.FIRST_PURCHASE if first else ChargeKind.RENEWAL,
        charged=attempt.amount,
        charged_at=min(invoice.paid_at or attempt.created_at, now),
        period=Period(invoice.period_start, invoice.period_end),
        already_refunded=attempt.amount - charge.refundable,
        now=now,
        eu_or_uk=policy.withdrawal_applies(subscription.region),
        # C27: only both boxes ticked at checkout make a withdrawal proportionate.
        waived_withdrawal=consent is not None and consent.waived_full_withdrawal_refund,
    )


def offer_for(
    uow: UnitOfWork, policy: RefundPolicy, subscription: Subscription, now: datetime
) -> RefundOffer | None:
    """The offer, inside the caller's transaction. None when there is nothing to cancel
    now: an ended subscription, or one bought through a reseller."""
    if subscription.reseller is not None or subscription.status not in RUNNING:
        return None
    obstacle = _obstacle(uow, subscription, now)
    if obstacle is not None:
        return _no(policy, subscription, now, obstacle)
    paid = refunds.paid_charges(uow, subscription.account_id, subscription.id)
    charge = paid[0] if paid else None
    if charge is None or charge.invoice.period_start != subscription.period.start:
        return _no(
            policy,
            subscription,
            now,
            "No refund: there is no payment on record for the current period of this subscription.",
        )
    decision = _decide(uow, policy, subscription, charge, now)
    card = card_of(uow, subscription, charge.attempt.payment_method_id)
    window = refunds.arrival_window(uow, policy.arrival, charge.attempt)
    return RefundOffer(subscription.id, decision, charge, card, now, window)


def refund_offer(
    uow: UnitOfWork, policy: RefundPolicy, clock: Clock, account_id: int, subscription_id: int
) -> RefundOffer | None:
    """What cancelling now would give back. None when there is nothing to cancel now (an
    ended subscription, one bought through a reseller); otherwise an offer that is either
    allowed or says in one sentence why not. Someone else's subscription is NotFound."""
    with uow.read():
        subscription = uow.subscriptions.get(account_id, subscription_id)
        if subscription is None:
            raise NotFound(NO_SUCH_SUBSCRIPTION)
        return offer_for(uow, policy, subscription, clock.now())


def card_of(
    uow: UnitOfWork, subscription: Subscription, payment_method_id: int | None
) -> PaymentMethod | None:
    """The card a charge was paid with: where its refund goes back to (C32)."""
    if payment_method_id is not None:
        for method_id, card, _ in uow.payment_methods.for_account(subscription.account_id):
            if method_id == payment_method_id:
                return card
    return subscription.payment_method
