"""Ports for billing, reminders, pricing, refunds and charge cases."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from fairsub.domain.accounts import Account
from fairsub.domain.billing import (
    AttemptStatus,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    PaymentAttempt,
)
from fairsub.domain.cancellations import Cancellation
from fairsub.domain.charge_cases import CaseReason, CaseStatus, CaseSummary, ChargeCase
from fairsub.domain.money import Money
from fairsub.domain.periods import Period
from fairsub.domain.pricing import NoticedChange, PriceChange
from fairsub.domain.refunding import Refund, RefundKind
from fairsub.domain.subscriptions import Subscription


@dataclass(frozen=True, slots=True)
class DueRenewal:
    """A subscription a worker has claimed for charging its next period (or retrying),
    with all that charging it and recording the answer need: the subscription as claimed
    and its version (recording the answer reads it again only if the version changed in
    between), its customer (for the receipt) and the card to charge."""

    subscription: Subscription
    version: int
    account: Account
    failed_attempts: int
    payment_method_id: int | None
    payment_token: str | None

    @property
    def subscription_id(self) -> int:
        return self.subscription.id

    @property
    def account_id(self) -> int:
        return self.subscription.account_id

    @property
    def price(self) -> Money:
        return self.subscription.price

    @property
    def anchor(self) -> datetime:
        """What renewal periods are counted from: the end of the trial, or the start."""
        return self.subscription.trial_ends_at or self.subscription.started_at


@dataclass(frozen=True, slots=True)
class AttemptAnswer:
    """The gateway's answer for one payment attempt, as the ledger records it."""

    attempt_id: int
    status: AttemptStatus
    gateway_ref: str | None = None
    decline_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Dunning:
    """Where a subscription stands in dunning; writing it also ends a worker's lease."""

    failed_attempts: int
    next_retry_at: datetime | None


class BillingRepository(Protocol):
    """The ledger (invoices, payment attempts) and the renewal queue.

    The batch methods (plural names) are what the billing run uses, one statement per
    batch; the singular ones are the same operations for one row."""

    def claim_due(self, now: datetime, limit: int, lease_until: datetime) -> list[DueRenewal]: ...
    def release(self, subscription_id: int) -> None: ...
    def release_many(self, subscription_ids: Iterable[int]) -> None: ...
    def take_invoice_numbers(self, count: int) -> int: ...
    def invoice_for(self, subscription_id: int, period_start: datetime) -> Invoice | None: ...
    def invoices_for(self, period_starts: Mapping[int, datetime]) -> dict[int, Invoice]:
        """subscription id -> its invoice for the period starting then, where one exists."""
        ...

    def get_invoice(self, invoice_id: int) -> Invoice | None: ...
    def get_invoices(self, invoice_ids: Iterable[int]) -> dict[int, Invoice]: ...
    def add_invoice(
        self,
        *,
        number: int,
        account_id: int,
        subscription_id: int,
        kind: InvoiceKind,
        period: Period,
        amount: Money,
        at: datetime,
    ) -> Invoice: ...
    def add_invoices(self, drafts: Sequence[Invoice]) -> list[Invoice]:
        """Insert invoices (their `id` is ignored); returns them with ids, in order."""
        ...

    def set_invoice_status(
        self, invoice_id: int, status: InvoiceStatus, at: datetime | None = None
    ) -> None: ...
    def set_invoice_statuses(
        self, changes: Sequence[tuple[int, InvoiceStatus]], at: datetime | None
    ) -> None:
        """Paid invoices get `at` as their paid time."""
        ...

    def open_invoice_for(self, subscription_id: int) -> Invoice | None: ...
    def attempt_counts(self, invoice_ids: Iterable[int]) -> dict[int, int]:
        """invoice id -> attempts made on it (invoices without any are left out)."""
        ...

    def add_attempt(
        self,
        *,
        invoice: Invoice,
        attempt_no: int,
        key: str,
        payment_method_id: int | None,
        payment_token: str,
        at: datetime,
    ) -> PaymentAttempt: ...
    def add_attempts(self, drafts: Sequence[PaymentAttempt]) -> list[PaymentAttempt]:
        """Insert attempts (their `id` is ignored); returns them with ids, in order."""
        ...

    def settle_attempt(
        self,
        attempt_id: int,
        status: AttemptStatus,
        at: datetime,
        *,
        gateway_ref: str | None = None,
        decline_reason: str | None = None,
    ) -> bool: ...
    def settle_attempts(self, answers: Sequence[AttemptAnswer], at: datetime) -> set[int]:
        """Record each answer once; returns the ids recorded now (not settled before)."""
        ...

    def in_flight(self, subscription_id: int) -> PaymentAttempt | None: ...
    def unsettled(self, now: datetime, limit: int) -> list[PaymentAttempt]: ...
    def get_attempt(self, attempt_id: int) -> PaymentAttempt | None: ...
    def set_dunning(
        self, subscription_id: int, failed_attempts: int, next_retry_at: datetime | None
    ) -> None: ...
    def save_with_dunning(self, changes: Sequence[tuple[Subscription, Dunning]]) -> None:
        """Each subscription with its dunning state, in one statement; ends the lease."""
        ...

    def ending(self, now: datetime, grace_cutoff: datetime, limit: int) -> list[tuple[int, int]]:
        """(subscription id, account id) of subscriptions to expire now."""
        ...

    def lease(self, subscription_id: int, until: datetime) -> None:
        """Keep workers and the janitor off this subscription until then (a purchase's
        charge is in flight from the portal)."""
        ...

    def retry_past_due_now(self, account_id: int, now: datetime) -> list[int]:
        """Make every past-due direct subscription of the account due for a retry now;
        returns their ids."""
        ...

    def due_count(self, now: datetime) -> int: ...
    def statement(self, account_id: int) -> list[tuple[Invoice, list[PaymentAttempt]]]: ...
    def ledger(self, batch: int = 5000) -> Iterator[PaymentAttempt]: ...


# --- Reminders and price changes --------------------------------------------------------


class ReminderRepository(Protocol):
    def candidates(
        self,
        *,
        renewals: tuple[datetime, datetime],
        trial_ends: tuple[datetime, datetime],
        half_anniversaries: tuple[datetime, datetime],
        after_id: int,
        limit: int,
    ) -> list[Subscription]:
        """Direct, auto-renewing, active or trialing subscriptions with id > after_id, in id
        order, that may owe a reminder now: annual ones renewing within `renewals`, trialing
        ones whose trial ends within `trial_ends`, monthly ones whose start may have a
        half-anniversary within `half_anniversaries`. A superset: the domain decides."""
        ...


class PricingRepository(Protocol):
    def list_price(self, plan_code: str, region: str) -> Money | None:
        """The catalog price of the plan in the region; None if not sold there."""
        ...

    def change_at(
        self, plan_code: str, region: str, effective_from: datetime
    ) -> PriceChange | None: ...
    def add_change(
        self,
        *,
        plan_code: str,
        region: str,
        new_price: Money,
        effective_from: datetime,
        announced_at: datetime,
    ) -> PriceChange: ...
    def changes_effective_by(self, moment: datetime) -> list[PriceChange]:
        """Every change with effective_from <= moment, oldest first."""
        ...

    def notice_candidates(
        self, change: PriceChange, renewals: tuple[datetime, datetime], *, after_id: int, limit: int
    ) -> list[Subscription]:
        """Direct, auto-renewing, active or trialing subscriptions to the change's plan in its
        region, id > after_id in id order, renewing within `renewals` and not before the
        change is effective, paying less than the new price, and not yet sent its notice."""
        ...

    def changes_for(self, subscription_ids: Sequence[int]) -> dict[int, list[NoticedChange]]:
        """For each subscription, every change to its plan and region, with when its
        notice of that change was queued (None if it never was)."""
        ...


class RefundRepository(Protocol):
    def add(
        self,
        *,
        account_id: int,
        subscription_id: int,
        invoice_id: int,
        charge_attempt_id: int,
        key: str,
        amount: Money,
        kind: RefundKind,
        reason: str,
        reference: str | None,
        at: datetime,
    ) -> Refund: ...
    def get(self, refund_id: int) -> Refund | None: ...
    def for_charge(self, charge_attempt_id: int) -> list[Refund]: ...
    def refunded_amount(self, charge_attempt_id: int, currency: str) -> Money:
        """What has left, or may have left, for this charge: all but failed refunds."""
        ...

    def for_account(self, account_id: int) -> list[Refund]: ...
    def record_sent(
        self,
        refund_id: int,
        at: datetime,
        gateway_ref: str | None,
        arrives_from: datetime,
        arrives_by: datetime,
    ) -> bool: ...
    def record_failed(self, refund_id: int, reason: str) -> bool: ...
    def record_unknown(self, refund_id: int) -> None: ...
    def unsettled(self, older_than: datetime, limit: int) -> list[Refund]: ...
    def mark_arrived(self, now: datetime) -> int: ...


class CaseRepository(Protocol):
    """Charge cases ("I don't recognise this charge") and the evidence they are judged on."""

    def add(
        self,
        *,
        reference: str,
        account_id: int,
        charge_attempt_id: int,
        reason: CaseReason,
        note: str,
        opened_at: datetime,
    ) -> ChargeCase:
        """A new open case."""
        ...

    def get(self, case_id: int) -> ChargeCase | None: ...
    def by_reference(self, account_id: int, reference: str) -> ChargeCase | None: ...
    def for_charge(self, charge_attempt_id: int) -> list[ChargeCase]:
        """Every case about this charge, oldest first."""
        ...

    def taken(self, reference: str) -> bool: ...
    def resolve(
        self,
        case_id: int,
        *,
        status: CaseStatus,
        at: datetime,
        by: str,
        note: str,
        refund_id: int | None = None,
        alert: bool = False,
    ) -> bool:
        """Close an open case; False if it was not open (someone resolved it first)."""
        ...

    def summaries(
        self,
        *,
        account_id: int | None = None,
        status: CaseStatus | None = None,
        alerts_only: bool = False,
        reference: str | None = None,
    ) -> list[CaseSummary]:
        """Cases with their charge and customer, newest first, filtered as asked."""
        ...

    def turn_offs(self, subscription_id: int) -> list[Cancellation]:
        """Every turn-off of this subscription ever committed, reversed ones included."""
        ...
