"""Announcing price changes, telling subscribers in time, and pricing renewals (C23).

The rule itself is in domain.pricing. Here: the operator's announcement (at least seven
days out, audited), the worker step that queues each subscriber's notice 30 to 8 days
before the first renewal at the higher price, and the price the billing run invoices.
The notice's outbox row is the proof it was sent: its dedupe key names the change and
the subscription, so it is queued once, and the billing run reads when.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from fairsub.domain.errors import InvalidInput, NotFound
from fairsub.domain.money import Money
from fairsub.domain.periods import Period, Term
from fairsub.domain.pricing import (
    PriceChange,
    notice_key,
    notice_raises_price,
    notice_send_window,
    price_after_changes,
    require_notice_period,
    require_valid_price,
)
from fairsub.domain.subscriptions import Subscription
from fairsub.services import audit
from fairsub.services.notifications import PRICE_INCREASE_NOTICE, enqueue
from fairsub.services.ports import Clock, DueRenewal, UnitOfWork, UnitOfWorkFactory

FREQUENCY = {Term.MONTH: "monthly", Term.YEAR: "yearly"}


def announce_price_change(
    uows: UnitOfWorkFactory,
    clock: Clock,
    plan_code: str,
    region: str,
    new_price: Money,
    effective_from: datetime,
    *,
    actor: str = "operator",
    channel: str = "cli",
) -> PriceChange:
    """Record a new price for a plan in a region from `effective_from` (>= 7 days out).
    Announcing the same change again returns the one already recorded."""
    now = clock.now()
    require_valid_price(new_price)
    require_notice_period(now, effective_from)
    with uows().write() as uow:
        current = uow.pricing.list_price(plan_code, region)
        if current is None:
            raise NotFound(f"Plan {plan_code!r} is not sold in region {region!r}.")
        if new_price.currency != current.currency:
            raise InvalidInput(
                f"Prices in region {region} are in {current.currency}, not {new_price.currency}."
            )
        existing = uow.pricing.change_at(plan_code, region, effective_from)
        if existing is not None:
            if existing.new_price != new_price:
                raise InvalidInput(
                    f"A different price for {plan_code} in {region} from that date is already "
                    "announced; announce another date instead."
                )
            return existing
        change = uow.pricing.add_change(
            plan_code=plan_code,
            region=region,
            new_price=new_price,
            effective_from=effective_from,
            announced_at=now,
        )
        audit.record(
            uow,
            actor=actor,
            channel=channel,
            action=f"{channel}:price:announced",
            subject=f"price_change:{change.id}",
            account_id=None,
            at=now,
            before={"price": current.plain()},
            after={
                "plan": plan_code,
                "region": region,
                "price": new_price.plain(),
                "effective_from": effective_from.isoformat(),
            },
        )
        uow.commit()
    return change


def renewal_prices(
    uow: UnitOfWork, renewals: Sequence[DueRenewal], periods: dict[int, Period]
) -> dict[int, Money]:
    """The price of each renewal's next period, inside the caller's transaction: the
    subscription's price with every change in effect that the subscriber was told of."""
    changes = uow.pricing.changes_for([r.subscription_id for r in renewals])
    return {
        r.subscription_id: price_after_changes(
            r.price, changes.get(r.subscription_id, []), periods[r.subscription_id].start
        )
        for r in renewals
    }


def send_due_price_notices(uows: UnitOfWorkFactory, clock: Clock, *, batch: int = 500) -> int:
    """Queue the notice of every announced increase to each subscriber whose first renewal
    at the higher price is 8 to 30 days away. Returns how many were queued."""
    now = clock.now()
    renewals = notice_send_window(now)
    with uows().read() as uow:
        changes = uow.pricing.changes_effective_by(renewals[1])
    queued = 0
    for change in changes:
        after = 0
        while True:
            with uows().write() as uow:
                found = uow.pricing.notice_candidates(change, renewals, after_id=after, limit=batch)
                queued += _notify(uow, change, found, now)
                uow.commit()
            if len(found) < batch:
                break
            after = found[-1].id
    return queued


def _notify(uow: UnitOfWork, change: PriceChange, found: list[Subscription], now: datetime) -> int:
    noticed = uow.pricing.changes_for([s.id for s in found])
    queued = 0
    for sub in found:
        renewal_at = sub.period.end
        old, new = notice_raises_price(sub.price, noticed.get(sub.id, []), change, renewal_at, now)
        if not old < new:
            continue
        account = uow.accounts.get(sub.account_id)
        if account is None:  # pragma: no cover - a subscription has its account
            continue
        if enqueue(
            uow,
            PRICE_INCREASE_NOTICE,
            account,
            now,
            dedupe_key=notice_key(change.id, sub.id),
            product=sub.product_name,
            plan=sub.plan_name,
            old_amount=old.plain(),
            new_amount=new.plain(),
            frequency=FREQUENCY[sub.term],
            effective_on=renewal_at.isoformat(),
            subscription_path=f"/account/subscriptions/{sub.id}",
            turn_off_path=f"/account/subscriptions/{sub.id}/turn-off",
        ):
            queued += 1
    return queued
