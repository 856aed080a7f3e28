"""The sandbox bank's own ledger schema and its test cards (see adapters.payments.sandbox).

The schema is created on first use. It is not fairsub's: no Alembic here.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from fairsub.adapters.db.types import UtcDateTime


class Behaviour(StrEnum):
    SUCCEED = "succeed"
    CARD_DECLINED = "card_declined"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    TIMEOUT_AFTER_CHARGE = "timeout_after_charge"


TEST_CARDS: dict[str, Behaviour] = {
    "4242424242424242": Behaviour.SUCCEED,
    "4000000000000002": Behaviour.CARD_DECLINED,
    "4000000000009995": Behaviour.INSUFFICIENT_FUNDS,
    "4000000000000119": Behaviour.TIMEOUT_AFTER_CHARGE,
}
DECLINES = (Behaviour.CARD_DECLINED, Behaviour.INSUFFICIENT_FUNDS)

metadata = MetaData()

cards = Table(
    "cards",
    metadata,
    Column("token", String(40), primary_key=True),
    Column("brand", String(20), nullable=False),
    Column("last4", String(4), nullable=False),
    Column("expires", String(7), nullable=False),
    Column("behaviour", String(30), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

charges = Table(
    "charges",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("ref", String(40), nullable=False, unique=True),
    Column("idempotency_key", String(255), nullable=False, unique=True),
    Column("card_token", String(40), ForeignKey("cards.token"), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("succeeded", Boolean, nullable=False),
    Column("decline_reason", String(40)),
    Column("description", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

refunds = Table(
    "refunds",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("ref", String(40), unique=True),  # NULL when refused: no money moved
    Column("idempotency_key", String(255), nullable=False, unique=True),
    Column("charge_ref", String(40), nullable=False, index=True),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("succeeded", Boolean, nullable=False),
    Column("failure_reason", String(40)),
    Column("created_at", UtcDateTime, nullable=False),
)
