"""The outside world as the services see it. Adapters implement these; tests fake them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Protocol, Self

from fairsub.domain.accounts import Account
from fairsub.domain.audit import AuditEntry
from fairsub.domain.cancellations import Cancellation
from fairsub.domain.catalog import Catalog
from fairsub.domain.money import Money
from fairsub.domain.subscriptions import PaymentMethod, Reseller, Subscription
from fairsub.services.ports.billing import (
    AttemptAnswer,
    BillingRepository,
    CaseRepository,
    DueRenewal,
    Dunning,
    PricingRepository,
    RefundRepository,
    ReminderRepository,
)
from fairsub.services.ports.payments import (
    CardDetails,
    ChargeResult,
    GatewayLedgerEntry,
    GatewayRefusedCredentials,
    GatewayTimeout,
    GatewayUnavailable,
    PaymentGateway,
    RefundResult,
    StoredCard,
)

__all__ = [
    "AccountRepository",
    "AttemptAnswer",
    "AuditLog",
    "BillingRepository",
    "CancellationRepository",
    "CardDetails",
    "CaseRepository",
    "CatalogRepository",
    "ChargeResult",
    "Clock",
    "ConsentRecord",
    "ConsentRepository",
    "DueRenewal",
    "Dunning",
    "EmailMessage",
    "GatewayLedgerEntry",
    "GatewayRefusedCredentials",
    "GatewayTimeout",
    "GatewayUnavailable",
    "Mailer",
    "NewSubscription",
    "Outbox",
    "OutboxMessage",
    "PasswordHasher",
    "PasswordResetRepository",
    "PaymentGateway",
    "PaymentMethodRepository",
    "PricingRepository",
    "RefundRepository",
    "RefundResult",
    "ReminderRepository",
    "SessionRepository",
    "SignInAttemptRepository",
    "StoredCard",
    "SubscriptionRepository",
    "UnitOfWork",
    "UnitOfWorkFactory",
    "WebSession",
]


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
    # When the use case queued it, by fairsub's Clock: the email's Date, so that under the
    # test clock a mailbox dates each email on the same day its body speaks of.
    written_at: datetime


class Mailer(Protocol):
    def deliver(self, messages: Sequence[EmailMessage]) -> list[Exception | None]:
        """Deliver each message, in order, and say for each: None, delivered, or the error
        that kept it back. The outbox relay decides about retries. A batch may go over one
        connection to the mail server."""
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
    def get_many(self, account_ids: Iterable[int]) -> dict[int, Account]: ...
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
    def get_with_account(self, token_hash: str) -> tuple[WebSession, Account] | None:
        """The session and the account it signs in, in one read (every portal page)."""
        ...

    def touch(self, token_hash: str, at: datetime) -> None: ...
    def shift(self, token_hash: str, by: timedelta) -> None:
        """Move the session's start and last use by `by` (the test clock moved on)."""
        ...

    def delete(self, token_hash: str) -> None: ...
    def delete_for_account(self, account_id: int) -> None: ...


class SignInAttemptRepository(Protocol):
    def take_turn(self, email: str, address: str) -> None:
        """Wait, until this transaction ends, for any other attempt on the same email or
        from the same address to finish, so that each sees the attempts before it."""
        ...

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

    def made_since(self, account_id: int, since: datetime) -> int:
        """How many reset links were made for the account since then."""
        ...


class SubscriptionRepository(Protocol):
    def for_account(self, account_id: int) -> list[Subscription]: ...
    def get(
        self, account_id: int, subscription_id: int, *, lock: bool = False
    ) -> Subscription | None: ...
    def save(self, subscription: Subscription) -> None: ...
    def save_many(self, subscriptions: Sequence[Subscription]) -> None: ...
    def lock_many(self, subscription_ids: Iterable[int]) -> dict[int, Subscription]:
        """The subscriptions, locked for this transaction in id order (the order every
        billing transaction locks in, so none deadlocks another on PostgreSQL)."""
        ...

    def lock_versions(self, subscription_ids: Iterable[int]) -> dict[int, int]:
        """id -> version of each subscription, locked as lock_many locks them. Every
        change to what the domain sees of a subscription (save) raises its version."""
        ...

    def add(self, new: NewSubscription) -> int: ...
    def by_id(self, subscription_id: int) -> Subscription | None:
        """Any account's subscription, for operator tools (the CLI); never for the portal."""
        ...


class CancellationRepository(Protocol):
    def add(self, cancellation: Cancellation) -> bool:
        """Store it; False, and nothing stored, when its reference is already taken."""
        ...

    def open_for(self, subscription_id: int) -> Cancellation | None:
        """The cancellation in force (not reversed) for this subscription, if any."""
        ...

    def by_reference(self, account_id: int, reference: str) -> Cancellation | None: ...

    def taken(self, reference: str) -> bool: ...
    def reverse(self, reference: str, at: datetime) -> None: ...
    def correct_end(self, reference: str, ends_at: datetime) -> None:
        """The service ended earlier than the cancellation said (its last renewal failed)."""
        ...


class AuditLog(Protocol):
    def append(self, entry: AuditEntry) -> int: ...
    def append_many(self, entries: Sequence[AuditEntry]) -> None: ...
    def verify(self, progress: Callable[[int], None] | None = None) -> int | None:
        """The seq of the first entry whose hash does not match, or None if intact."""
        ...

    def count(self) -> int: ...


class Outbox(Protocol):
    def add(self, message: OutboxMessage, at: datetime) -> bool:
        """False when a message with the same dedupe key is already there."""
        ...

    def add_many(self, messages: Sequence[OutboxMessage], at: datetime) -> None:
        """Queue each message unless its dedupe key is already there."""
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

    def paying(self, account_id: int) -> set[int]:
        """The ids of the account's cards that a subscription still running is charged to."""
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
    A read block never writes (on PostgreSQL it may run outside a transaction, each
    query seeing what was committed when it started, as READ COMMITTED does anyway).
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


class UnitOfWorkFactory(Protocol):
    """Hands out a fresh unit of work per call."""

    @property
    def embedded(self) -> bool:
        """Whether the database runs inside this process (SQLite): its work then takes
        this process's CPU, where a server's (PostgreSQL) leaves the thread waiting."""
        ...

    def __call__(self) -> UnitOfWork: ...
