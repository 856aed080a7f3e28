"""Cancel now and get money back, offered beside "turn off auto-renew" (journey step 5).

`refund_offer` (services.refund_offers) says, before anything is clicked, whether ending
the subscription now brings money back, how much, why, until when, and when it should
arrive. `cancel_with_refund` takes the offer in one transaction: the subscription
ends at once (refunded), a cancellation with its reference is the customer's proof, the
refund is requested against that charge, and the audit event and the confirmation email
are written. Only after the commit is the gateway asked (services.refunds.send): a crash or
a lost answer leaves the refund to the janitor under the same idempotency key. A second
click finds the subscription refunded and returns the first result: one refund.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import structlog

from fairsub.domain.accounts import Account
from fairsub.domain.cancellations import Cancellation
from fairsub.domain.errors import InvalidInput, InvalidTransition, NotAllowed, NotFound
from fairsub.domain.money import Money
from fairsub.domain.references import normalize_reference
from fairsub.domain.refunding import ArrivalWindow, ArrivalWindows, Refund, RefundKind
from fairsub.domain.refunds import RefundPolicy
from fairsub.domain.subscriptions import PaymentMethod, Status, Subscription
from fairsub.services import audit, refunds
from fairsub.services.notifications import REFUND_CONFIRMED, enqueue
from fairsub.services.ports import Clock, PaymentGateway, UnitOfWork, UnitOfWorkFactory
from fairsub.services.refund_offers import NO_SUCH_SUBSCRIPTION, RefundOffer, card_of, offer_for
from fairsub.services.refund_offers import refund_offer as refund_offer
from fairsub.services.subscriptions import file_cancellation

log = structlog.get_logger(__name__)
# Refunds whose reference is a cancellation's: the service ended when they were asked for.
ENDED_WITH = frozenset({RefundKind.CANCEL_WITH_REFUND, RefundKind.WITHDRAWAL})


@dataclass(frozen=True, slots=True)
class CancelledWithRefund:
    """The proof and the money: the cancellation (reference, time received, end) and the
    refund as it stands (its status and arrival window), with the card it goes back to
    and how long a refund to it takes."""

    subscription: Subscription
    cancellation: Cancellation
    refund: Refund
    card: PaymentMethod | None
    window: ArrivalWindow

    @property
    def arrival(self) -> tuple[datetime, datetime]:
        """When the money should arrive: as recorded once sent, else an estimate."""
        if self.refund.arrives_from is not None and self.refund.arrives_by is not None:
            return self.refund.arrives_from, self.refund.arrives_by
        return self.window.for_refund(self.refund.requested_at)


@dataclass(frozen=True, slots=True)
class CancelOptions:
    """For the subscription page: the offer while it runs, or how it was refunded."""

    subscription: Subscription
    offer: RefundOffer | None  # None: nothing to cancel now (ended, reseller, not started)
    done: CancelledWithRefund | None


def _done(
    uow: UnitOfWork,
    subscription: Subscription,
    arrival: ArrivalWindows,
    reference: str | None = None,
) -> CancelledWithRefund | None:
    """How this subscription was ended with a refund, here or by a withdrawal (the latest
    such, or the one with this reference), inside the caller's transaction."""
    mine = [
        r
        for r in uow.refunds.for_account(subscription.account_id)
        if r.subscription_id == subscription.id
        and r.kind in ENDED_WITH
        and r.reference is not None
        and (reference is None or r.reference == reference)
    ]
    if not mine:
        return None
    refund = max(mine, key=lambda r: r.id)
    assert refund.reference is not None
    cancellation = uow.cancellations.by_reference(subscription.account_id, refund.reference)
    if cancellation is None:  # pragma: no cover - written in the same transaction
        return None
    attempt = uow.billing.get_attempt(refund.charge_attempt_id)
    card = card_of(uow, subscription, attempt.payment_method_id if attempt else None)
    window = refunds.arrival_window(uow, arrival, attempt) if attempt else arrival.card
    return CancelledWithRefund(subscription, cancellation, refund, card, window)


def options(
    uow: UnitOfWork, policy: RefundPolicy, clock: Clock, account_id: int, subscription_id: int
) -> CancelOptions:
    """What the subscription page offers besides turning auto-renew off."""
    with uow.read():
        subscription = uow.subscriptions.get(account_id, subscription_id)
        if subscription is None:
            raise NotFound(NO_SUCH_SUBSCRIPTION)
        if subscription.status is Status.REFUNDED:
            return CancelOptions(subscription, None, _done(uow, subscription, policy.arrival))
        return CancelOptions(subscription, offer_for(uow, policy, subscription, clock.now()), None)


def by_reference(
    uow: UnitOfWork, account_id: int, reference: str, *, arrival: ArrivalWindows
) -> CancelledWithRefund | None:
    """The cancel-with-refund behind a cancellation reference of this account; None for a
    plain turn-off, an unknown reference or someone else's. `arrival`: the policy's."""
    try:
        reference = normalize_reference(reference)
    except InvalidInput:
        return None
    with uow.read():
        cancellation = uow.cancellations.by_reference(account_id, reference)
        if cancellation is None:
            return None
        subscription = uow.subscriptions.get(account_id, cancellation.subscription_id)
        if subscription is None:  # pragma: no cover - a cancellation has its subscription
            return None
        return _done(uow, subscription, arrival, reference)


def _snapshot(subscription: Subscription) -> dict[str, Any]:
    return {"status": subscription.status.value, "auto_renew": subscription.auto_renew}


def _confirmable(
    uow: UnitOfWork,
    policy: RefundPolicy,
    subscription: Subscription,
    now: datetime,
    shown_amount: Money | None,
) -> tuple[RefundOffer, refunds.PaidCharge]:
    """The offer as it stands now, if it may be taken; otherwise why not."""
    offer = offer_for(uow, policy, subscription, now)
    if offer is None:
        if subscription.reseller is not None:
            raise NotAllowed(
                f"This subscription was bought through {subscription.reseller.name}; cancel "
                f"it and ask for a refund there (order {subscription.reseller.order_number})."
            )
        raise InvalidTransition("This subscription has already ended.")
    if not offer.allowed or offer.charge is None:
        raise NotAllowed(offer.reason)
    if shown_amount is not None and shown_amount != offer.amount:
        raise NotAllowed(
            f"The refund changed while the page was open: it is now {offer.amount.plain()}. "
            "Nothing was cancelled. Check the new amount and confirm again."
        )
    return offer, offer.charge


def _email(
    uow: UnitOfWork, account: Account, done: CancelledWithRefund, offer: RefundOffer
) -> None:
    cancellation, card = done.cancellation, done.card
    enqueue(
        uow,
        REFUND_CONFIRMED,
        account,
        cancellation.received_at,
        dedupe_key=f"refund_confirmed:{cancellation.reference}",
        reference=cancellation.reference,
        product=done.subscription.product_name,
        plan=done.subscription.plan_name,
        amount=offer.amount.plain(),
        full=offer.full,
        reason=offer.reason,
        received_at=cancellation.received_at.isoformat(),
        ended_at=cancellation.ends_at.isoformat(),
        arrives_from=offer.arrives_from.isoformat(),
        arrives_by=offer.arrives_by.isoformat(),
        card=f"{card.brand} ending {card.last4}" if card else None,
        refund_status=done.refund.status.value,
        arrival_business_days=done.window.words,
        statement_path="/account/billing",
        confirmation_path=f"/account/cancellations/{cancellation.reference}",
    )


def cancel_with_refund(
    uows: UnitOfWorkFactory,
    gateway: PaymentGateway,
    clock: Clock,
    policy: RefundPolicy,
    *,
    account_id: int,
    subscription_id: int,
    actor: str,
    channel: str,
    shown_amount: Money | None,
    reason: str | None = None,
) -> CancelledWithRefund:
    """End the subscription now and send its refund back to the card that paid.

    `shown_amount` is the refund the customer saw; if the policy now gives a different
    amount (a window closed while the page was open), nothing happens and NotAllowed says
    so. Refused too (NotAllowed, with the reason) when the policy gives nothing or a
    charge is in flight. Repeating a completed request returns its result unchanged."""
    uow = uows()
    with uow.write():
        subscription = uow.subscriptions.get(account_id, subscription_id, lock=True)
        account = uow.accounts.get(account_id)
        if subscription is None or account is None:
            raise NotFound(NO_SUCH_SUBSCRIPTION)
        now = clock.now()
        if subscription.status is Status.REFUNDED:
            first = _done(uow, subscription, policy.arrival)
            if first is None:
                raise InvalidTransition("This subscription has already ended and been refunded.")
            return first  # a double click, a reload: the first request's result
        offer, charge = _confirmable(uow, policy, subscription, now, shown_amount)
        before = _snapshot(subscription)
        subscription.refund(now)
        uow.subscriptions.save(subscription)
        card = offer.card
        to = f"{card.brand} ending {card.last4}" if card else "the card on file"
        cancellation = file_cancellation(
            uow,
            subscription,
            at=now,
            ends_at=subscription.period.end,
            channel=channel,
            actor=actor,
            declaration=(
                f"Cancel {subscription.product_name} ({subscription.plan_name}) now: end the "
                f"service at once, on {now:%Y-%m-%d %H:%M} UTC, with no further charge, and "
                f"refund {offer.amount.plain()} to the card that paid ({to}). {offer.reason}"
            ),
        )
        reference = cancellation.reference
        refund = refunds.request(
            uow,
            charge,
            offer.amount,
            kind=RefundKind.CANCEL_WITH_REFUND,
            reason=offer.reason,
            reference=reference,
            actor=actor,
            channel=channel,
            now=now,
        )
        audit.record(
            uow,
            actor=actor,
            channel=channel,
            action=f"{channel}:subscription:cancelled_with_refund",
            subject=f"subscription:{subscription.id}",
            account_id=account_id,
            at=now,
            before=before,
            after={
                **_snapshot(subscription),
                "reference": reference,
                "refund": refund.id,
                "amount": offer.amount.plain(),
                "rule": offer.decision.rule,
            },
            reason=reason,
        )
        done = CancelledWithRefund(subscription, cancellation, refund, card, offer.window)
        _email(uow, account, done, offer)
        uow.commit()
    return replace(done, refund=_send(uows, gateway, clock, policy.arrival, refund))


def _send(
    uows: UnitOfWorkFactory,
    gateway: PaymentGateway,
    clock: Clock,
    arrival: ArrivalWindows,
    refund: Refund,
) -> Refund:
    """Ask the gateway now. The cancellation is committed whatever happens here: an error
    must not tell the customer "nothing was changed", so it is logged and the refund,
    still 'requested', is left to the janitor (refunds.settle) and its same key."""
    try:
        return refunds.send(uows, gateway, clock, refund.id, arrival=arrival)
    except Exception:  # see the docstring: the commit already happened
        log.exception("refund_send_failed", refund=refund.id)
        return refund
