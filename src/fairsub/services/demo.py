"""Demo data: a fictional vendor's catalog and customers to try the journey with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from fairsub.domain.catalog import Catalog
from fairsub.domain.periods import Period
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
    uow: UnitOfWork, clock: Clock, hasher: PasswordHasher, catalog: Catalog, gateway: PaymentGateway
) -> bool:
    """Store the catalog and the demo customers. Returns False, changing nothing, when the
    demo customer already exists."""
    now = clock.now()
    with uow.read():
        if uow.accounts.by_email(DEMO_EMAIL) is not None:
            return False
    cards = {c.email: gateway.store_card(DEMO_CARD) for c in CUSTOMERS}
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
            for plan_code, days_ago, auto_renew, reseller in customer.subscriptions:
                plan = catalog.plan(plan_code)
                price = plan.price_in(region.code)
                started = (now - timedelta(days=days_ago)).replace(microsecond=0)
                period = Period.containing(started, plan.term, now)
                uow.subscriptions.add(
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
        uow.commit()
    return True
