"""Small builders for test data."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from fairsub.bootstrap import Container
from fairsub.domain.accounts import Account
from fairsub.domain.billing import AttemptStatus, InvoiceKind, InvoiceStatus, idempotency_key
from fairsub.domain.money import Money
from fairsub.domain.periods import Period
from fairsub.domain.refunding import RefundKind
from fairsub.domain.subscriptions import Subscription
from fairsub.services import demo, refunds, subscriptions

T = TypeVar("T")


@dataclass(frozen=True)
class Demo:
    alex: Account
    erika: Account
    annual: Subscription
    monthly: Subscription
    resold: Subscription
    erikas: Subscription


def seeded(container: Container, *, history: bool = False) -> Demo:
    """The demo data set: Alex (3 subscriptions, one via a reseller) and Erika (one).
    Without `history` (the default here) no past charges exist, so tests count only theirs."""
    demo.seed_demo(
        container.uows(),
        container.clock,
        container.hasher,
        container.catalog(),
        container.gateway,
        history=history,
    )
    with container.uows().read() as uow:
        alex = uow.accounts.by_email(demo.DEMO_EMAIL)
        erika = uow.accounts.by_email("erika@example.com")
    assert alex and erika
    subs = {s.plan_name: s for s in subscriptions.list_subscriptions(container.uows(), alex[0].id)}
    (erikas,) = subscriptions.list_subscriptions(container.uows(), erika[0].id)
    return Demo(
        alex[0],
        erika[0],
        subs["360 Annual"],
        subs["Antivirus Monthly"],
        subs["Identity Guard Annual"],
        erikas,
    )


def turn_off(container: Container, account: Account, subscription: Subscription):  # type: ignore[no-untyped-def]
    return subscriptions.turn_off_auto_renew(
        container.uows(),
        container.clock,
        account=account,
        subscription_id=subscription.id,
        actor=f"customer:{account.id}",
        channel="portal",
    )


def refund_charge(
    container: Container, account_id: int, attempt_id: int, amount: Money | None = None
) -> None:
    """Refund `amount` of a paid charge (all that is left of it by default), as a withdrawal
    decided outside the portal."""
    with container.uows().write() as uow:
        paid = refunds.charge_by_id(uow, account_id, attempt_id)
        assert paid is not None
        refunds.request(
            uow,
            paid,
            amount or paid.refundable,
            kind=RefundKind.WITHDRAWAL,
            reason="test",
            reference=None,
            actor="test",
            channel="cli",
            now=container.clock.now(),
        )
        uow.commit()


def paid_history(container: Container, subscription: Subscription) -> None:
    """What the demo data leaves out: every period of a direct subscription, from its start
    to the current one, invoiced and paid through the gateway when the period began (the
    first as the purchase, the others as renewals)."""
    with container.uows().write() as uow:
        ((method_id, _, _), *_) = uow.payment_methods.for_account(subscription.account_id)
        token = uow.payment_methods.token_of(subscription.account_id, method_id)
        assert token is not None
        index = 0
        while True:
            period = Period.nth(subscription.started_at, subscription.term, index)
            invoice = uow.billing.add_invoice(
                number=uow.billing.take_invoice_numbers(1),
                account_id=subscription.account_id,
                subscription_id=subscription.id,
                kind=InvoiceKind.PURCHASE if index == 0 else InvoiceKind.RENEWAL,
                period=period,
                amount=subscription.price,
                at=period.start,
            )
            key = idempotency_key(subscription.id, period.start, 1)
            attempt = uow.billing.add_attempt(
                invoice=invoice,
                attempt_no=1,
                key=key,
                payment_method_id=method_id,
                payment_token=token,
                at=period.start,
            )
            charged = container.gateway.charge(key, subscription.price, token, "test history")
            assert charged.succeeded
            uow.billing.settle_attempt(
                attempt.id, AttemptStatus.SUCCEEDED, period.start, gateway_ref=charged.gateway_ref
            )
            uow.billing.set_invoice_status(invoice.id, InvoiceStatus.PAID, period.start)
            if period.start >= subscription.period.start:
                break
            index += 1
        uow.commit()


def at_once(action: Callable[[], T], times: int = 2) -> list[T]:
    """Run `action` on `times` threads released together (a double click, two tabs);
    what each returned, in the order they finished."""
    start = threading.Barrier(times)
    results: list[T] = []

    def run() -> None:
        start.wait()
        results.append(action())

    threads = [threading.Thread(target=run) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results
