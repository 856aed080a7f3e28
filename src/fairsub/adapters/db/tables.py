"""The schema, as SQLAlchemy Core tables. Alembic migrations must match it (a test checks).

Every table that belongs to a customer carries account_id, so the schema can be
sharded by account later without a redesign.

An index exists only for a query that uses it. A renewal writes a row to invoices,
payment_attempts, outbox and audit_events, and every index on them is one more B-tree to
update. Renewals come in due order, so an index whose key grows with time (ids, the
idempotency key, invoice numbers) takes its inserts at one end, where its pages stay in
memory; one keyed by account or subscription takes them anywhere and, once the table outgrows
the page cache, reads and writes a page for each.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    literal_column,
)

from fairsub.adapters.db.types import UtcDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# BigInteger ids that are still SQLite's rowid alias, so inserts stay cheap there.
Id = BigInteger().with_variant(Integer(), "sqlite")

regions = Table(
    "regions",
    metadata,
    Column("code", String(8), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("locale", String(20), nullable=False),
    Column("timezone", String(64), nullable=False),
)

products = Table(
    "products",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
)

plans = Table(
    "plans",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("product_code", ForeignKey("products.code"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("term", String(10), nullable=False),
    Column("seats", Integer, nullable=False),
    Column("trial_days", Integer, nullable=False, server_default="0"),
    CheckConstraint("term in ('month', 'year')", name="term"),
)

prices = Table(
    "prices",
    metadata,
    Column("plan_code", ForeignKey("plans.code"), primary_key=True),
    Column("region", ForeignKey("regions.code"), primary_key=True),
    Column("currency", String(3), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("region", ForeignKey("regions.code"), nullable=False),
    Column("locale", String(20), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

payment_methods = Table(
    "payment_methods",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", ForeignKey("accounts.id"), nullable=False, index=True),
    Column("brand", String(40), nullable=False),
    Column("last4", String(4), nullable=False),
    Column("expires", String(7), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("gateway", String(20), nullable=False, server_default="sandbox"),
    Column("token", String(200), nullable=True),
    # domain.subscriptions.PaymentMethodKind: how long a refund to it takes to arrive
    Column("kind", String(20), nullable=False, server_default="card"),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", ForeignKey("accounts.id"), nullable=False, index=True),
    Column("plan_code", ForeignKey("plans.code"), nullable=False),
    Column("region", ForeignKey("regions.code"), nullable=False),
    Column("status", String(20), nullable=False),
    Column("auto_renew", Boolean, nullable=False),
    Column("price_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("trial_ends_at", UtcDateTime, nullable=True),
    Column("period_start", UtcDateTime, nullable=False),
    Column("period_end", UtcDateTime, nullable=False),
    Column("payment_method_id", ForeignKey("payment_methods.id"), nullable=True),
    Column("reseller_name", String(200), nullable=True),
    Column("reseller_order", String(100), nullable=True),
    Column("reseller_cancel_url", String(500), nullable=True),
    Column("version", Integer, nullable=False, default=1),
    # Billing: a worker's lease on a due subscription, and where dunning stands.
    Column("claimed_until", UtcDateTime, nullable=True),
    Column("failed_attempts", Integer, nullable=False, server_default="0"),
    Column("next_retry_at", UtcDateTime, nullable=True),
    CheckConstraint(
        "status in ('incomplete', 'trialing', 'active', 'past_due', 'canceled', 'expired', "
        "'refunded')",
        name="status",
    ),
    Index("ix_subscriptions_renewal_due", "auto_renew", "period_end"),
)

cancellations = Table(
    "cancellations",
    metadata,
    Column("reference", String(12), primary_key=True),
    Column("account_id", ForeignKey("accounts.id"), nullable=False, index=True),
    Column("subscription_id", ForeignKey("subscriptions.id"), nullable=False, index=True),
    Column("received_at", UtcDateTime, nullable=False),
    Column("ends_at", UtcDateTime, nullable=False),
    Column("channel", String(20), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("declaration", Text, nullable=False),
    Column("reversed_at", UtcDateTime, nullable=True),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", Id, primary_key=True, autoincrement=False),
    Column("account_id", Id, nullable=True),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("action", String(100), nullable=False),
    Column("subject", String(100), nullable=False),
    Column("before", JSON, nullable=True),
    Column("after", JSON, nullable=True),
    Column("reason", Text, nullable=True),
    Column("hash", String(64), nullable=False),
)

# One row: the chain's head. Appending locks it, so the chain never forks.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Id, nullable=False),
    Column("hash", String(64), nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, nullable=True),
    Column("kind", String(40), nullable=False),
    Column("recipient", String(254), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("dedupe_key", String(200), nullable=False, unique=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    # A relay's hold on the email while it sends it, in real time: the test clock's jumps
    # move next_attempt_at's time, and must not end a lease mid-send.
    Column("leased_until", UtcDateTime, nullable=True),
    Index("ix_outbox_pending", "sent_at", "next_attempt_at"),
)

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("account_id", ForeignKey("accounts.id"), nullable=False, index=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_seen_at", UtcDateTime, nullable=False),
)

sign_in_attempts = Table(
    "sign_in_attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("email", String(254), nullable=False),
    Column("address", String(64), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("succeeded", Boolean, nullable=False),
    Index("ix_sign_in_attempts_email_at", "email", "at"),
    Index("ix_sign_in_attempts_address_at", "address", "at"),
)

password_resets = Table(
    "password_resets",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("account_id", ForeignKey("accounts.id"), nullable=False, index=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("used_at", UtcDateTime, nullable=True),
)

invoices = Table(
    "invoices",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("number", BigInteger, nullable=False, unique=True),
    # A statement finds an account's invoices through its subscriptions (the unique index
    # below), and their attempts through the invoices: no index on account_id is needed.
    Column("account_id", ForeignKey("accounts.id"), nullable=False),
    Column("subscription_id", ForeignKey("subscriptions.id"), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("period_start", UtcDateTime, nullable=False),
    Column("period_end", UtcDateTime, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(20), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("paid_at", UtcDateTime, nullable=True),
    # Invariant 2: a period is invoiced, and so charged, at most once.
    UniqueConstraint("subscription_id", "period_start"),
    CheckConstraint("status in ('open', 'paid', 'void')", name="status"),
)

# One row: the last invoice number. Taking a number locks it, so numbers have no gaps.
invoice_counter = Table(
    "invoice_counter",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_number", BigInteger, nullable=False),
)

payment_attempts = Table(
    "payment_attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", ForeignKey("accounts.id"), nullable=False),
    Column("invoice_id", ForeignKey("invoices.id"), nullable=False),
    Column("subscription_id", ForeignKey("subscriptions.id"), nullable=False),
    Column("attempt_no", Integer, nullable=False),
    Column("idempotency_key", String(100), nullable=False, unique=True),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("payment_method_id", ForeignKey("payment_methods.id"), nullable=True),
    Column("payment_token", String(200), nullable=False),
    Column("status", String(20), nullable=False),
    Column("gateway_ref", String(200), nullable=True),
    Column("decline_reason", String(200), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("settled_at", UtcDateTime, nullable=True),
    UniqueConstraint("invoice_id", "attempt_no"),
    Index("ix_payment_attempts_status", "status"),
    CheckConstraint("status in ('sending', 'succeeded', 'declined', 'unknown')", name="status"),
)

# A charge is in flight from the commit before the gateway call until its answer is recorded.
# "Is one in flight for this subscription?" is asked by every claim and every turn-off; the
# partial index holds only those rows, about a batch. A query must spell the condition as the
# index does, with literals, not parameters, for SQLite to use it: use IN_FLIGHT.
IN_FLIGHT = payment_attempts.c.status.in_(
    [literal_column("'sending'"), literal_column("'unknown'")]
)
Index(
    "ix_payment_attempts_in_flight",
    payment_attempts.c.subscription_id,
    sqlite_where=IN_FLIGHT,
    postgresql_where=IN_FLIGHT,
)

consents = Table(
    "consents",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", ForeignKey("accounts.id"), nullable=False, index=True),
    Column("subscription_id", ForeignKey("subscriptions.id"), nullable=True),
    Column("at", UtcDateTime, nullable=False),
    Column("address", String(64), nullable=False),
    Column("user_agent", String(300), nullable=False),
    Column("terms_version", String(40), nullable=False),
    Column("price_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("auto_renew", Boolean, nullable=False),
    Column("disclosure", Text, nullable=False),
    # C27: the customer asked for immediate start AND acknowledged losing the withdrawal
    # right, with two separate unticked boxes. Without both, the right stays whole.
    Column("immediate_start", Boolean, nullable=False, server_default="0"),
    Column("withdrawal_right_waived", Boolean, nullable=False, server_default="0"),
)

# C23: a new price for a plan in a region from a date. Append-only. Who is told when is in
# the outbox (dedupe key "price-notice:<change id>:<subscription id>"), so no per-
# subscription column is needed; a renewal pays the new price only after that notice.
price_changes = Table(
    "price_changes",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("plan_code", ForeignKey("plans.code"), nullable=False),
    Column("region", ForeignKey("regions.code"), nullable=False),
    Column("new_amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("effective_from", UtcDateTime, nullable=False),
    Column("announced_at", UtcDateTime, nullable=False),
    UniqueConstraint("plan_code", "region", "effective_from"),
    CheckConstraint("new_amount_minor >= 0", name="amount"),
)

# Money going back: one row per refund, written before the gateway is called (like a
# charge attempt), keyed so a retry can never refund twice.
refunds = Table(
    "refunds",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", ForeignKey("accounts.id"), nullable=False, index=True),
    Column("subscription_id", ForeignKey("subscriptions.id"), nullable=False),
    Column("invoice_id", ForeignKey("invoices.id"), nullable=False),
    Column("charge_attempt_id", ForeignKey("payment_attempts.id"), nullable=False, index=True),
    Column("idempotency_key", String(100), nullable=False, unique=True),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("kind", String(30), nullable=False),
    Column("reason", Text, nullable=False),
    Column("reference", String(12), nullable=True),
    Column("status", String(20), nullable=False),
    Column("requested_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime, nullable=True),
    Column("settled_at", UtcDateTime, nullable=True),
    Column("arrives_from", UtcDateTime, nullable=True),
    Column("arrives_by", UtcDateTime, nullable=True),
    Column("gateway_ref", String(200), nullable=True),
    Column("failure_reason", String(200), nullable=True),
    CheckConstraint("amount_minor > 0", name="amount"),
    CheckConstraint(
        "status in ('requested', 'sent', 'settled', 'failed', 'unknown')", name="status"
    ),
    CheckConstraint(
        "kind in ('cancel_with_refund', 'withdrawal', 'case', 'charged_after_turn_off')",
        name="kind",
    ),
)

# "I don't recognise this charge": a customer's question about a charge, until resolved.
charge_cases = Table(
    "charge_cases",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("reference", String(12), nullable=False, unique=True),
    Column("account_id", ForeignKey("accounts.id"), nullable=False, index=True),
    Column("charge_attempt_id", ForeignKey("payment_attempts.id"), nullable=False),
    Column("reason", String(30), nullable=False),
    Column("note", Text, nullable=False, server_default=""),
    Column("status", String(20), nullable=False),
    Column("alert", Boolean, nullable=False, server_default="0"),
    Column("refund_id", ForeignKey("refunds.id"), nullable=True),
    Column("opened_at", UtcDateTime, nullable=False),
    Column("resolved_at", UtcDateTime, nullable=True),
    Column("resolved_by", String(100), nullable=True),
    Column("resolution_note", Text, nullable=True),
    CheckConstraint(
        "reason in ('after_cancel', 'unknown_charge', 'wrong_amount', 'other')", name="reason"
    ),
    CheckConstraint("status in ('open', 'refunded', 'rejected')", name="status"),
    Index("ix_charge_cases_status", "status"),
)
