"""Sending money back: request in the caller's transaction, send after commit, settle.

The use cases that decide to refund (cancel with refund, EU withdrawal, a charge case)
call `request` inside their own transaction, commit, then call `send`. A crash in
between leaves a 'requested' refund that the janitor (`settle`) sends later under the
same idempotency key; a lost answer becomes 'unknown' and is asked again the same way.

When the money should arrive depends on the payment method that was charged (its kind's
window in the refund policy, `[refunds.arrival]`); the window is recorded when the gateway
accepts the refund, and estimated from when it was requested until then.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from fairsub.domain.billing import AttemptStatus, Invoice, PaymentAttempt
from fairsub.domain.errors import NotAllowed
from fairsub.domain.money import Money
from fairsub.domain.refunding import ArrivalWindow, ArrivalWindows, Refund, RefundKind, refund_key
from fairsub.domain.subscriptions import PaymentMethodKind
from fairsub.services import audit
from fairsub.services.ports import (
    Clock,
    GatewayTimeout,
    GatewayUnavailable,
    PaymentGateway,
    UnitOfWork,
    UnitOfWorkFactory,
)

RESEND_AFTER = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class PaidCharge:
    invoice: Invoice
    attempt: PaymentAttempt
    refundable: Money


def paid_charges(uow: UnitOfWork, account_id: int, subscription_id: int) -> list[PaidCharge]:
    """The subscription's successful charges, newest period first, with what is left."""
    found = []
    for invoice, attempts in uow.billing.statement(account_id):
        if invoice.subscription_id != subscription_id:
            continue
        for attempt in attempts:
            if attempt.status is AttemptStatus.SUCCEEDED and attempt.amount.amount_minor > 0:
                refunded = uow.refunds.refunded_amount(attempt.id, attempt.amount.currency)
                found.append(PaidCharge(invoice, attempt, attempt.amount - refunded))
    return sorted(found, key=lambda c: c.invoice.period_start, reverse=True)


def charge_by_id(uow: UnitOfWork, account_id: int, attempt_id: int) -> PaidCharge | None:
    """One of this account's successful charges; None for anyone else's or unknown ids."""
    for invoice, attempts in uow.billing.statement(account_id):
        for attempt in attempts:
            if attempt.id == attempt_id and attempt.status is AttemptStatus.SUCCEEDED:
                refunded = uow.refunds.refunded_amount(attempt.id, attempt.amount.currency)
                return PaidCharge(invoice, attempt, attempt.amount - refunded)
    return None


def request(
    uow: UnitOfWork,
    charge: PaidCharge,
    amount: Money,
    *,
    kind: RefundKind,
    reason: str,
    reference: str | None,
    actor: str,
    channel: str,
    now: datetime,
) -> Refund:
    """Write a refund, inside the caller's transaction, back to the card that paid."""
    if amount.amount_minor <= 0:
        raise NotAllowed("There is nothing to refund.")
    left = charge.attempt.amount - uow.refunds.refunded_amount(
        charge.attempt.id, charge.attempt.amount.currency
    )
    if left < amount:
        raise NotAllowed(f"Only {left.plain()} of this charge can still be refunded.")
    sequence = len(uow.refunds.for_charge(charge.attempt.id)) + 1
    refund = uow.refunds.add(
        account_id=charge.attempt.account_id,
        subscription_id=charge.attempt.subscription_id,
        invoice_id=charge.invoice.id,
        charge_attempt_id=charge.attempt.id,
        key=refund_key(charge.attempt.id, sequence),
        amount=amount,
        kind=kind,
        reason=reason,
        reference=reference,
        at=now,
    )
    audit.record(
        uow,
        actor=actor,
        channel=channel,
        action=f"{channel}:refund:requested",
        subject=f"refund:{refund.id}",
        account_id=refund.account_id,
        at=now,
        after={
            "amount": amount.plain(),
            "charge": charge.attempt.idempotency_key,
            "kind": kind.value,
            "reference": reference,
        },
    )
    return refund


def method_kind(
    uow: UnitOfWork, account_id: int, payment_method_id: int | None
) -> PaymentMethodKind | None:
    """The kind of this account's payment method; None if the charge names none."""
    for method_id, method, _ in uow.payment_methods.for_account(account_id):
        if method_id == payment_method_id:
            return method.kind
    return None


def arrival_window(
    uow: UnitOfWork, arrival: ArrivalWindows, charge: PaymentAttempt
) -> ArrivalWindow:
    """How long a refund of this charge takes: the window of the payment method that was
    charged, which the refund goes back to (C32); the card's if the charge names none."""
    return arrival.for_kind(method_kind(uow, charge.account_id, charge.payment_method_id))


def send(
    uows: UnitOfWorkFactory,
    gateway: PaymentGateway,
    clock: Clock,
    refund_id: int,
    *,
    arrival: ArrivalWindows,
) -> Refund:
    """Ask the gateway to pay a committed refund, and record the answer (and, if it was
    accepted, when the money should arrive)."""
    with uows().read() as uow:
        refund = uow.refunds.get(refund_id)
        charge = uow.billing.get_attempt(refund.charge_attempt_id) if refund else None
        window = arrival_window(uow, arrival, charge) if charge else None
    if refund is None or charge is None or window is None or charge.gateway_ref is None:
        raise LookupError(f"refund {refund_id} or its charge is missing")
    try:
        result = gateway.refund(refund.idempotency_key, charge.gateway_ref, refund.amount)
    except (GatewayTimeout, GatewayUnavailable):
        with uows().write() as uow:
            uow.refunds.record_unknown(refund.id)
            uow.commit()
    else:
        now = clock.now()
        with uows().write() as uow:
            if result.succeeded:
                arrives_from, arrives_by = window.for_refund(now)
                changed = uow.refunds.record_sent(
                    refund.id, now, result.gateway_ref, arrives_from, arrives_by
                )
                action = "sent"
            else:
                changed = uow.refunds.record_failed(refund.id, result.failure_reason or "refused")
                action = "failed"
            if changed:
                audit.record(
                    uow,
                    actor="system:refunds",
                    channel="worker",
                    action=f"worker:refund:{action}",
                    subject=f"refund:{refund.id}",
                    account_id=refund.account_id,
                    at=now,
                    after={"gateway_ref": result.gateway_ref, "failure": result.failure_reason},
                )
            uow.commit()
    with uows().read() as uow:
        final = uow.refunds.get(refund.id)
    assert final is not None
    return final


def settle(
    uows: UnitOfWorkFactory,
    gateway: PaymentGateway,
    clock: Clock,
    *,
    arrival: ArrivalWindows,
    limit: int = 200,
) -> int:
    """The janitor for refunds: send again, under the same key, every refund with no
    answer, and mark as arrived those whose arrival window has passed."""
    now = clock.now()
    with uows().read() as uow:
        pending = uow.refunds.unsettled(now - RESEND_AFTER, limit)
    for refund in pending:
        send(uows, gateway, clock, refund.id, arrival=arrival)
    with uows().write() as uow:
        uow.refunds.mark_arrived(now)
        uow.commit()
    return len(pending)
