"""Seeing subscriptions and turning auto-renew off and back on."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from fairsub.domain.accounts import Account
from fairsub.domain.cancellations import Cancellation
from fairsub.domain.errors import InvalidInput, InvalidTransition, NotFound
from fairsub.domain.references import new_reference, normalize_reference
from fairsub.domain.subscriptions import Subscription
from fairsub.services import audit
from fairsub.services.notifications import AUTO_RENEW_OFF, AUTO_RENEW_ON, enqueue
from fairsub.services.ports import Clock, UnitOfWork


def list_subscriptions(uow: UnitOfWork, account_id: int) -> list[Subscription]:
    with uow.read():
        return uow.subscriptions.for_account(account_id)


def get_subscription(
    uow: UnitOfWork, account_id: int, subscription_id: int
) -> tuple[Subscription, Cancellation | None]:
    """The subscription and the cancellation in force, if any. Someone else's is NotFound."""
    with uow.read():
        subscription = uow.subscriptions.get(account_id, subscription_id)
        if subscription is None:
            raise NotFound("There is no such subscription on your account.")
        return subscription, uow.cancellations.open_for(subscription.id)


def get_cancellation(uow: UnitOfWork, account_id: int, reference: str) -> Cancellation:
    try:
        reference = normalize_reference(reference)
    except InvalidInput:
        raise NotFound("There is no cancellation with that reference on your account.") from None
    with uow.read():
        found = uow.cancellations.by_reference(account_id, reference)
    if found is None:
        raise NotFound("There is no cancellation with that reference on your account.")
    return found


def _snapshot(subscription: Subscription) -> dict[str, Any]:
    return {"status": subscription.status.value, "auto_renew": subscription.auto_renew}


def turn_off_auto_renew(
    uow: UnitOfWork,
    clock: Clock,
    *,
    account: Account,
    subscription_id: int,
    actor: str,
    channel: str,
    reason: str | None = None,
) -> Cancellation:
    """Stop all future charges. Retrying returns the cancellation already in force,
    with the same reference, and queues no second email. `account` is the customer as
    the caller knows them (the portal: from the sign-in session), so only the
    subscription is read, and locked."""
    with uow.write():
        subscription = uow.subscriptions.get(account.id, subscription_id, lock=True)
        if subscription is None:
            raise NotFound("There is no such subscription on your account.")
        now = clock.now()
        cancellation = record_turn_off(
            uow, account, subscription, now, actor=actor, channel=channel, reason=reason
        )
        if cancellation is None:
            existing = uow.cancellations.open_for(subscription.id)
            if existing is None:
                raise InvalidTransition("Auto-renew is already off for this subscription.")
            return existing
        uow.commit()
    return cancellation


def record_turn_off(
    uow: UnitOfWork,
    account: Account,
    subscription: Subscription,
    now: datetime,
    *,
    actor: str,
    channel: str,
    reason: str | None = None,
    declared: str | None = None,
    email_key: str = "auto_renew_off",
    email_facts: dict[str, Any] | None = None,
) -> Cancellation | None:
    """Turn auto-renew off inside the caller's transaction (the subscription locked by
    it): the subscription, the cancellation with its reference, the email and the audit
    entry. None, and nothing written, when auto-renew was off already.

    `declared` goes before the standard declaration (what the customer said, in a form
    of their own); `email_key` and `email_facts` let such a form add to the same email."""
    before = _snapshot(subscription)
    if not subscription.turn_off_auto_renew(now):
        return None
    # The race with a renewal, decided by the subscription's row lock: if the billing
    # run committed a charge for the next period first, that charge goes ahead and the
    # customer is told so; otherwise nothing more is ever charged.
    charging = uow.billing.in_flight(subscription.id)
    invoice = uow.billing.get_invoice(charging.invoice_id) if charging else None
    ends_at = invoice.period_end if invoice else subscription.ends_at
    declaration = (
        f"Turn off auto-renew for {subscription.product_name} "
        f"({subscription.plan_name}); keep the service until "
        f"{ends_at:%Y-%m-%d %H:%M} UTC and pay nothing more."
    )
    if invoice is not None:
        declaration += (
            f" A renewal charge of {invoice.amount.plain()} for the period from "
            f"{invoice.period_start:%Y-%m-%d} had already started before this request; "
            "if it goes through, that period is yours, and it is the last charge."
        )
    if declared:
        declaration = f"{declared} {declaration}"
    uow.subscriptions.save(subscription)
    cancellation = file_cancellation(
        uow,
        subscription,
        at=now,
        ends_at=ends_at,
        channel=channel,
        actor=actor,
        declaration=declaration,
    )
    facts = dict(email_facts or {})
    if declared:
        facts["declaration"] = declaration
    announce_turn_off(
        uow,
        account,
        subscription,
        cancellation,
        now,
        email_key=email_key,
        charge_in_flight=invoice.amount.plain() if invoice else None,
        **facts,
    )
    # Audited last: the entry locks the chain's head until commit, so keep that short.
    audit.record(
        uow,
        actor=actor,
        channel=channel,
        action=f"{channel}:subscription:auto_renew_off",
        subject=f"subscription:{subscription.id}",
        account_id=account.id,
        at=now,
        before=before,
        after={**_snapshot(subscription), "reference": cancellation.reference},
        reason=reason,
    )
    return cancellation


def file_cancellation(
    uow: UnitOfWork,
    subscription: Subscription,
    *,
    at: datetime,
    ends_at: datetime,
    channel: str,
    actor: str,
    declaration: str,
) -> Cancellation:
    """Store a cancellation of `subscription` under a new reference, or under another
    should that be taken (1 in 34 billion): the insert itself checks, so no read goes first."""
    cancellation = Cancellation(
        reference=new_reference(),
        account_id=subscription.account_id,
        subscription_id=subscription.id,
        received_at=at,
        ends_at=ends_at,
        channel=channel,
        actor=actor,
        declaration=declaration,
    )
    while not uow.cancellations.add(cancellation):
        cancellation = replace(cancellation, reference=new_reference())
    return cancellation


def announce_turn_off(
    uow: UnitOfWork,
    account: Account,
    subscription: Subscription,
    cancellation: Cancellation,
    now: datetime,
    *,
    email_key: str = "auto_renew_off",
    charge_in_flight: str | None = None,
    **facts: Any,
) -> bool:
    """Queue the "auto-renew is off" confirmation to the account's own address; once per
    `email_key` and reference (False when it was queued before)."""
    return enqueue(
        uow,
        AUTO_RENEW_OFF,
        account,
        now,
        dedupe_key=f"{email_key}:{cancellation.reference}",
        reference=cancellation.reference,
        product=subscription.product_name,
        plan=subscription.plan_name,
        received_at=now.isoformat(),
        ends_at=cancellation.ends_at.isoformat(),
        charge_in_flight=charge_in_flight,
        subscription_path=f"/account/subscriptions/{subscription.id}",
        confirmation_path=f"/account/cancellations/{cancellation.reference}",
        **facts,
    )


def turn_on_auto_renew(
    uow: UnitOfWork,
    clock: Clock,
    *,
    account_id: int,
    subscription_id: int,
    actor: str,
    channel: str,
    reason: str | None = None,
) -> Subscription:
    """Undo a turn-off while the paid period lasts. Once off, it stays off until this."""
    with uow.write():
        subscription = uow.subscriptions.get(account_id, subscription_id, lock=True)
        account = uow.accounts.get(account_id)
        if subscription is None or account is None:
            raise NotFound("There is no such subscription on your account.")
        now = clock.now()
        before = _snapshot(subscription)
        if not subscription.turn_on_auto_renew(now):
            return subscription
        cancellation = uow.cancellations.open_for(subscription.id)
        if cancellation is not None:
            uow.cancellations.reverse(cancellation.reference, now)
        uow.subscriptions.save(subscription)
        audit.record(
            uow,
            actor=actor,
            channel=channel,
            action=f"{channel}:subscription:auto_renew_on",
            subject=f"subscription:{subscription.id}",
            account_id=account_id,
            at=now,
            before=before,
            after=_snapshot(subscription),
            reason=reason,
        )
        enqueue(
            uow,
            AUTO_RENEW_ON,
            account,
            now,
            dedupe_key=f"auto_renew_on:{subscription.id}:{now.isoformat()}",
            product=subscription.product_name,
            plan=subscription.plan_name,
            price=subscription.price.plain(),
            renews_at=subscription.ends_at.isoformat(),
            subscription_path=f"/account/subscriptions/{subscription.id}",
        )
        uow.commit()
    return subscription
