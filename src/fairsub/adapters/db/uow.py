"""The SQL unit of work: one connection, one transaction, repositories bound to it."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Self

from sqlalchemy import Connection, Engine

from fairsub.adapters.db.accounts import (
    SqlAccounts,
    SqlPasswordResets,
    SqlSessions,
    SqlSignInAttempts,
)
from fairsub.adapters.db.audit import SqlAuditLog
from fairsub.adapters.db.billing import SqlBilling
from fairsub.adapters.db.cases import SqlCases
from fairsub.adapters.db.consents import SqlConsents
from fairsub.adapters.db.engine import WRITE_OPTION, WriteGate, is_sqlite
from fairsub.adapters.db.outbox import SqlOutbox
from fairsub.adapters.db.pricing import SqlPricing
from fairsub.adapters.db.refunds import SqlRefunds
from fairsub.adapters.db.reminders import SqlReminders
from fairsub.adapters.db.subscriptions import (
    SqlCancellations,
    SqlCatalog,
    SqlPaymentMethods,
    SqlSubscriptions,
)
from fairsub.services.ports import (
    AccountRepository,
    AuditLog,
    BillingRepository,
    CancellationRepository,
    CaseRepository,
    CatalogRepository,
    ConsentRepository,
    Outbox,
    PasswordResetRepository,
    PaymentMethodRepository,
    PricingRepository,
    RefundRepository,
    ReminderRepository,
    SessionRepository,
    SignInAttemptRepository,
    SubscriptionRepository,
)


class SqlUnitOfWork:
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

    def __init__(
        self, engine: Engine, gate: WriteGate, on_commit: Callable[[], None] | None = None
    ) -> None:
        self._engine = engine
        self._gate = gate
        self._on_commit = on_commit
        self._write = False
        self._connection: Connection | None = None
        self._callbacks: list[Callable[[], None]] = []
        self._committed = False

    def read(self) -> Self:
        self._write = False
        return self

    def write(self) -> Self:
        self._write = True
        return self

    @property
    def connection(self) -> Connection:
        if self._connection is None:
            raise RuntimeError("use the unit of work inside a with block")
        return self._connection

    def __enter__(self) -> Self:
        if self._connection is not None:
            raise RuntimeError("a unit of work is one transaction; it does not nest")
        if self._write:
            self._gate.acquire()
        try:
            connection = self._engine.connect()
            if self._write:
                connection = connection.execution_options(**{WRITE_OPTION: True})
            elif connection.dialect.name == "postgresql":
                # A read needs no transaction on PostgreSQL: under READ COMMITTED each
                # statement sees what was committed when it started, in a transaction or
                # not. Without one, a one-query read is one round trip instead of three
                # (BEGIN, query, ROLLBACK), and psycopg keeps its prepared statements,
                # which every ROLLBACK discards. So a read must never write.
                connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            connection.begin()
        except BaseException:
            if self._write:
                self._gate.release()
            raise
        self._connection = connection
        self._callbacks = []
        self._committed = False
        self.accounts = SqlAccounts(connection)
        self.sessions = SqlSessions(connection)
        self.sign_in_attempts = SqlSignInAttempts(connection)
        self.password_resets = SqlPasswordResets(connection)
        self.subscriptions = SqlSubscriptions(connection)
        self.cancellations = SqlCancellations(connection)
        self.audit = SqlAuditLog(connection)
        self._outbox = SqlOutbox(connection)
        self.outbox = self._outbox
        self.catalog = SqlCatalog(connection)
        self.payment_methods = SqlPaymentMethods(connection)
        self.billing = SqlBilling(connection)
        self.refunds = SqlRefunds(connection)
        self.reminders = SqlReminders(connection)
        self.pricing = SqlPricing(connection)
        self.consents = SqlConsents(connection)
        self.cases = SqlCases(connection)
        return self

    def commit(self) -> None:
        self.connection.commit()
        self._committed = True

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        connection, self._connection = self._connection, None
        try:
            if connection is not None:
                if not self._committed:
                    connection.rollback()
                connection.close()
        finally:
            if self._write:
                self._gate.release()
        if self._committed:
            for callback in self._callbacks:
                callback()
            if self._on_commit is not None and self._outbox.added:
                self._on_commit()


class SqlUnitOfWorkFactory:
    """Hands out fresh units of work; shares the engine and the write gate."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._gate = WriteGate(engine)
        self.on_commit: Callable[[], None] | None = None

    @property
    def embedded(self) -> bool:
        return is_sqlite(self.engine)

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, self._gate, self.on_commit)

    def close(self) -> None:
        self._gate.close()
