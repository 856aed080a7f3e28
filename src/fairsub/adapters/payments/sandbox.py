"""The sandbox gateway: a pretend bank with its own ledger, the default for development and demos.

It keeps its ledger in its own SQLite file (not fairsub's database), so it can disagree with
fairsub the way a real gateway can, and `fairsub billing reconcile` has something to check.
The app server and every worker process may open the same file at once: writes take SQLite's
write lock up front (BEGIN IMMEDIATE), and the idempotency keys are unique columns.

Test cards (any expiry that has not passed; a 3-digit CVC, 4 digits for Amex):

    4242 4242 4242 4242   succeeds
    4000 0000 0000 0002   declined, reason "card_declined"
    4000 0000 0000 9995   declined, reason "insufficient_funds"
    4000 0000 0000 0119   timeout after charging: the charge IS recorded as succeeded, then
                          the call raises GatewayTimeout as if the answer was lost on the way
                          back; lookup_charge(key) then reports the charge as succeeded
    any other number that passes the Luhn check succeeds (brand by prefix: 4 Visa,
                          51-55 and 2221-2720 Mastercard, 34 and 37 Amex)

store_card refuses, with InvalidInput and a message for the customer, a number that fails
the Luhn check, an expiry that has passed, and a CVC of the wrong length. The number itself
is never stored: only a random token, the brand, the last four digits, the expiry and which
test behaviour the card has.

Each idempotency key charges at most once: asking again returns the first answer, a decline
included, whatever card is given (so a retry with a new card needs a new key); the same key
with another amount raises InvalidInput.

Simulation: every charge, refund and lookup first sleeps `latency` seconds (real time, like
a network), then fails with GatewayUnavailable, having done nothing, with probability
`failure_rate`. store_card and ledger are neither slowed nor failed.

Refunds go back against a succeeded charge, never more than it minus earlier refunds;
otherwise the answer is a RefundResult with succeeded=False and one of the failure reasons
"charge_not_found", "charge_not_succeeded", "currency_mismatch", "amount_too_large". A
refused refund is remembered under its key (so asking again gives the same answer) but is
not in the ledger, because no money moved. A charge with a token this sandbox never issued
is declined with "card_not_found" and not recorded either.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Table,
    bindparam,
    func,
    insert,
    select,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from fairsub.adapters.db.bulk import DriverStatement
from fairsub.adapters.db.engine import WRITE_OPTION, make_engine
from fairsub.adapters.payments.cards import check_card
from fairsub.adapters.payments.sandbox_ledger import (
    DECLINES,
    TEST_CARDS,
    Behaviour,
    cards,
    charges,
    metadata,
    refunds,
)
from fairsub.domain.errors import InvalidInput
from fairsub.domain.money import Money
from fairsub.services.ports import (
    CardDetails,
    ChargeResult,
    Clock,
    GatewayLedgerEntry,
    GatewayTimeout,
    GatewayUnavailable,
    RefundResult,
    StoredCard,
)

LEDGER_BATCH = 500
T = TypeVar("T")
# A stored row, or the values just inserted as one.
Record = Mapping[Any, Any]


# Built once: the sandbox is on the hot path of every benchmark and demo renewal.
_CHARGE_COLUMNS = (
    "ref", "idempotency_key", "card_token", "amount_minor", "currency", "succeeded",
    "decline_reason", "description", "created_at",
)  # fmt: skip
_NEW_CHARGE = sqlite_insert(charges).on_conflict_do_nothing(index_elements=["idempotency_key"])
_CHARGE_BY_KEY = select(charges).where(charges.c.idempotency_key == bindparam("b_key"))
_CARD_BEHAVIOUR = select(cards.c.behaviour).where(cards.c.token == bindparam("b_token"))


class SandboxGateway:
    name = "sandbox"

    def __init__(
        self,
        path: Path,
        clock: Clock,
        *,
        latency: float = 0.0,
        failure_rate: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        if latency < 0:
            raise ValueError("latency must not be negative")
        if not 0.0 <= failure_rate <= 1.0:
            raise ValueError("failure_rate is a probability, from 0.0 to 1.0")
        self._engine = make_engine(f"sqlite:///{Path(path)}")
        self._clock = clock
        self._latency = latency
        self._failure_rate = failure_rate
        # Only for the failure roll: tokens and refs come from `secrets`, because two
        # processes seeded alike must still never hand out the same token.
        self._rng = rng or random.Random()
        self._writer = threading.Lock()
        self._schema_lock = threading.Lock()
        self._schema_ready = False
        self._cards: dict[str, Behaviour] = {}
        self._write_connection: Connection | None = None
        # The charge INSERT as the driver takes it: through SQLAlchemy's execute it cost
        # half again as much as the rest of a charge (78 against 52 µs a charge).
        self._new_charge = DriverStatement.build(
            _NEW_CHARGE, {c: c for c in _CHARGE_COLUMNS}, self._engine.dialect
        )

    def close(self) -> None:
        with self._writer:
            if self._write_connection is not None:
                self._write_connection.close()
                self._write_connection = None
        self._engine.dispose()

    # --- the port -----------------------------------------------------------------------

    def store_card(self, card: CardDetails) -> StoredCard:
        checked = check_card(card, self._clock.now())
        stored = StoredCard(
            token=f"card_{secrets.token_hex(12)}",
            brand=checked.brand,
            last4=checked.last4,
            expires=checked.expires,
        )
        behaviour = TEST_CARDS.get(checked.number, Behaviour.SUCCEED)
        with self._writing() as connection:
            connection.execute(
                insert(cards).values(
                    token=stored.token,
                    brand=stored.brand,
                    last4=stored.last4,
                    expires=stored.expires,
                    behaviour=behaviour.value,
                    created_at=self._clock.now(),
                )
            )
        return stored

    def charge(
        self, idempotency_key: str, amount: Money, card_token: str, description: str
    ) -> ChargeResult:
        _check_request(idempotency_key, amount)
        self._call_started()
        row, behaviour = self._retry_on_conflict(
            lambda: self._record_charge(idempotency_key, amount, card_token, description)
        )
        if row is None:
            return ChargeResult(idempotency_key, False, None, amount, "card_not_found")
        if _money(row) != amount:
            raise InvalidInput(
                f"Idempotency key {idempotency_key!r} was already used for a charge of "
                f"{_money(row).plain()}."
            )
        if behaviour is Behaviour.TIMEOUT_AFTER_CHARGE:
            raise GatewayTimeout(
                f"The sandbox charged {amount.plain()} under key {idempotency_key!r} and then "
                "lost the answer (test card 4000 0000 0000 0119). Ask lookup_charge."
            )
        return _charge_result(row)

    def lookup_charge(self, idempotency_key: str) -> ChargeResult | None:
        self._call_started()
        with self._reading() as connection:
            row = connection.execute(_CHARGE_BY_KEY, {"b_key": idempotency_key}).first()
        return None if row is None else _charge_result(row._mapping)

    def refund(self, idempotency_key: str, charge_ref: str, amount: Money) -> RefundResult:
        _check_request(idempotency_key, amount)
        self._call_started()
        row = self._retry_on_conflict(
            lambda: self._record_refund(idempotency_key, charge_ref, amount)
        )
        if (row["charge_ref"], _money(row)) != (charge_ref, amount):
            raise InvalidInput(
                f"Idempotency key {idempotency_key!r} was already used for a refund of "
                f"{_money(row).plain()} against {row['charge_ref']}."
            )
        return RefundResult(
            idempotency_key=row["idempotency_key"],
            succeeded=row["succeeded"],
            gateway_ref=row["ref"],
            amount=_money(row),
            failure_reason=row["failure_reason"],
        )

    def ledger(self) -> Iterator[GatewayLedgerEntry]:
        for row in self._stream(charges):
            yield GatewayLedgerEntry(
                "charge", row["idempotency_key"], _money(row), row["succeeded"], row["ref"]
            )
        for row in self._stream(refunds):
            if row["ref"] is not None:
                yield GatewayLedgerEntry(
                    "refund", row["idempotency_key"], _money(row), row["succeeded"], row["ref"]
                )

    # --- inside the bank ------------------------------------------------------------------

    def _record_charge(
        self, key: str, amount: Money, card_token: str, description: str
    ) -> tuple[Record | None, Behaviour | None]:
        """The charge stored under `key` (made now if new) and, if made now, its behaviour."""
        behaviour = self._behaviour(card_token)
        with self._writing() as connection:
            if behaviour is not None:
                values: dict[str, Any] = {
                    "ref": f"ch_{secrets.token_hex(12)}",
                    "idempotency_key": key,
                    "card_token": card_token,
                    "amount_minor": amount.amount_minor,
                    "currency": amount.currency,
                    "succeeded": behaviour not in DECLINES,
                    "decline_reason": behaviour.value if behaviour in DECLINES else None,
                    "description": description,
                    "created_at": self._clock.now(),
                }
                driver = connection.connection.driver_connection
                assert driver is not None
                new = self._new_charge
                if driver.execute(new.sql, new.values(values)).rowcount == 1:
                    return values, behaviour
            existing = connection.execute(_CHARGE_BY_KEY, {"b_key": key}).first()
            return (existing._mapping if existing is not None else None), None

    def _behaviour(self, card_token: str) -> Behaviour | None:
        """How the card behaves; None if this sandbox never issued it. Cards never change
        once stored, so each process asks its ledger once per card."""
        known = self._cards.get(card_token)
        if known is None:
            with self._reading() as connection:
                row = connection.execute(_CARD_BEHAVIOUR, {"b_token": card_token}).first()
            if row is None:
                return None
            known = self._cards[card_token] = Behaviour(row.behaviour)
        return known

    def _record_refund(self, key: str, charge_ref: str, amount: Money) -> Record:
        with self._writing() as connection:
            existing = connection.execute(
                select(refunds).where(refunds.c.idempotency_key == key)
            ).first()
            if existing is not None:
                return existing._mapping
            refusal = _refusal(connection, charge_ref, amount)
            values: dict[str, Any] = {
                "ref": None if refusal else f"re_{secrets.token_hex(12)}",
                "idempotency_key": key,
                "charge_ref": charge_ref,
                "amount_minor": amount.amount_minor,
                "currency": amount.currency,
                "succeeded": refusal is None,
                "failure_reason": refusal,
                "created_at": self._clock.now(),
            }
            connection.execute(insert(refunds).values(**values))
            return values

    @staticmethod
    def _retry_on_conflict(attempt: Callable[[], T]) -> T:
        # BEGIN IMMEDIATE already serialises writers, so the unique keys should never clash;
        # if they do (another tool writing the file), the second attempt reads the winner.
        try:
            return attempt()
        except IntegrityError:
            return attempt()

    def _call_started(self) -> None:
        if self._latency:
            time.sleep(self._latency)
        if self._failure_rate and self._rng.random() < self._failure_rate:
            raise GatewayUnavailable("The sandbox gateway is unavailable (simulated).")

    def _stream(self, table: Table) -> Iterator[Record]:
        """Every row in id order, a batch per short read, so memory stays flat."""
        last_id = 0
        while True:
            with self._reading() as connection:
                batch = connection.execute(
                    select(table)
                    .where(table.c.id > last_id)
                    .order_by(table.c.id)
                    .limit(LEDGER_BATCH)
                ).all()
            for row in batch:
                yield row._mapping
            if len(batch) < LEDGER_BATCH:
                return
            last_id = batch[-1].id

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A write transaction on the gateway's one writing connection, kept open: taking
        a pooled connection and handing it back cost as much as the charge's INSERT."""
        self._ensure_schema()
        # Writers in this process queue on a lock rather than in SQLite's busy handler.
        with self._writer:
            if self._write_connection is None:
                connection = self._engine.connect()
                self._write_connection = connection.execution_options(**{WRITE_OPTION: True})
            try:
                with self._write_connection.begin():
                    yield self._write_connection
            except BaseException:
                self._write_connection.close()  # a fresh one next time, whatever went wrong
                self._write_connection = None
                raise

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        self._ensure_schema()
        with self._engine.connect() as connection, connection.begin():
            yield connection

    def _ensure_schema(self) -> None:
        if self._schema_ready:
            return
        with self._schema_lock:
            if self._schema_ready:
                return
            # Under the write lock, so processes opening a new file together create it once.
            with self._writer, self._engine.connect() as connection:
                connection.execution_options(**{WRITE_OPTION: True})
                with connection.begin():
                    metadata.create_all(connection)
            self._schema_ready = True


def _refusal(connection: Connection, charge_ref: str, amount: Money) -> str | None:
    """Why this refund cannot happen, or None if it can."""
    charge = connection.execute(select(charges).where(charges.c.ref == charge_ref)).first()
    if charge is None:
        return "charge_not_found"
    if not charge.succeeded:
        return "charge_not_succeeded"
    if charge.currency != amount.currency:
        return "currency_mismatch"
    refunded = connection.execute(
        select(func.coalesce(func.sum(refunds.c.amount_minor), 0)).where(
            refunds.c.charge_ref == charge_ref, refunds.c.succeeded.is_(True)
        )
    ).scalar_one()
    if int(refunded) + amount.amount_minor > charge.amount_minor:
        return "amount_too_large"
    return None


def _check_request(idempotency_key: str, amount: Money) -> None:
    if not idempotency_key:
        raise InvalidInput("An idempotency key is required.")
    if amount.amount_minor <= 0:
        raise InvalidInput("Amounts charged or refunded must be more than zero.")


def _money(row: Record) -> Money:
    return Money(int(row["amount_minor"]), row["currency"])


def _charge_result(row: Record) -> ChargeResult:
    return ChargeResult(
        idempotency_key=row["idempotency_key"],
        succeeded=bool(row["succeeded"]),
        gateway_ref=row["ref"],
        amount=_money(row),
        decline_reason=row["decline_reason"],
    )
