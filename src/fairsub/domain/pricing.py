"""Price changes, and the price a renewal is charged (compliance C23).

The operator announces a new price for a plan in a region, effective from a date at least
seven days out. A subscriber pays a higher price only at a renewal on or after that date,
and only if a notice of it to this subscriber was queued at least seven days before that
renewal; otherwise the renewal is charged at the old price, and the notice comes before
a later renewal. A lower price needs no notice. The notice itself is sent 30 to 8 days
before the first renewal it affects, so it is never more than 30 days ahead and always at
least seven full days, in any reader's calendar.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from fairsub.domain.errors import InvalidInput
from fairsub.domain.money import Money

NOTICE_MIN = timedelta(days=7)  # C23: at least this long before the higher charge
NOTICE_MAX = timedelta(days=30)  # C23: and no earlier than this
SEND_BY = timedelta(days=8)  # the worker's last moment, a day inside the minimum


@dataclass(frozen=True, slots=True)
class PriceChange:
    id: int
    plan_code: str
    region: str
    new_price: Money
    effective_from: datetime
    announced_at: datetime


@dataclass(frozen=True, slots=True)
class NoticedChange:
    """A price change that applies to one subscription, and when its notice was queued."""

    change: PriceChange
    notice_sent_at: datetime | None


def notice_window(renewal_at: datetime) -> tuple[datetime, datetime]:
    """When a notice of a price rising at `renewal_at` may be sent (the legal window)."""
    return renewal_at - NOTICE_MAX, renewal_at - NOTICE_MIN


def notice_send_window(now: datetime) -> tuple[datetime, datetime]:
    """The renewals a notice queued at `now` may announce: 8 to 30 days ahead."""
    return now + SEND_BY, now + NOTICE_MAX


# The most a price may be: what a signed 64-bit integer of minor units holds, as stored.
MAX_PRICE_MINOR = 2**63 - 1


def require_valid_price(price: Money) -> None:
    if price.amount_minor < 0:
        raise InvalidInput("A price cannot be negative.")
    if price.amount_minor > MAX_PRICE_MINOR:
        raise InvalidInput(f"A price is at most {MAX_PRICE_MINOR} minor units.")


def require_notice_period(now: datetime, effective_from: datetime) -> None:
    if effective_from < now + NOTICE_MIN:
        raise InvalidInput(
            "A price change takes effect at least 7 days after it is announced, "
            "so that every customer can be told in time."
        )


def notice_key_prefix(change_id: int) -> str:
    return f"price-notice:{change_id}:"


def notice_key(change_id: int, subscription_id: int) -> str:
    """The outbox dedupe key of the notice: one notice per change and subscription."""
    return f"{notice_key_prefix(change_id)}{subscription_id}"


def price_for_renewal(
    old: Money, change: PriceChange | None, notice_sent_at: datetime | None, renewal_at: datetime
) -> Money:
    """What a renewal at `renewal_at` costs, given one price change and its notice."""
    if change is None or renewal_at < change.effective_from:
        return old
    new = change.new_price
    if new.currency != old.currency:
        return old  # a change for another currency is not this subscriber's price
    if new <= old:
        return new  # a cut needs no notice
    if notice_sent_at is not None and notice_sent_at <= renewal_at - NOTICE_MIN:
        return new
    return old


def price_after_changes(
    old: Money, changes: Iterable[NoticedChange], renewal_at: datetime
) -> Money:
    """Apply every change in effect at `renewal_at`, oldest first. An increase without a
    timely notice is skipped, so the subscriber keeps the last price they were told of."""
    price = old
    ordered = sorted(changes, key=lambda n: (n.change.effective_from, n.change.id))
    for noticed in ordered:
        price = price_for_renewal(price, noticed.change, noticed.notice_sent_at, renewal_at)
    return price


def notice_raises_price(
    old: Money,
    changes: Iterable[NoticedChange],
    change: PriceChange,
    renewal_at: datetime,
    now: datetime,
) -> tuple[Money, Money]:
    """(price at `renewal_at` without a notice of `change`, price with one sent `now`).
    The notice is owed when the second is higher."""
    others = [n for n in changes if n.change.id != change.id]
    without = price_after_changes(old, [*others, NoticedChange(change, None)], renewal_at)
    with_notice = price_after_changes(old, [*others, NoticedChange(change, now)], renewal_at)
    return without, with_notice
