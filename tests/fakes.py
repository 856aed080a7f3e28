"""In-memory stand-ins for the ports that talk to the world outside the database."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

from fairsub.domain.money import Money
from fairsub.services.ports import (
    CardDetails,
    ChargeResult,
    EmailMessage,
    GatewayLedgerEntry,
    GatewayRefusedCredentials,
    GatewayTimeout,
    GatewayUnavailable,
    RefundResult,
    StoredCard,
)


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, **delta: float) -> None:
        self._now += timedelta(**delta)

    def set(self, moment: datetime) -> None:
        self._now = moment


class FakeMailer:
    """Records what would have been sent; can be told to fail like a server that is down."""

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []
        self.down = False

    def deliver(self, messages: Sequence[EmailMessage]) -> list[Exception | None]:
        if self.down:
            return [ConnectionRefusedError("SMTP server is down") for _ in messages]
        self.sent.extend(messages)
        return [None for _ in messages]


class FakeGateway:
    """An in-memory gateway with the port's promises: one charge per key, lost answers.

    Cards: a token per behaviour ("ok", "decline", "timeout" — charged, answer lost —
    and "down" — refused before charging)."""

    name = "fake"

    def __init__(self) -> None:
        self.charges: dict[str, ChargeResult] = {}
        self.refunds: dict[str, RefundResult] = {}
        self.calls = 0
        # Refund trouble: "down" refuses before refunding (GatewayUnavailable); "lost"
        # refunds, then loses the answer (GatewayTimeout). Every key asked is kept.
        self.refunds_down: str | None = None
        self.refund_keys_asked: list[str] = []
        # A revoked key: every charge and lookup is refused before anything happens; the
        # keys sent meanwhile are kept.
        self.credentials_revoked = False
        self.keys_refused: list[str] = []

    def _check_credentials(self, idempotency_key: str) -> None:
        if self.credentials_revoked:
            self.keys_refused.append(idempotency_key)
            raise GatewayRefusedCredentials(
                "The fake gateway refused the key; check FAIRSUB_FAKE_KEY.",
                setting="FAIRSUB_FAKE_KEY",
            )

    def store_card(self, card: CardDetails) -> StoredCard:
        behaviour = {"0002": "decline", "0119": "timeout"}.get(card.number[-4:], "ok")
        return StoredCard(
            f"tok_{behaviour}_{len(self.charges)}",
            "Visa",
            card.number[-4:],
            f"{card.exp_month:02d}/{card.exp_year}",
        )

    def charge(
        self, idempotency_key: str, amount: Money, card_token: str, description: str
    ) -> ChargeResult:
        self.calls += 1
        self._check_credentials(idempotency_key)
        if card_token.startswith("tok_down"):
            raise GatewayUnavailable("down")
        if idempotency_key in self.charges:
            return self.charges[idempotency_key]
        ok = not card_token.startswith("tok_decline")
        result = ChargeResult(
            idempotency_key,
            ok,
            f"ch_{len(self.charges) + 1}" if ok else None,
            amount,
            None if ok else "card_declined",
        )
        self.charges[idempotency_key] = result
        if card_token.startswith("tok_timeout"):
            raise GatewayTimeout("answer lost")
        return result

    def lookup_charge(self, idempotency_key: str) -> ChargeResult | None:
        self._check_credentials(idempotency_key)
        return self.charges.get(idempotency_key)

    def refund(self, idempotency_key: str, charge_ref: str, amount: Money) -> RefundResult:
        self.refund_keys_asked.append(idempotency_key)
        if self.refunds_down == "down":
            raise GatewayUnavailable("refunds are down")
        if idempotency_key not in self.refunds:
            self.refunds[idempotency_key] = RefundResult(
                idempotency_key, True, f"re_{len(self.refunds) + 1}", amount
            )
        if self.refunds_down == "lost":
            raise GatewayTimeout("refund answer lost")
        return self.refunds[idempotency_key]

    def ledger(self) -> Iterator[GatewayLedgerEntry]:
        for key, charge in self.charges.items():
            yield GatewayLedgerEntry(
                "charge", key, charge.amount, charge.succeeded, charge.gateway_ref
            )
        for key, refund in self.refunds.items():
            yield GatewayLedgerEntry(
                "refund", key, refund.amount, refund.succeeded, refund.gateway_ref
            )
