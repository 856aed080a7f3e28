"""Invoices and payment attempts: what we asked for, and what the gateway answered.

A period is charged at most once (invariant 2): one invoice per subscription and period
start (a unique constraint), and at most one succeeded attempt per invoice. Each attempt
has an idempotency key derived from (subscription, period start, attempt number); an
attempt whose answer was lost is settled by asking the gateway about the same key, never
by charging under a new one. A new attempt number is used only after a definite decline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from fairsub.domain.money import Money


class InvoiceKind(StrEnum):
    PURCHASE = "purchase"
    RENEWAL = "renewal"


class InvoiceStatus(StrEnum):
    OPEN = "open"  # being charged, or waiting for a dunning retry
    PAID = "paid"
    VOID = "void"  # never collected: the subscription ended first


class AttemptStatus(StrEnum):
    SENDING = "sending"  # committed before the gateway call; outcome not yet recorded
    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    UNKNOWN = "unknown"  # the gateway's answer was lost; the janitor asks again


SETTLED = frozenset({AttemptStatus.SUCCEEDED, AttemptStatus.DECLINED})


def idempotency_key(subscription_id: int, period_start: datetime, attempt_no: int) -> str:
    """The same for every try of one attempt, so the gateway charges it at most once. It
    begins with the period's start: renewals come due in that order, so new keys sort
    after the old ones and their unique index grows at one end."""
    return f"fs-{period_start:%Y%m%dT%H%M%SZ}-{subscription_id}-{attempt_no}"


@dataclass(frozen=True, slots=True)
class Invoice:
    id: int
    number: int
    account_id: int
    subscription_id: int
    kind: InvoiceKind
    period_start: datetime
    period_end: datetime
    amount: Money
    status: InvoiceStatus
    created_at: datetime
    paid_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PaymentAttempt:
    id: int
    account_id: int
    invoice_id: int
    subscription_id: int
    attempt_no: int
    idempotency_key: str
    amount: Money
    payment_token: str
    status: AttemptStatus
    created_at: datetime
    gateway_ref: str | None = None
    decline_reason: str | None = None
    payment_method_id: int | None = None  # the card on file it was charged to


@dataclass(frozen=True, slots=True)
class DunningPolicy:
    """After a failed renewal: retry after each delay, then expire when grace runs out."""

    retry_after: tuple[timedelta, ...] = (timedelta(days=1), timedelta(days=3), timedelta(days=7))
    grace: timedelta = timedelta(days=14)

    def next_retry(
        self, period_end: datetime, failures: int, failed_at: datetime | None = None
    ) -> datetime | None:
        """When to try again after `failures` declines, or None when it is time to give up.

        On schedule the retries fall 1, 3 and 7 days after the period's end; a failure
        noticed late (the worker was down) still leaves at least the first delay before
        the next try, so a late run never spends every retry at once."""
        if failures > len(self.retry_after):
            return None
        when = period_end + self.retry_after[failures - 1]
        if failed_at is not None:
            when = max(when, failed_at + self.retry_after[0])
        return when if when < period_end + self.grace else None
