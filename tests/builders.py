"""Small builders for test data."""

from __future__ import annotations

from dataclasses import dataclass

from fairsub.bootstrap import Container
from fairsub.domain.accounts import Account
from fairsub.domain.subscriptions import Subscription
from fairsub.services import demo, subscriptions


@dataclass(frozen=True)
class Demo:
    alex: Account
    erika: Account
    annual: Subscription
    monthly: Subscription
    resold: Subscription
    erikas: Subscription


def seeded(container: Container) -> Demo:
    """The demo data set: Alex (3 subscriptions, one via a reseller) and Erika (one)."""
    demo.seed_demo(
        container.uows(), container.clock, container.hasher, container.catalog(), container.gateway
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
        account_id=account.id,
        subscription_id=subscription.id,
        actor=f"customer:{account.id}",
        channel="portal",
    )
