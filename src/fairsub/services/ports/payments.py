"""The payment gateway port and what crosses it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from fairsub.domain.money import Money


class GatewayUnavailable(Exception):
    """The gateway refused before doing anything: safe to try again with the same key."""


class GatewayRefusedCredentials(GatewayUnavailable):
    """The gateway refused our credentials (a wrong, revoked or under-privileged key) before
    doing anything. A configuration problem, not a decline and not an unknown outcome: like
    any GatewayUnavailable, nothing is recorded as the charge's answer and the same key is
    tried again later; unlike it, waiting will not help until an operator fixes `setting`."""

    def __init__(self, message: str, *, setting: str) -> None:
        super().__init__(message)
        self.setting = setting


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
        Raises GatewayUnavailable (nothing happened; GatewayRefusedCredentials when the
        gateway refused our key) or GatewayTimeout (unknown)."""
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
