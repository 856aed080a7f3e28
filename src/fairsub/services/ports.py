"""The outside world as the services see it. Adapters implement these; tests fake them."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self

from fairsub.domain.accounts import Account
from fairsub.domain.audit import AuditEntry
from fairsub.domain.billing import (
    AttemptStatus,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    PaymentAttempt,
)
from fairsub.domain.cancellations import Cancellation
from fairsub.domain.catalog import Catalog
from fairsub.domain.charge_cases import CaseReason, CaseStatus, CaseSummary, ChargeCase
from fairsub.domain.money import Money
from fairsub.domain.periods import Period, Term
from fairsub.domain.pricing import NoticedChange, PriceChange
from fairsub.domain.refunding import Refund, RefundKind
from fairsub.domain.subscriptions import PaymentMethod, Reseller, Subscription


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class PasswordHasher(Protocol):
    def hash(self, password: str) -> str: ...
    def verify(self, stored: str, password: str) -> bool: ...
    def needs_rehash(self, stored: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class EmailMessage:
    to: str
    subject: str
    text: str
    html: str
    message_id: str


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None:
        """Deliver or raise. The outbox relay decides about retries."""
        ...


@dataclass(frozen=True, slots=True)
class WebSession:
    token_hash: str
    account_id: int
    created_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    kind: str
    recipient: str
    account_id: int | None
    payload: dict[str, Any]
    dedupe_key: str


@dataclass(frozen=True, slots=True)
class NewSubscription:
    account_id: int
    plan_code: str
    region: str
    status: str
    auto_renew: bool
    price_minor: int
    currency: str
    started_at: datetime
    period_start: datetime
    period_end: datetime
    payment_method_id: int | None
    reseller: Reseller | None
    trial_ends_at: datetime | None = None


class AccountRepository(Protocol):
    def get(self, account_id: int) -> Account | None: ...
    def by_email(self, email: str) -> tuple[Account, str] | None:
        """The account and its stored password hash."""
        ...

    def add(
        self,
        email: str,
        name: str,
        password_hash: str,
        region: str,
        locale: str,
        timezone: str,
        created_at: datetime,
    ) -> Account: ...
    def set_password_hash(self, account_id: int, password_hash: str) -> None: ...
    def count(self) -> int: ...


class SessionRepository(Protocol):
    def add(self, session: WebSession) -> None: ...
    def get(self, token_hash: str) -> WebSession | None: ...
    def touch(self, token_hash: str, at: datetime) -> None: ...
    def delete(self, token_hash: str) -> None: ...
    def delete_for_account(self, account_id: int) -> None: ...


class SignInAttemptRepository(Protocol):
    def record(self, email: str, address: str, at: datetime, succeeded: bool) -> None: ...
    def failures_for_email(self, email: str, since: datetime) -> int: ...
    def failures_for_address(self, address: str, since: datetime) -> int: ...
    def clear_email(self, email: str) -> None: ...


class PasswordResetRepository(Protocol):
    def add(
        self, token_hash: str, account_id: int, created_at: datetime, expires_at: datetime
    ) -> None: ...
    def get(self, token_hash: str) -> tuple[int, datetime, datetime | None] | None:
        """(account_id, expires_at, used_at)"""
        ...

    def mark_used(self, token_hash: str, at: datetime) -> bool:
        """True only for the call that used it first."""
        ...


class SubscriptionRepository(Protocol):
    def for_account(self, account_id: int) -> list[Subscription]: ...
    def get(
        self, account_id: int, subscription_id: int, *, lock: bool = False
    ) -> Subscription | None: ...
    def save(self, subscription: Subscription) -> None: ...
    def add(self, new: NewSubscription) -> int: ...
    def by_id(self, subscription_id: int) -> Subscription | None:
        """Any account's subscription, for operator tools (the CLI); never for the portal."""
        ...


class CancellationRepository(Protocol):
    def add(self, cancellation: Cancellation) -> None: ...
    def open_for(self, subscription_id: int) -> Cancellation | None:
        """The cancellation in force (not reversed) for this subscription, if any."""
        ...

    def by_reference(self, account_id: int, reference: str) -> Cancellation | None: ...

    def taken(self, reference: str) -> bool: ...
    def reverse(self, reference: str, at: datetime) -> None: ...


class AuditLog(Protocol):
    def append(self, entry: AuditEntry) -> int: ...
    def verify(self, progress: Callable[[int], None] | None = None) -> int | None:
        """The seq of the first entry whose hash does not match, or None if intact."""
        ...

    def count(self) -> int: ...


class Outbox(Protocol):
    def add(self, message: OutboxMessage, at: datetime) -> bool:
        """False when a message with the same dedupe key is already there."""
        ...


class CatalogRepository(Protocol):
    def store(self, catalog: Catalog) -> None:
        """Insert or update products, plans and prices; never deletes what was sold."""
        ...


class PaymentMethodRepository(Protocol):
    def add(self, account_id: int, card: StoredCard, gateway: str, created_at: datetime) -> int: ...

    def for_account(self, account_id: int) -> list[tuple[int, PaymentMethod, str]]:
        """(id, brand and last 4, expiry) of the cards on file, newest first."""
        ...

    def use_for_subscriptions(self, account_id: int, payment_method_id: int) -> list[int]:
        """Point every direct subscription of the account at this card; returns their ids."""
        ...

    def token_of(self, account_id: int, payment_method_id: int) -> str | None:
        """The gateway's token for this account's card; None if it is not theirs."""
        ...


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """What a customer agreed to at checkout, and the facts to prove it (C17)."""

    account_id: int
    subscription_id: int | None
    at: datetime
    address: str
    user_agent: str
    terms_version: str
    price: Money
    auto_renew: bool
    disclosure: str
    # C27, two separate unticked boxes (withdrawal regions only): start at once, and pay
    # for the days used on withdrawal. Without both, a withdrawal is refunded in full.
    immediate_start: bool = False
    withdrawal_right_waived: bool = False

    @property
    def waived_full_withdrawal_refund(self) -> bool:
        return self.immediate_start and self.withdrawal_right_waived


class ConsentRepository(Protocol):
    def add(self, consent: ConsentRecord) -> int: ...
    def for_subscription(self, account_id: int, subscription_id: int) -> ConsentRecord | None: ...


class UnitOfWork(Protocol):
    """One transaction. `with uow.write():` for changes, `with uow.read():` for queries.

    Nothing is written unless `commit()` is called; leaving the block rolls back.
    Callbacks registered with `after_commit` run only once the commit succeeded.
    """

    accounts: AccountRepository
    sessions: SessionRepository
    sign_in_attempts: SignInAttemptRepository
    password_resets: PasswordResetRepository
    subscriptions: SubscriptionRepository
    cancellations: CancellationRepository
    audit: AuditLog
    outbox: Outbox
    catalog: CatalogRepository
    payment_methods: PaymentMethodRepository
    billing: BillingRepository
    refunds: RefundRepository
    reminders: ReminderRepository
    pricing: PricingRepository
    consents: ConsentRepository
    cases: CaseRepository

    def read(self) -> Self: ...
    def write(self) -> Self: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    def commit(self) -> None: ...
    def after_commit(self, callback: Callable[[], None]) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]


@dataclass(frozen=True, slots=True)
class DueRenewal:
    """A subscription a worker has claimed for charging its next period (or retrying)."""

    subscription_id: int
    account_id: int
    status: str
    anchor: datetime
    period: Period
    term: Term
    price: Money
    failed_attempts: int
    payment_method_id: int | None
    payment_token: str | None


class BillingRepository(Protocol):
    def claim_due(self, now: datetime, limit: int, lease_until: datetime) -> list[DueRenewal]: ...
    def release(self, subscription_id: int) -> None: ...
    def take_invoice_numbers(self, count: int) -> int: ...
    def invoice_for(self, subscription_id: int, period_start: datetime) -> Invoice | None: ...
    def get_invoice(self, invoice_id: int) -> Invoice | None: ...
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
    def set_invoice_status(
        self, invoice_id: int, status: InvoiceStatus, at: datetime | None = None
    ) -> None: ...
    def open_invoice_for(self, subscription_id: int) -> Invoice | None: ...
    def attempts_made(self, invoice_id: int) -> int: ...
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
    def settle_attempt(
        self,
        attempt_id: int,
        status: AttemptStatus,
        at: datetime,
        *,
        gateway_ref: str | None = None,
        decline_reason: str | None = None,
    ) -> bool: ...
    def in_flight(self, subscription_id: int) -> PaymentAttempt | None: ...
    def unsettled(self, now: datetime, limit: int) -> list[PaymentAttempt]: ...
    def get_attempt(self, attempt_id: int) -> PaymentAttempt | None: ...
    def set_dunning(
        self, subscription_id: int, failed_attempts: int, next_retry_at: datetime | None
    ) -> None: ...
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


# --- Payments -------------------------------------------------------------------------


class GatewayUnavailable(Exception):
    """The gateway refused before doing anything: safe to try again with the same key."""


class GatewayTimeout(Exception):
    """The answer was lost: the charge may or may not have happened. Ask with `lookup`."""


@dataclass(frozen=True, slots=True)
class CardDetails:
    """What a customer types. Only the gateway ever sees the number."""

    number: str
    exp_month: int
    exp_year: int
    cvc: str


@dataclass(frozen=True, slots=True)
class StoredCard:
    token: str
    brand: str
    last4: str
    expires: str  # "MM/YYYY"


@dataclass(frozen=True, slots=True)
class ChargeResult:
    idempotency_key: str
    succeeded: bool
    gateway_ref: str | None
    amount: Money
    decline_reason: str | None = None


@dataclass(frozen=True, slots=True)
class RefundResult:
    idempotency_key: str
    succeeded: bool
    gateway_ref: str | None
    amount: Money
    failure_reason: str | None = None


@dataclass(frozen=True, slots=True)
class GatewayLedgerEntry:
    """One money movement as the gateway recorded it, for reconciliation."""

    kind: str  # "charge" or "refund"
    idempotency_key: str
    amount: Money
    succeeded: bool
    gateway_ref: str | None


class PaymentGateway(Protocol):
    name: str

    def store_card(self, card: CardDetails) -> StoredCard:
        """Validate and keep a card; raises InvalidInput for a number that cannot work."""
        ...

    def charge(
        self, idempotency_key: str, amount: Money, card_token: str, description: str
    ) -> ChargeResult:
        """Charge once per key: the same key returns the first answer, never a second charge.
        Raises GatewayUnavailable (nothing happened) or GatewayTimeout (unknown)."""
        ...

    def lookup_charge(self, idempotency_key: str) -> ChargeResult | None:
        """What happened to the charge with this key; None if the gateway never got it."""
        ...

    def refund(self, idempotency_key: str, charge_ref: str, amount: Money) -> RefundResult:
        """Refund (part of) a charge once per key, to the card it came from."""
        ...

    def ledger(self) -> Iterator[GatewayLedgerEntry]:
        """Every charge and refund the gateway holds, for `fairsub billing reconcile`."""
        ...
