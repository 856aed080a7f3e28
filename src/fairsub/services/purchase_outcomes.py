"""The first payment's answer: a purchase paid (confirmation email, C18) or declined.

Used by the portal right after it charges, and by the billing run's janitor when the
portal lost the answer; either way inside the caller's transaction, once the payment
attempt is settled.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from fairsub.domain.accounts import Account
from fairsub.domain.billing import Invoice, InvoiceStatus
from fairsub.domain.offers import REFUND_DAYS, WITHDRAWAL_DAYS, WITHDRAWAL_REGIONS
from fairsub.domain.periods import Term
from fairsub.domain.subscriptions import Status, Subscription
from fairsub.services.notifications import PURCHASE_CONFIRMED, PURCHASE_FAILED, enqueue
from fairsub.services.ports import ChargeResult, UnitOfWork
from fairsub.services.statements import decline_words


def settle_purchase(
    uow: UnitOfWork,
    subscription: Subscription,
    account: Account,
    invoice: Invoice,
    outcome: ChargeResult,
    now: datetime,
    *,
    customer_waiting: bool,
) -> str:
    """Apply the first payment's answer, inside the caller's transaction, once its attempt
    is settled. Used by the portal and by the billing run's janitor. Returns the audit
    action. A customer who is not waiting for the page is told a decline by email."""
    if outcome.succeeded:
        uow.billing.set_invoice_status(invoice.id, InvoiceStatus.PAID, now)
        if subscription.status is Status.INCOMPLETE:
            subscription.first_payment_succeeded(now)
            uow.subscriptions.save(subscription)
        uow.billing.set_dunning(subscription.id, 0, None)
        confirmation(uow, account, subscription, invoice, now)
        return "purchased"
    uow.billing.set_invoice_status(invoice.id, InvoiceStatus.VOID)
    if subscription.status is Status.INCOMPLETE:
        subscription.first_payment_failed(now)
        uow.subscriptions.save(subscription)
    uow.billing.release(subscription.id)
    if not customer_waiting:
        enqueue(
            uow,
            PURCHASE_FAILED,
            account,
            now,
            dedupe_key=f"purchase_failed:{subscription.id}",
            product=subscription.product_name,
            plan=subscription.plan_name,
            amount=invoice.amount.plain(),
            reason=decline_words(outcome.decline_reason),
            plans_path="/plans",
            statement_path="/account/billing",
        )
    return "purchase_declined"


def confirmation(
    uow: UnitOfWork, account: Account, subscription: Subscription, invoice: Invoice, now: datetime
) -> None:
    """The purchase email (C18): renewal terms, refund policy, a direct turn-off link."""
    trial_ends_at = subscription.trial_ends_at if subscription.status is Status.TRIALING else None
    consent = uow.consents.for_subscription(account.id, subscription.id)
    enqueue(
        uow,
        PURCHASE_CONFIRMED,
        account,
        now,
        dedupe_key=f"purchase:{subscription.id}",
        product=subscription.product_name,
        plan=subscription.plan_name,
        invoice_number=invoice.number,
        amount=invoice.amount.plain(),
        price=subscription.price.plain(),
        term=subscription.term.value,
        auto_renew=subscription.auto_renew,
        trial_ends_at=trial_ends_at.isoformat() if trial_ends_at else None,
        last_free_day=(trial_ends_at - timedelta(days=1)).isoformat() if trial_ends_at else None,
        next_charge_at=subscription.period.end.isoformat() if subscription.auto_renew else None,
        ends_at=subscription.period.end.isoformat(),
        refund_days=REFUND_DAYS[subscription.term],
        refund_after_renewal=subscription.term is Term.YEAR,
        withdrawal_days=WITHDRAWAL_DAYS if subscription.region in WITHDRAWAL_REGIONS else None,
        immediate_start=consent.immediate_start if consent else False,
        withdrawal_right_waived=consent.withdrawal_right_waived if consent else False,
        withdraw_path="/withdraw",
        turn_off_path=f"/account/subscriptions/{subscription.id}/turn-off",
        subscription_path=f"/account/subscriptions/{subscription.id}",
        receipt_path=f"/account/billing/receipts/{invoice.number}",
    )
