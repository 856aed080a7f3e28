"""Buying a plan against real databases: the charge, its lost answer, trials, fixed terms,
the consent record, the purchase email, and new cards that retry what failed."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from fairsub.adapters.db.tables import consents, invoices, payment_attempts, subscriptions
from fairsub.bootstrap import Container
from fairsub.domain.accounts import Account
from fairsub.domain.billing import AttemptStatus
from fairsub.domain.errors import InvalidInput
from fairsub.domain.money import Money
from fairsub.domain.subscriptions import Status, Subscription
from fairsub.services import accounts, billing, checkout, payment_methods, reconcile
from fairsub.services import subscriptions as subs
from fairsub.services.ports import CardDetails, ChargeResult, GatewayTimeout
from tests.builders import at_once, seeded
from tests.fakes import FakeClock, FakeGateway, FakeMailer

OK, DECLINE, TIMEOUT = "4242424242424242", "4000000000000002", "4000000000000119"
CLIENT = checkout.Client("203.0.113.9", "Mozilla/5.0 (X11; Linux x86_64) pytest")


def sam(container: Container) -> Account:
    """The demo customer with no subscriptions (United States, USD)."""
    seeded(container)
    with container.uows().read() as uow:
        found = uow.accounts.by_email("sam@example.com")
    assert found is not None
    return found[0]


def quiet(container: Container) -> None:
    """Nobody else renews, so a moved clock charges only what the test bought."""
    with container.engine.begin() as connection:
        connection.execute(update(subscriptions).values(auto_renew=False, status="canceled"))


def new_customer(container: Container, region: str) -> Account:
    return accounts.create_account(
        container.uows(),
        container.clock,
        container.hasher,
        email=f"new-{region.lower()}@example.com",
        name="New Customer",
        password="correct horse battery",
        region=container.catalog().regions[region],
        address=CLIENT.address,
        user_agent=CLIENT.user_agent,
    ).account


def order(
    container: Container,
    account: Account,
    plan: str = "antivirus-annual",
    *,
    auto_renew: bool | None = True,
    number: str | None = OK,
    **changes: object,
) -> checkout.Order:
    shown = checkout.offer(container.catalog(), plan, account.region, container.clock.now())
    values: dict[str, object] = {
        "plan_code": plan,
        "auto_renew": auto_renew,
        "accepted_terms": True,
        "terms_version": checkout.TERMS_VERSION,
        "price_shown": shown.price,
        "card": CardDetails(number, 12, 2030, "123") if number else None,
    }
    values.update(changes)
    return checkout.Order(**values)  # type: ignore[arg-type]


def buy(
    container: Container, account: Account, plan: str = "antivirus-annual", **kw: object
) -> checkout.Purchase:
    gateway = kw.pop("gateway", container.gateway)
    return checkout.purchase(
        container.uows,
        container.clock,
        gateway,  # type: ignore[arg-type]
        container.catalog(),
        account_id=account.id,
        order=order(container, account, plan, **kw),  # type: ignore[arg-type]
        client=CLIENT,
    )


def sub(container: Container, account: Account, subscription_id: int) -> Subscription:
    found, _ = subs.get_subscription(container.uows(), account.id, subscription_id)
    return found


def rows(container: Container, table, **where: object) -> int:  # type: ignore[no-untyped-def]
    query = select(func.count()).select_from(table)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    with container.engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def fake(container: Container) -> FakeGateway:
    assert isinstance(container.gateway, FakeGateway)
    return container.gateway


class AnswerLost(FakeGateway):
    """The gateway decides, and then the answer is lost on the way back."""

    def charge(
        self, idempotency_key: str, amount: Money, card_token: str, description: str
    ) -> ChargeResult:
        super().charge(idempotency_key, amount, card_token, description)
        raise GatewayTimeout("answer lost")


class ProcessKilled(Exception):
    pass


class Killed(FakeGateway):
    def charge(
        self, idempotency_key: str, amount: Money, card_token: str, description: str
    ) -> ChargeResult:
        raise ProcessKilled


# --- paying ----------------------------------------------------------------------------


def test_purchase_charges_once_and_starts_the_subscription(container: Container) -> None:
    buyer = sam(container)

    bought = buy(container, buyer)

    assert bought.state is checkout.PurchaseState.PAID
    started = sub(container, buyer, bought.subscription_id)
    assert (started.status, started.auto_renew) == (Status.ACTIVE, True)
    assert started.price == Money(3999, "USD")
    assert started.payment_method is not None and started.payment_method.last4 == "4242"
    assert (
        rows(container, invoices, subscription_id=started.id, status="paid", kind="purchase") == 1
    )
    assert rows(container, payment_attempts, subscription_id=started.id, status="succeeded") == 1
    assert len(fake(container).charges) == 1
    assert reconcile.reconcile(container.uows, container.gateway)[1] == []


def test_c18_purchase_email_has_renewal_terms_refund_policy_and_direct_turn_off_link(
    container: Container, mailer: FakeMailer
) -> None:
    buyer = sam(container)
    bought = buy(container, buyer)

    container.relay.drain()

    (mail,) = [m for m in mailer.sent if "order" in m.subject]
    assert mail.subject == f"Your Larkspur Antivirus order — receipt {bought.invoice_number}"
    turn_off = f"/account/subscriptions/{bought.subscription_id}/turn-off"
    assert turn_off in mail.text and f'{turn_off}"' in mail.html
    for part in (mail.text, " ".join(re.sub(r"<[^>]+>", "", mail.html).split())):
        assert "renews automatically every year at $39.99 until you cancel" in part
        assert "full refund if you ask within 60 days of buying, or of any renewal" in part
        assert "withdraw" not in part  # no statutory withdrawal right in the US
    assert "Next charge:" in mail.text and "November 27, 2027" in mail.text


def test_purchase_email_in_the_uk_states_the_withdrawal_right_and_monthly_refund_window(
    container: Container, mailer: FakeMailer
) -> None:
    seeded(container)
    buyer = new_customer(container, "GB")

    buy(container, buyer, "antivirus-monthly")
    container.relay.drain()

    (mail,) = [m for m in mailer.sent if "order" in m.subject]
    assert "within 14 days of your first purchase" in mail.text
    assert "legal right to withdraw from this contract within 14 days" in mail.text
    assert "£4.49" in mail.text


def test_declined_card_buys_nothing_says_so_and_leaves_the_way_open_to_retry(
    container: Container, mailer: FakeMailer
) -> None:
    buyer = sam(container)

    with pytest.raises(InvalidInput, match=r"declined\b.*Nothing was charged"):
        buy(container, buyer, number=DECLINE)

    (failed,) = subs.list_subscriptions(container.uows(), buyer.id)
    assert (failed.status, failed.auto_renew) == (Status.EXPIRED, False)
    assert not failed.is_entitled(container.clock.now())
    assert rows(container, invoices, status="void") == 1
    container.relay.drain()
    assert not [m for m in mailer.sent if "order" in m.subject]  # the page told them
    again = buy(container, buyer)  # another card works, and is not refused as a duplicate
    assert again.state is checkout.PurchaseState.PAID


def test_lost_answer_leaves_the_order_pending_until_the_janitor_settles_it(
    container: Container, mailer: FakeMailer
) -> None:
    buyer = sam(container)

    bought = buy(container, buyer, number=TIMEOUT)

    assert bought.state is checkout.PurchaseState.PENDING
    pending = sub(container, buyer, bought.subscription_id)
    assert pending.status is Status.INCOMPLETE
    assert rows(container, payment_attempts, status=AttemptStatus.UNKNOWN.value) == 1
    with pytest.raises(InvalidInput, match="still being confirmed"):
        buy(container, buyer)  # no second order while the first one's answer is missing

    summary = billing.run(container.uows, container.gateway, container.clock)

    assert (summary.settled, summary.charged) == (1, 1)
    assert sub(container, buyer, bought.subscription_id).status is Status.ACTIVE
    assert rows(container, invoices, status="paid") == 1
    assert len(fake(container).charges) == 1  # asked about, never charged again
    container.relay.drain()
    assert [m.subject for m in mailer.sent if "order" in m.subject] == [
        f"Your Larkspur Antivirus order — receipt {bought.invoice_number}"
    ]
    assert checkout.receipt(container.uows(), buyer.id, bought.subscription_id).state is (
        checkout.PurchaseState.PAID
    )


def test_janitor_records_a_lost_decline_and_emails_the_customer(
    container: Container, mailer: FakeMailer
) -> None:
    buyer = sam(container)
    losing = AnswerLost()

    bought = buy(container, buyer, number=DECLINE, gateway=losing)
    assert bought.state is checkout.PurchaseState.PENDING

    summary = billing.settle_unknown(container.uows, losing, container.clock)

    assert (summary.settled, summary.declined) == (1, 1)
    assert sub(container, buyer, bought.subscription_id).status is Status.EXPIRED
    assert rows(container, invoices, status="void") == 1
    container.relay.drain()
    (mail,) = [m for m in mailer.sent if "order" in m.subject]
    assert mail.subject == "Your Larkspur Antivirus order did not go through"
    assert "Nothing was charged" in mail.text and "/plans" in mail.text
    assert checkout.receipt(container.uows(), buyer.id, bought.subscription_id).state is None


def test_an_order_whose_request_died_before_charging_is_charged_once_by_the_janitor(
    container: Container, clock: FakeClock
) -> None:
    buyer = sam(container)
    with pytest.raises(ProcessKilled):  # the web process dies before the charge goes out
        buy(container, buyer, gateway=Killed())
    assert billing.settle_unknown(container.uows, container.gateway, clock).settled == 0

    clock.advance(minutes=11)  # the purchase's lease runs out
    summary = billing.settle_unknown(container.uows, container.gateway, clock)

    assert (summary.settled, summary.charged) == (1, 1)
    (bought,) = subs.list_subscriptions(container.uows(), buyer.id)
    assert bought.status is Status.ACTIVE
    assert len(fake(container).charges) == 1


# --- trials and fixed terms ------------------------------------------------------------


def test_trial_charges_nothing_until_it_ends_then_the_billing_run_charges_it(
    container: Container, clock: FakeClock, mailer: FakeMailer
) -> None:
    buyer = sam(container)
    quiet(container)
    start = clock.now()

    bought = buy(container, buyer, "identity-monthly")

    assert bought.state is checkout.PurchaseState.TRIAL
    trial = sub(container, buyer, bought.subscription_id)
    assert trial.status is Status.TRIALING
    assert trial.trial_ends_at == trial.period.end == start + timedelta(days=30)
    assert fake(container).calls == 0
    container.relay.drain()
    (mail,) = [m for m in mailer.sent if "order" in m.subject]
    assert "Charged today:   $0.00" in mail.text
    assert "Last day to cancel without charge: December 26, 2026" in mail.text
    assert f"/account/subscriptions/{trial.id}/turn-off" in mail.text

    clock.set(start + timedelta(days=29))
    assert billing.run(container.uows, container.gateway, clock).charged == 0
    clock.set(start + timedelta(days=30, minutes=1))
    summary = billing.run(container.uows, container.gateway, clock)

    assert summary.charged == 1
    paid = sub(container, buyer, bought.subscription_id)
    assert paid.status is Status.ACTIVE
    assert paid.period.start == start + timedelta(days=30)
    assert rows(container, payment_attempts, status="succeeded") == 1
    assert next(iter(fake(container).charges.values())).amount == Money(999, "USD")


def test_c13_trial_turned_off_in_time_is_never_charged(
    container: Container, clock: FakeClock
) -> None:
    buyer = sam(container)
    quiet(container)
    bought = buy(container, buyer, "identity-monthly")
    subs.turn_off_auto_renew(
        container.uows(),
        clock,
        account=buyer,
        subscription_id=bought.subscription_id,
        actor=f"customer:{buyer.id}",
        channel="portal",
    )
    clock.advance(days=45)
    billing.run(container.uows, container.gateway, clock)

    assert fake(container).calls == 0
    assert sub(container, buyer, bought.subscription_id).status is Status.EXPIRED


def test_one_term_only_is_paid_now_and_never_renewed(
    container: Container, clock: FakeClock, mailer: FakeMailer
) -> None:
    buyer = sam(container)
    quiet(container)

    bought = buy(container, buyer, "identity-monthly", auto_renew=False)  # no trial this way

    fixed = sub(container, buyer, bought.subscription_id)
    assert bought.state is checkout.PurchaseState.PAID
    assert (fixed.status, fixed.auto_renew) == (Status.CANCELED, False)
    assert fixed.is_entitled(clock.now())
    container.relay.drain()
    (mail,) = [m for m in mailer.sent if "order" in m.subject]
    assert "it does not renew" in mail.text and "turn-off" not in mail.text
    clock.set(fixed.period.end + timedelta(days=40))
    billing.run(container.uows, container.gateway, clock)
    assert len(fake(container).charges) == 1
    assert sub(container, buyer, bought.subscription_id).status is Status.EXPIRED


# --- consent and what the customer must choose ----------------------------------------


def test_c17_consent_record_keeps_customer_time_ip_user_agent_terms_and_price(
    container: Container, clock: FakeClock
) -> None:
    buyer = sam(container)
    bought = buy(container, buyer, "identity-monthly")

    with container.engine.connect() as connection:
        (row,) = connection.execute(select(consents)).all()
    assert row.account_id == buyer.id and row.subscription_id == bought.subscription_id
    assert row.at == clock.now().replace(microsecond=0)
    assert (row.address, row.user_agent) == (CLIENT.address, CLIENT.user_agent)
    assert row.terms_version == checkout.TERMS_VERSION
    assert (row.price_minor, row.currency, row.auto_renew) == (999, "USD", True)
    assert "Renews automatically every month at USD 9.99 until cancelled" in row.disclosure
    assert "Free trial: 30 days" in row.disclosure
    assert "Last day to cancel without charge: 2026-12-26" in row.disclosure
    assert "How to cancel:" in row.disclosure


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"auto_renew": None}, "Choose how your subscription continues"),
        ({"accepted_terms": False}, "accept the terms"),
        ({"terms_version": "2020-01-01"}, "terms changed"),
        ({"price_shown": Money(1, "USD")}, "price changed"),
        ({"card": None}, "Enter your card details"),
        ({"payment_method_id": 999999}, "either a card on file or a new card"),
    ],
)
def test_c16_an_order_without_a_clear_choice_is_refused_and_changes_nothing(
    container: Container, changes: dict[str, object], message: str
) -> None:
    buyer = sam(container)
    before = rows(container, subscriptions)

    with pytest.raises(InvalidInput, match=message):
        buy(container, buyer, **changes)

    assert rows(container, subscriptions) == before
    assert rows(container, consents) == 0
    assert fake(container).calls == 0


def test_someone_elses_card_cannot_pay(container: Container) -> None:
    buyer = sam(container)
    with container.uows().read() as uow:
        found = uow.accounts.by_email("erika@example.com")
        assert found is not None
        (theirs,) = uow.payment_methods.for_account(found[0].id)
    with pytest.raises(InvalidInput, match="cards on file"):
        buy(container, buyer, number=None, payment_method_id=theirs[0])
    assert fake(container).calls == 0


def test_a_card_on_file_can_pay(container: Container) -> None:
    buyer = sam(container)
    with container.uows().read() as uow:
        ((card_id, _, _),) = uow.payment_methods.for_account(buyer.id)

    bought = buy(container, buyer, number=None, payment_method_id=card_id)

    assert bought.state is checkout.PurchaseState.PAID
    with container.uows().read() as uow:
        assert len(uow.payment_methods.for_account(buyer.id)) == 1  # no new card stored


def test_a_second_order_for_a_product_already_held_is_refused(container: Container) -> None:
    buyer = sam(container)
    buy(container, buyer)
    with pytest.raises(InvalidInput, match="You already have Larkspur Antivirus"):
        buy(container, buyer, "antivirus-monthly")  # also what a double-submitted form hits
    assert len(fake(container).charges) == 1


# --- new customers ---------------------------------------------------------------------


def test_a_new_account_takes_its_regions_currency_locale_and_zone_and_is_signed_in(
    container: Container,
) -> None:
    seeded(container)
    region = container.catalog().regions["DE"]

    signed_in = accounts.create_account(
        container.uows(),
        container.clock,
        container.hasher,
        email=" Neu@Example.com ",
        name="  Jana   Neu ",
        password="correct horse battery",
        region=region,
        address="203.0.113.9",
        user_agent="pytest",
    )

    found = accounts.current_account(container.uows(), container.clock, signed_in.session_token)
    assert found is not None
    assert (found.email, found.name, found.region) == ("neu@example.com", "Jana Neu", "DE")
    assert (found.locale, found.timezone) == ("de_DE", "Europe/Berlin")
    shown = checkout.offer(
        container.catalog(), "antivirus-annual", found.region, container.clock.now()
    )
    assert shown.price == Money(3999, "EUR") and shown.withdrawal_right


@pytest.mark.parametrize(
    ("email", "name", "password", "message"),
    [
        ("demo@example.com", "Alex", "long enough password", "already an account"),
        ("not-an-email", "Alex", "long enough password", "Enter your email address"),
        ("new@example.com", "   ", "long enough password", "Enter your name"),
        ("new@example.com", "Alex", "short", "at least 10 characters"),
    ],
)
def test_account_creation_refuses_what_cannot_work(
    container: Container, email: str, name: str, password: str, message: str
) -> None:
    seeded(container)
    with container.uows().read() as uow:
        before = uow.accounts.count()
    with pytest.raises(InvalidInput, match=message):
        accounts.create_account(
            container.uows(),
            container.clock,
            container.hasher,
            email=email,
            name=name,
            password=password,
            region=container.catalog().regions["US"],
            address="203.0.113.9",
            user_agent="pytest",
        )
    with container.uows().read() as uow:
        assert uow.accounts.count() == before


# --- payment methods -------------------------------------------------------------------


def test_a_new_card_replaces_the_card_of_every_direct_subscription(container: Container) -> None:
    data = seeded(container)

    added = payment_methods.add_card(
        container.uows,
        container.clock,
        container.gateway,
        account_id=data.alex.id,
        card=CardDetails("5555555555554444", 4, 2031, "321"),
        actor=f"customer:{data.alex.id}",
        channel="portal",
    )

    assert sorted(added.used_for) == sorted([data.annual.id, data.monthly.id])
    wallet = payment_methods.wallet(container.uows, data.alex.id)
    # The card it replaced pays for nothing now: kept on record, no longer on file.
    assert [c.card.last4 for c in wallet.cards] == ["4444"]
    assert {s.id for s in wallet.subscriptions} == {data.annual.id, data.monthly.id}
    assert all(s.payment_method and s.payment_method.last4 == "4444" for s in wallet.subscriptions)
    resold, _ = subs.get_subscription(container.uows(), data.alex.id, data.resold.id)
    assert resold.payment_method is None  # paid at the reseller


def test_a_new_card_retries_a_past_due_subscription_now(
    container: Container, clock: FakeClock
) -> None:
    data = seeded(container)
    with container.engine.begin() as connection:  # only the monthly one renews, on a bad card
        connection.execute(
            update(subscriptions)
            .where(subscriptions.c.id != data.monthly.id)
            .values(auto_renew=False, status="canceled")
        )
        from fairsub.adapters.db.tables import payment_methods as cards

        connection.execute(update(cards).values(token="tok_decline_1"))
    clock.set(data.monthly.period.end + timedelta(minutes=1))
    assert billing.run(container.uows, container.gateway, clock).declined == 1
    assert sub(container, data.alex, data.monthly.id).status is Status.PAST_DUE
    clock.advance(hours=2)  # the next scheduled retry is a day after the failure
    assert billing.run(container.uows, container.gateway, clock).declined == 0

    added = payment_methods.add_card(
        container.uows,
        clock,
        container.gateway,
        account_id=data.alex.id,
        card=CardDetails(OK, 12, 2030, "123"),
        actor=f"customer:{data.alex.id}",
        channel="portal",
    )
    assert added.retrying == [data.monthly.id]
    summary = billing.run(container.uows, container.gateway, clock)

    assert summary.charged == 1
    renewed = sub(container, data.alex, data.monthly.id)
    assert renewed.status is Status.ACTIVE
    assert renewed.period.start == data.monthly.period.end
    assert renewed.payment_method is not None and renewed.payment_method.last4 == "4242"


def test_a_double_submitted_order_is_bought_and_charged_once(container: Container) -> None:
    buyer = sam(container)

    def submit() -> object:
        try:
            return buy(container, buyer)
        except InvalidInput as refused:
            return refused

    outcomes = at_once(submit)

    assert sorted(type(o).__name__ for o in outcomes) == ["InvalidInput", "Purchase"]
    assert rows(container, subscriptions, account_id=buyer.id) == 1
    assert len(fake(container).charges) == 1
