"""Demo data: a fictional vendor's catalog and customers to try the journey with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from fairsub.domain.billing import (
    AttemptStatus,
    InvoiceKind,
    InvoiceStatus,
    PaymentAttempt,
    idempotency_key,
)
from fairsub.domain.catalog import Catalog
from fairsub.domain.money import Money
from fairsub.domain.periods import Period, Term
from fairsub.domain.subscriptions import Reseller, Status
from fairsub.services import audit
from fairsub.services.ports import (
    CardDetails,
    Clock,
    NewSubscription,
    PasswordHasher,
    PaymentGateway,
    UnitOfWork,
)

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "fairsub-demo"  # noqa: S105 - published demo credential


@dataclass(frozen=True, slots=True)
class DemoCustomer:
    email: str
    name: str
    region: str
    subscriptions: tuple[tuple[str, int, bool, Reseller | None], ...]
    """(plan code, days since purchase, auto-renew, reseller)"""


CUSTOMERS = (
    DemoCustomer(
        DEMO_EMAIL,
        "Alex Demo",
        "GB",
        (
            ("total360-annual", 20, True, None),
            ("antivirus-monthly", 95, True, None),
            (
                "identity-annual",
                150,
                True,
                Reseller(
                    "Bluebird Software Store",
                    "BB-2026-118204",
                    "https://store.bluebird.example/account/orders",
                ),
            ),
        ),
    ),
    DemoCustomer(
        "erika@example.com", "Erika Beispiel", "DE", (("antivirus-annual", 40, True, None),)
    ),
    DemoCustomer("kenji@example.com", "Kenji Rei", "JP", (("total360-monthly", 10, True, None),)),
    DemoCustomer("sam@example.com", "Sam Newcomer", "US", ()),
)


DEMO_CARD = CardDetails("4242424242424242", 12, 2030, "123")


def seed_demo(
    uow: UnitOfWork,
    clock: Clock,
    hasher: PasswordHasher,
    catalog: Catalog,
    gateway: PaymentGateway,
    *,
    history: bool = True,
) -> bool:
    """Store the catalog and the demo customers. Returns False, changing nothing, when the
    demo customer already exists. With `history`, every period so far was paid for, through
    the gateway, so statements and refund offers have real charges behind them."""
    now = clock.now()
    with uow.read():
        if uow.accounts.by_email(DEMO_EMAIL) is not None:
            return False
    cards = {c.email: gateway.store_card(DEMO_CARD) for c in CUSTOMERS}
    history_due: list[_Paid] = []
    with uow.write():
        if uow.accounts.by_email(DEMO_EMAIL) is not None:
            return False
        uow.catalog.store(catalog)
        password_hash = hasher.hash(DEMO_PASSWORD)
        for customer in CUSTOMERS:
            region = catalog.regions[customer.region]
            account = uow.accounts.add(
                customer.email,
                customer.name,
                password_hash,
                region.code,
                region.locale,
                region.timezone,
                now - timedelta(days=400),
            )
            card = uow.payment_methods.add(account.id, cards[customer.email], gateway.name, now)
            token = cards[customer.email].token
            for plan_code, days_ago, auto_renew, reseller in customer.subscriptions:
                plan = catalog.plan(plan_code)
                price = plan.price_in(region.code)
                started = (now - timedelta(days=days_ago)).replace(microsecond=0)
                period = Period.containing(started, plan.term, now)
                subscription_id = uow.subscriptions.add(
                    NewSubscription(
                        account_id=account.id,
                        plan_code=plan.code,
                        region=region.code,
                        status=(Status.ACTIVE if auto_renew else Status.CANCELED).value,
                        auto_renew=auto_renew,
                        price_minor=price.amount_minor,
                        currency=price.currency,
                        started_at=started,
                        period_start=period.start,
                        period_end=period.end,
                        payment_method_id=None if reseller else card,
                        reseller=reseller,
                    )
                )
                if reseller is None and history:
                    history_due += [
                        _Paid(period, index, account.id, subscription_id, price, card, token)
                        for index, period in _periods_so_far(started, plan.term, now)
                    ]
            audit.record(
                uow,
                actor="system:seed-demo",
                channel="cli",
                action="cli:account:seeded",
                subject=f"account:{account.id}",
                account_id=account.id,
                at=now,
                after={"email": customer.email, "subscriptions": len(customer.subscriptions)},
            )
        # Numbered in the order they were paid, across customers, as a real shop's are.
        paid = [_invoice_and_attempt(uow, due) for due in sorted(history_due, key=_paid_at)]
        uow.commit()
    _charge_history(uow, gateway, paid)
    return True


@dataclass(frozen=True, slots=True)
class _Paid:
    """One period of the demo's history, paid on time on the customer's card."""

    period: Period
    index: int  # 0: the purchase, then renewals
    account_id: int
    subscription_id: int
    price: Money
    card: int
    token: str


def _paid_at(paid: _Paid) -> tuple[datetime, int]:
    return (paid.period.start, paid.subscription_id)


def _periods_so_far(started: datetime, term: Term, now: datetime) -> list[tuple[int, Period]]:
    """Every period begun by now, as if bought and renewed on time."""
    found: list[tuple[int, Period]] = []
    while (period := Period.nth(started, term, len(found))).start <= now:
        found.append((len(found), period))
    return found


def _invoice_and_attempt(uow: UnitOfWork, paid: _Paid) -> PaymentAttempt:
    """The invoice and payment attempt of one period, so statements, receipts and refund
    offers have real charges to show."""
    invoice = uow.billing.add_invoice(
        number=uow.billing.take_invoice_numbers(1),
        account_id=paid.account_id,
        subscription_id=paid.subscription_id,
        kind=InvoiceKind.PURCHASE if paid.index == 0 else InvoiceKind.RENEWAL,
        period=paid.period,
        amount=paid.price,
        at=paid.period.start,
    )
    return uow.billing.add_attempt(
        invoice=invoice,
        attempt_no=1,
        key=idempotency_key(paid.subscription_id, paid.period.start, 1),
        payment_method_id=paid.card,
        payment_token=paid.token,
        at=paid.period.start,
    )


def _charge_history(
    uow: UnitOfWork, gateway: PaymentGateway, attempts: list[PaymentAttempt]
) -> None:
    """Charge the history for real at the gateway, so our ledger and its agree."""
    results = [
        gateway.charge(a.idempotency_key, a.amount, a.payment_token, "Demo history")
        for a in attempts
    ]
    with uow.write():
        for attempt, result in zip(attempts, results, strict=True):
            status = AttemptStatus.SUCCEEDED if result.succeeded else AttemptStatus.DECLINED
            uow.billing.settle_attempt(
                attempt.id, status, attempt.created_at, gateway_ref=result.gateway_ref
            )
            if result.succeeded:
                uow.billing.set_invoice_status(
                    attempt.invoice_id, InvoiceStatus.PAID, attempt.created_at
                )
        uow.commit()
