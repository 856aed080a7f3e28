"""Proving our ledger and the gateway's agree (invariant 3)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fairsub.domain.billing import AttemptStatus
from fairsub.domain.money import Money
from fairsub.services.ports import PaymentGateway, UnitOfWorkFactory


@dataclass(frozen=True, slots=True)
class Difference:
    idempotency_key: str
    ours: str
    theirs: str

    def __str__(self) -> str:
        return f"{self.idempotency_key}: ours {self.ours}, gateway {self.theirs}"


def _describe(succeeded: bool | None, amount: Money | None) -> str:
    if succeeded is None or amount is None:
        return "nothing"
    return f"{'charged' if succeeded else 'declined'} {amount.plain()}"


def reconcile(
    uows: UnitOfWorkFactory, gateway: PaymentGateway, progress: Callable[[int], None] | None = None
) -> tuple[int, list[Difference]]:
    """Compare every charge attempt with the gateway's charges, by idempotency key.

    Returns (charges compared, differences). A charge we still have no answer for is a
    difference too: run the janitor (`fairsub billing run`) first."""
    ours: dict[str, tuple[bool | None, Money]] = {}
    with uows().read() as uow:
        for attempt in uow.billing.ledger():
            settled = attempt.status in (AttemptStatus.SUCCEEDED, AttemptStatus.DECLINED)
            outcome = attempt.status is AttemptStatus.SUCCEEDED if settled else None
            ours[attempt.idempotency_key] = (outcome, attempt.amount)
    differences: list[Difference] = []
    seen = 0
    for entry in gateway.ledger():
        if entry.kind != "charge":
            continue
        seen += 1
        if progress and seen % 1000 == 0:
            progress(1000)
        mine = ours.pop(entry.idempotency_key, None)
        if mine is None:
            differences.append(
                Difference(
                    entry.idempotency_key, "nothing", _describe(entry.succeeded, entry.amount)
                )
            )
        elif mine[0] is None:
            differences.append(
                Difference(
                    entry.idempotency_key,
                    "no answer recorded",
                    _describe(entry.succeeded, entry.amount),
                )
            )
        elif (mine[0], mine[1]) != (entry.succeeded, entry.amount):
            differences.append(
                Difference(
                    entry.idempotency_key,
                    _describe(*mine),
                    _describe(entry.succeeded, entry.amount),
                )
            )
    for key, (outcome, amount) in ours.items():
        differences.append(
            Difference(
                key,
                _describe(outcome, amount) if outcome is not None else "no answer recorded",
                "nothing",
            )
        )
    return seen, differences
