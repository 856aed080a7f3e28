"""Withdrawing from a contract within 14 days, without signing in (C24-C27).

Anyone may send the form: name, email, the contract (the receipt number from the purchase
email, or an FS- reference) and an optional reason. It matches when the email is an
account's and the contract is one of that account's direct subscriptions, bought in a
withdrawal region (the refund policy's `withdrawal_regions`) no more than 14 days ago, to
the second, and not refunded yet. Then one transaction ends the service, keeps the
declaration as a cancellation with a reference, requests the refund (in full, or less the
days used where the customer ticked both C27 boxes at checkout; never less than the refund
policy gives) and queues the acknowledgement to the ACCOUNT's address; the refund is sent
to the gateway after the commit. A trial, with nothing charged, is withdrawn by stopping
it from ever being charged.

Abuse control without a login: the caller learns nothing. Matched or not (no account, no
such contract, too late, outside the EU/UK, already withdrawn) the answer is the same
`WithdrawalReceipt`, only the account holder is emailed, and both paths run the same
lookups. Requests are limited per typed email and per client address; a repeated
withdrawal changes nothing and sends no second email.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from fairsub.domain.accounts import Account
from fairsub.domain.billing import InvoiceKind
from fairsub.domain.money import Money
from fairsub.domain.offers import WITHDRAWAL_DAYS
from fairsub.domain.periods import Period
from fairsub.domain.refunding import RefundKind as RefundRecordKind
from fairsub.domain.refunds import ChargeKind, RefundDecision, RefundPolicy, decide
from fairsub.domain.subscriptions import Status, Subscription
from fairsub.services import audit, public_forms, refunds
from fairsub.services.notifications import WITHDRAWAL_RECEIVED, enqueue
from fairsub.services.ports import Clock, PaymentGateway, UnitOfWork, UnitOfWorkFactory

# Shared with the cancellation button (services.public_forms); named here too for callers.
from fairsub.services.public_forms import CONTRACT_MISSING as CONTRACT_MISSING
from fairsub.services.public_forms import EMAIL_MISSING as EMAIL_MISSING
from fairsub.services.public_forms import MAX_PER_ADDRESS as MAX_PER_ADDRESS
from fairsub.services.public_forms import MAX_PER_EMAIL as MAX_PER_EMAIL
from fairsub.services.public_forms import NAME_MISSING as NAME_MISSING
from fairsub.services.public_forms import Identity
from fairsub.services.subscriptions import file_cancellation

# The statutory period, held like the refund policy's windows: to the second, inclusive.
PERIOD = timedelta(days=WITHDRAWAL_DAYS)
FORM = "withdrawal"  # the throttle's namespace
ACTOR = "public:withdrawal-form"
REFUND_DUE_WITHIN = timedelta(days=14)  # C26: the law's deadline for paying it back

TOO_MANY = (
    "Too many withdrawal requests from here or for this email address. Please try again in an hour."
)

Defer = Callable[[Callable[[], object]], object]


@dataclass(frozen=True, slots=True)
class WithdrawalReceipt:
    """All the caller may be told: when the declaration arrived. Deliberately nothing
    about whether it matched a contract."""

    received_at: datetime


def withdraw(
    uows: UnitOfWorkFactory,
    gateway: PaymentGateway,
    clock: Clock,
    policy: RefundPolicy,
    *,
    email: str,
    name: str,
    contract: str,
    reason: str = "",
    address: str,
    user_agent: str,
    defer: Defer | None = None,
) -> WithdrawalReceipt:
    """Receive a withdrawal. Raises InvalidInput for a form to correct and TooManyAttempts
    when throttled; otherwise answers the same whatever is on file. `defer`, if given,
    runs the gateway call later (the portal: after the response), so its latency never
    shows in the answer; a refund not sent is sent by the janitor (`refunds.settle`)."""
    declared = public_forms.identify(email, name, contract)
    reason = public_forms.plain(reason)[:2000]
    now = clock.now()
    client = {"address": address, "user_agent": user_agent[:200]}
    refund_ids: list[int] = []
    with uows().write() as uow:
        public_forms.throttle(uow, FORM, declared.email, address, now, TOO_MANY)
        found = public_forms.find(uow, declared)
        if found is not None and _withdrawable(uow, policy, *found, now):
            refund_ids = _withdraw(uow, policy, *found, declared, reason, now, client)
        uow.commit()
    for refund_id in refund_ids:
        send = partial(refunds.send, uows, gateway, clock, refund_id, arrival=policy.arrival)
        if defer is None:
            send()
        else:
            defer(send)
    return WithdrawalReceipt(now)


def _withdrawable(
    uow: UnitOfWork,
    policy: RefundPolicy,
    account: Account,
    subscription: Subscription,
    now: datetime,
) -> bool:
    if subscription.reseller is not None or not policy.withdrawal_applies(subscription.region):
        return False
    if not subscription.started_at <= now <= subscription.started_at + PERIOD:
        return False
    if subscription.status is Status.TRIALING:
        return True  # nothing charged yet: withdrawing stops the first charge
    if subscription.status not in (Status.ACTIVE, Status.CANCELED):
        return False  # refunded (withdrawn already), expired, or not paid for yet
    return bool(refunds.paid_charges(uow, account.id, subscription.id))


def _withdraw(
    uow: UnitOfWork,
    policy: RefundPolicy,
    account: Account,
    subscription: Subscription,
    declared: Identity,
    reason: str,
    now: datetime,
    client: dict[str, str],
) -> list[int]:
    """Record the withdrawal; returns the refunds to send after the commit."""
    before = {"status": subscription.status.value, "auto_renew": subscription.auto_renew}
    charges = refunds.paid_charges(uow, account.id, subscription.id)
    if subscription.status is Status.TRIALING:
        subscription.turn_off_auto_renew(now)  # ends with the trial; never charged
    else:
        subscription.refund(now)
    uow.subscriptions.save(subscription)
    declaration = (
        f"Withdrawal from contract: I withdraw from my contract for "
        f"{subscription.product_name} ({subscription.plan_name}), {declared.contract}, "
        f"bought on {subscription.started_at:%Y-%m-%d %H:%M} UTC. "
        f"Name: {declared.name}. Email: {declared.email}."
        + (f" Reason: {reason}" if reason else "")
    )
    reference = file_cancellation(
        uow,
        subscription,
        at=now,
        ends_at=subscription.ends_at,
        channel="portal",
        actor=ACTOR,
        declaration=declaration,
    ).reference
    consent = uow.consents.for_subscription(account.id, subscription.id)
    waived = consent is not None and consent.waived_full_withdrawal_refund
    decided = [(charge, _decide(policy, subscription, charge, now, waived)) for charge in charges]
    refund_ids = [
        refunds.request(
            uow,
            charge,
            decision.amount,
            kind=RefundRecordKind.WITHDRAWAL,
            reason=f"Withdrawal within {WITHDRAWAL_DAYS} days. {decision.reason}",
            reference=reference,
            actor=ACTOR,
            channel="portal",
            now=now,
        ).id
        for charge, decision in decided
        if decision.amount.amount_minor > 0
    ]
    refunded = sum((d.amount for _, d in decided), Money.zero(subscription.price.currency))
    audit.record(
        uow,
        actor=ACTOR,
        channel="portal",
        action="portal:subscription:withdrawn",
        subject=f"subscription:{subscription.id}",
        account_id=account.id,
        at=now,
        before=before,
        after={
            "status": subscription.status.value,
            "auto_renew": subscription.auto_renew,
            "reference": reference,
            "refund": refunded.plain(),
            "waived_full_refund": waived,
            "name_given": declared.name,
            **client,
        },
        reason=reason or None,
    )
    _acknowledge(uow, policy, account, subscription, decided, declaration, reference, waived, now)
    return refund_ids


def _decide(
    policy: RefundPolicy,
    subscription: Subscription,
    charge: refunds.PaidCharge,
    now: datetime,
    waived: bool,
) -> RefundDecision:
    """Within the withdrawal period every payment under the contract comes back, so each
    charge is decided as the purchase it belongs to: the statutory amount (full, or less
    the days used after a C27 waiver), or more where the operator's rules give more."""
    invoice, attempt = charge.invoice, charge.attempt
    return decide(
        policy,
        region=subscription.region,
        term=subscription.term,
        kind=ChargeKind.FIRST_PURCHASE,
        charged=attempt.amount,
        charged_at=invoice.paid_at or attempt.created_at,
        period=Period(invoice.period_start, invoice.period_end),
        already_refunded=attempt.amount - charge.refundable,
        now=now,
        eu_or_uk=True,
        waived_withdrawal=waived,
    )


def _acknowledge(
    uow: UnitOfWork,
    policy: RefundPolicy,
    account: Account,
    subscription: Subscription,
    decided: list[tuple[refunds.PaidCharge, RefundDecision]],
    declaration: str,
    reference: str,
    waived: bool,
    now: datetime,
) -> None:
    """C25: the declaration, when it arrived and what happens to the money, to the
    account's own address (never to the address typed into the form)."""
    currency = subscription.price.currency
    paid = sum((c.attempt.amount for c, _ in decided), Money.zero(currency))
    refunded = sum((d.amount for _, d in decided), Money.zero(currency))
    purchase = next((c.invoice for c, _ in decided if c.invoice.kind is InvoiceKind.PURCHASE), None)
    charged_to = {c.attempt.payment_method_id for c, _ in decided}
    cards = [
        f"{card.brand} ending {card.last4}"
        for method_id, card, _ in uow.payment_methods.for_account(account.id)
        if method_id in charged_to
    ]
    # By the payment method charged: 'usually within 5 to 10 business days'.
    windows = {refunds.arrival_window(uow, policy.arrival, c.attempt).words for c, _ in decided}
    enqueue(
        uow,
        WITHDRAWAL_RECEIVED,
        account,
        now,
        dedupe_key=f"withdrawal:{reference}",
        reference=reference,
        product=subscription.product_name,
        plan=subscription.plan_name,
        declaration=declaration,
        received_at=now.isoformat(),
        purchased_at=subscription.started_at.isoformat(),
        receipt_number=purchase.number if purchase else None,
        ends_at=subscription.ends_at.isoformat(),
        trial=not decided,
        paid=paid.plain(),
        refund_amount=refunded.plain(),
        kept_amount=(paid - refunded).plain(),
        full_refund=refunded == paid,
        waived_full_refund=waived,
        card=", ".join(cards) or None,
        refund_by=(now + REFUND_DUE_WITHIN).isoformat(),
        arrival_business_days=" or ".join(sorted(windows)) or None,
        subscription_path=f"/account/subscriptions/{subscription.id}",
    )
