"""Withdrawing from a contract within 14 days, without signing in (C24-C27), against real
databases: full and proportionate refunds, the exact end of the period, the same answer
for everything that does not match, once only, and the throttle."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from fairsub.adapters.db.tables import (
    audit_events,
    cancellations,
    consents,
    outbox,
    payment_attempts,
    refunds,
    subscriptions,
)
from fairsub.bootstrap import Container
from fairsub.domain.accounts import Account
from fairsub.domain.errors import InvalidInput, TooManyAttempts
from fairsub.domain.money import Money
from fairsub.domain.references import new_reference
from fairsub.domain.refunding import RefundKind, RefundStatus
from fairsub.domain.refunds import RefundPolicy
from fairsub.domain.subscriptions import Status
from fairsub.services import accounts, billing, checkout, withdrawal
from fairsub.services import subscriptions as subs
from fairsub.services.ports import CardDetails
from fairsub.services.withdrawal import WithdrawalReceipt
from tests.builders import at_once, seeded, turn_off
from tests.fakes import FakeClock, FakeGateway, FakeMailer

CLIENT = checkout.Client("203.0.113.9", "Mozilla/5.0 pytest")
JANA = "jana@example.com"
# The law alone, without the demo operator's more generous rules.
STATUTORY_ONLY = RefundPolicy(rules=())
PHONE = re.compile(r"(?<![\w.-])\+?\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}(?![\w-])")  # as test_docs


def customer(container: Container, region: str = "DE", email: str = JANA) -> Account:
    return accounts.create_account(
        container.uows(),
        container.clock,
        container.hasher,
        email=email,
        name="Jana Neu",
        password="correct horse battery",
        region=container.catalog().regions[region],
        address=CLIENT.address,
        user_agent=CLIENT.user_agent,
    ).account


def buy(
    container: Container,
    account: Account,
    plan: str = "antivirus-annual",
    *,
    auto_renew: bool = True,
    immediate_start: bool = False,
    waived: bool = False,
) -> checkout.Purchase:
    catalog = container.catalog()
    shown = checkout.offer(catalog, plan, account.region, container.clock.now())
    return checkout.purchase(
        container.uows,
        container.clock,
        container.gateway,
        catalog,
        account_id=account.id,
        order=checkout.Order(
            plan_code=plan,
            auto_renew=auto_renew,
            accepted_terms=True,
            terms_version=checkout.TERMS_VERSION,
            price_shown=shown.price,
            card=CardDetails("4242424242424242", 12, 2030, "123"),
            immediate_start=immediate_start,
            withdrawal_right_waived=waived,
        ),
        client=CLIENT,
    )


def withdraw(
    container: Container,
    contract: object,
    *,
    email: str = JANA,
    policy: RefundPolicy | None = None,
    address: str = CLIENT.address,
) -> WithdrawalReceipt:
    return withdrawal.withdraw(
        container.uows,
        container.gateway,
        container.clock,
        policy or container.refund_policy(),
        email=email,
        name="Jana Neu",
        contract=str(contract),
        reason="Changed my mind",
        address=address,
        user_agent=CLIENT.user_agent,
    )


def rows(container: Container, table, **where: object) -> int:  # type: ignore[no-untyped-def]
    query = select(func.count()).select_from(table)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    with container.engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def state(container: Container) -> tuple[object, ...]:
    """Everything a withdrawal would change (the throttle's own rows aside)."""
    with container.engine.connect() as connection:
        statuses = connection.execute(
            select(subscriptions.c.id, subscriptions.c.status, subscriptions.c.auto_renew).order_by(
                subscriptions.c.id
            )
        ).all()
    tables = (refunds, cancellations, outbox, audit_events)
    return (tuple(statuses), *(rows(container, t) for t in tables))


def status_of(container: Container, account: Account, subscription_id: int) -> Status:
    found, _ = subs.get_subscription(container.uows(), account.id, subscription_id)
    return found.status


def withdrawal_mails(container: Container, mailer: FakeMailer) -> list:  # type: ignore[type-arg]
    container.relay.drain()
    return [m for m in mailer.sent if "withdrawal" in m.subject]


def gateway(container: Container) -> FakeGateway:
    assert isinstance(container.gateway, FakeGateway)
    return container.gateway


@pytest.fixture
def jana(container: Container) -> Account:
    seeded(container)
    return customer(container)


# --- it matches: the refund, the record, the acknowledgement ---------------------------


def test_c24_c26_withdrawal_within_14_days_refunds_in_full_and_emails_the_account(
    container: Container, clock: FakeClock, mailer: FakeMailer, jana: Account
) -> None:
    bought = buy(container, jana)
    clock.advance(days=3)

    receipt = withdraw(container, bought.invoice_number, email="  Jana@Example.com ")

    assert receipt == WithdrawalReceipt(clock.now())
    assert status_of(container, jana, bought.subscription_id) is Status.REFUNDED
    with container.uows().read() as uow:
        (refund,) = uow.refunds.for_account(jana.id)
        cancellation = uow.cancellations.open_for(bought.subscription_id)
    assert cancellation is not None
    assert (refund.kind, refund.amount) == (RefundKind.WITHDRAWAL, Money(3999, "EUR"))
    assert refund.status is RefundStatus.SENT  # sent to the card at once (C26, C32)
    assert [r.amount for r in gateway(container).refunds.values()] == [Money(3999, "EUR")]
    assert refund.reference == cancellation.reference
    assert cancellation.declaration.startswith("Withdrawal from contract: I withdraw")
    assert f"receipt {bought.invoice_number}" in cancellation.declaration
    assert "Reason: Changed my mind" in cancellation.declaration
    assert cancellation.received_at == clock.now()
    assert rows(container, audit_events, action="portal:subscription:withdrawn") == 1

    (mail,) = withdrawal_mails(container, mailer)
    assert mail.to == JANA
    assert mail.subject == (
        f"We received your withdrawal from Larkspur Antivirus — reference {refund.reference}"
    )
    for text in (mail.text, mail.html):  # C25: content, date and time with the zone
        assert "30 November 2026" in text and "13:00:00 CET" in text
        assert "Withdrawal from contract: I withdraw" in text
        assert "39,99\xa0€" in text and "everything you paid" in text
        assert "Visa ending 4242" in text and "There is no fee" in text
        assert "14 December 2026" in text  # the refund's latest date: within 14 days
        assert not PHONE.search(text)  # C30


def test_c27_both_boxes_at_checkout_keep_back_the_days_used(
    container: Container, clock: FakeClock, mailer: FakeMailer, jana: Account
) -> None:
    bought = buy(container, jana, "antivirus-monthly", immediate_start=True, waived=True)
    clock.advance(days=3)

    withdraw(container, bought.invoice_number, policy=STATUTORY_ONLY)

    with container.uows().read() as uow:
        (refund,) = uow.refunds.for_account(jana.id)
    # 27 November to 27 December is 30 days; 3 of them were used.
    assert refund.amount == Money(499 * 27 // 30, "EUR")
    (mail,) = withdrawal_mails(container, mailer)
    assert "4,49\xa0€" in mail.text and "less 0,50\xa0€ for the days" in mail.text


def test_c27_one_box_alone_leaves_the_right_whole(
    container: Container, clock: FakeClock, jana: Account
) -> None:
    bought = buy(container, jana, "antivirus-monthly", immediate_start=True)
    clock.advance(days=3)

    withdraw(container, bought.invoice_number, policy=STATUTORY_ONLY)

    with container.uows().read() as uow:
        (refund,) = uow.refunds.for_account(jana.id)
    assert refund.amount == Money(499, "EUR")


def test_c27_the_refund_policy_still_applies_when_it_gives_more_than_the_law(
    container: Container, clock: FakeClock, jana: Account
) -> None:
    # The demo policy refunds a first annual purchase in full for 60 days.
    bought = buy(container, jana, immediate_start=True, waived=True)
    clock.advance(days=10)

    withdraw(container, bought.invoice_number)

    with container.uows().read() as uow:
        (refund,) = uow.refunds.for_account(jana.id)
    assert refund.amount == Money(3999, "EUR")


def test_c27_boxes_are_kept_with_the_consent_and_repeated_in_the_purchase_email(
    container: Container, mailer: FakeMailer, jana: Account
) -> None:
    sam = customer(container, "US", "sam.new@example.com")
    buy(container, jana, immediate_start=True, waived=True)
    buy(container, sam, immediate_start=True, waived=True)  # forged: no such boxes in the US

    with container.engine.connect() as connection:
        kept = dict(
            connection.execute(
                select(
                    consents.c.account_id,
                    consents.c.immediate_start & consents.c.withdrawal_right_waived,
                )
            ).all()
        )
    assert kept == {jana.id: True, sam.id: False}
    container.relay.drain()
    german = next(m for m in mailer.sent if m.to == JANA)
    assert "before the 14-day withdrawal period ends: yes" in german.text
    assert "I pay for the days used if I withdraw: yes" in german.text
    assert "/withdraw" in german.text
    assert "withdrawal period ends: <strong>yes</strong>" in german.html
    american = next(m for m in mailer.sent if m.to == "sam.new@example.com")
    assert "withdrawal period" not in american.text


def test_a_cancellation_reference_names_the_contract_too(
    container: Container, clock: FakeClock, jana: Account
) -> None:
    bought = buy(container, jana)
    with container.uows().read() as uow:
        subscription = uow.subscriptions.get(jana.id, bought.subscription_id)
    assert subscription is not None
    reference = turn_off(container, jana, subscription).reference
    clock.advance(days=1)

    withdraw(container, reference.lower().replace("-", " "))

    assert status_of(container, jana, bought.subscription_id) is Status.REFUNDED


def test_withdrawing_from_a_trial_stops_the_first_charge_and_refunds_nothing(
    container: Container, clock: FakeClock, mailer: FakeMailer, jana: Account
) -> None:
    bought = buy(container, jana, "identity-monthly")  # 30 days free
    clock.advance(days=2)

    withdraw(container, bought.invoice_number)

    found, cancellation = subs.get_subscription(container.uows(), jana.id, bought.subscription_id)
    assert (found.status, found.auto_renew) == (Status.CANCELED, False)
    assert cancellation is not None and cancellation.declaration.startswith("Withdrawal")
    assert rows(container, refunds) == 0
    (mail,) = withdrawal_mails(container, mailer)
    assert "Nothing was charged for this subscription and nothing will be" in mail.text
    clock.advance(days=40)
    billing.renew_due(container.uows, container.gateway, clock)
    assert rows(container, payment_attempts, subscription_id=bought.subscription_id) == 0


# --- the period ends to the second ------------------------------------------------------


@pytest.mark.parametrize(
    ("after", "withdrawn"),
    [(timedelta(days=14), True), (timedelta(days=14, seconds=1), False)],
)
def test_c24_the_withdrawal_period_ends_14_days_after_the_purchase_to_the_second(
    container: Container, clock: FakeClock, jana: Account, after: timedelta, withdrawn: bool
) -> None:
    bought = buy(container, jana)
    clock.advance(seconds=after.total_seconds())

    withdraw(container, bought.invoice_number)

    refunded = status_of(container, jana, bought.subscription_id) is Status.REFUNDED
    assert refunded is withdrawn
    assert rows(container, refunds) == int(withdrawn)


# --- everything else gets the same answer and changes nothing ---------------------------


def test_c24_no_match_gets_the_same_answer_and_changes_nothing(
    container: Container, clock: FakeClock, mailer: FakeMailer, jana: Account
) -> None:
    demo = seeded(container)
    mine = buy(container, jana)
    sam = customer(container, "US", "sam.new@example.com")
    american = buy(container, sam)
    kenji = customer(container, "JP", "kenji.new@example.com")
    japanese = buy(container, kenji)
    erika = buy(container, demo.erika, "identity-annual")  # Erika's own, also in Germany
    clock.advance(days=15)
    late = buy(container, customer(container, "DE", "late@example.com"))  # bought 15 days after
    clock.advance(days=1)
    container.relay.drain()
    mailer.sent.clear()
    before = state(container)

    answers = [
        withdraw(container, mine.invoice_number, email="nobody@example.com"),  # no account
        withdraw(container, erika.invoice_number),  # someone else's receipt
        withdraw(container, 99999),  # no such receipt
        withdraw(container, new_reference()),  # no such reference
        withdraw(container, american.invoice_number, email="sam.new@example.com"),  # US
        withdraw(container, japanese.invoice_number, email="kenji.new@example.com"),  # JP
        withdraw(container, mine.invoice_number),  # day 16: too late
    ]

    assert answers == [WithdrawalReceipt(clock.now())] * len(answers)
    assert state(container) == before
    assert withdrawal_mails(container, mailer) == []
    assert gateway(container).refunds == {}
    withdraw(container, late.invoice_number, email="late@example.com")  # still in time
    assert state(container) != before


def test_withdrawing_twice_refunds_once_and_emails_once(
    container: Container, clock: FakeClock, mailer: FakeMailer, jana: Account
) -> None:
    bought = buy(container, jana)
    first = withdraw(container, bought.invoice_number)
    clock.advance(minutes=5)
    after_first = state(container)

    second = withdraw(container, bought.invoice_number)

    assert second == WithdrawalReceipt(first.received_at + timedelta(minutes=5))
    assert state(container) == after_first
    assert rows(container, refunds) == 1 and len(gateway(container).refunds) == 1
    assert len(withdrawal_mails(container, mailer)) == 1


def test_two_withdrawals_at_the_same_moment_refund_once(
    container: Container, mailer: FakeMailer, jana: Account
) -> None:
    bought = buy(container, jana)
    answers = at_once(lambda: withdraw(container, bought.invoice_number))

    assert answers == [WithdrawalReceipt(container.clock.now())] * 2
    assert rows(container, refunds) == 1 and len(gateway(container).refunds) == 1
    assert rows(container, cancellations, subscription_id=bought.subscription_id) == 1
    assert len(withdrawal_mails(container, mailer)) == 1


def test_a_form_with_no_name_email_or_contract_is_refused_before_anything_is_looked_up(
    container: Container, jana: Account
) -> None:
    bought = buy(container, jana)
    for email, name, contract, message in [
        (JANA, " ", bought.invoice_number, withdrawal.NAME_MISSING),
        ("not-an-email", "Jana", bought.invoice_number, withdrawal.EMAIL_MISSING),
        (JANA, "Jana", "", withdrawal.CONTRACT_MISSING),
        (JANA, "Jana", "my antivirus", withdrawal.CONTRACT_MISSING),
    ]:
        with pytest.raises(InvalidInput, match=re.escape(message)):
            withdrawal.withdraw(
                container.uows,
                container.gateway,
                container.clock,
                STATUTORY_ONLY,
                email=email,
                name=name,
                contract=str(contract),
                address=CLIENT.address,
                user_agent="",
            )
    assert status_of(container, jana, bought.subscription_id) is Status.ACTIVE


# --- the throttle -----------------------------------------------------------------------


def test_requests_are_limited_per_email_address_per_hour(
    container: Container, clock: FakeClock, jana: Account
) -> None:
    bought = buy(container, jana)
    for n in range(withdrawal.MAX_PER_EMAIL):
        withdraw(container, 90000 + n, address=f"198.51.100.{n}")
    before = state(container)

    with pytest.raises(TooManyAttempts):
        withdraw(container, bought.invoice_number, address="198.51.100.99")
    assert state(container) == before

    clock.advance(hours=1, seconds=1)
    withdraw(container, bought.invoice_number)
    assert status_of(container, jana, bought.subscription_id) is Status.REFUNDED


def test_requests_are_limited_per_client_address_without_locking_out_sign_in(
    container: Container, jana: Account
) -> None:
    for n in range(withdrawal.MAX_PER_ADDRESS):
        withdraw(container, 1, email=f"guess{n}@example.com")
    with pytest.raises(TooManyAttempts):
        withdraw(container, 1, email="one-more@example.com")
    withdraw(container, 1, address="192.0.2.1")  # another address is not held back

    signed_in = accounts.sign_in(
        container.uows(),
        container.clock,
        container.hasher,
        email=JANA,
        password="correct horse battery",
        address=CLIENT.address,
        user_agent=CLIENT.user_agent,
    )
    assert signed_in.account.id == jana.id
