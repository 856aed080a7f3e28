"""Cancel now with a refund, against real SQLite and PostgreSQL: the offer the policy
gives, one transaction for the proof and the money, and the gateway asked once per key."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from fairsub.adapters.db.tables import audit_events, cancellations, outbox, payment_methods
from fairsub.adapters.db.tables import refunds as refund_rows
from fairsub.adapters.db.tables import subscriptions as subscription_rows
from fairsub.bootstrap import Container
from fairsub.domain.errors import NotAllowed, NotFound
from fairsub.domain.money import Money
from fairsub.domain.periods import Term
from fairsub.domain.references import is_valid_reference
from fairsub.domain.refunding import ArrivalWindows, RefundKind, RefundStatus
from fairsub.domain.refunds import ChargeKind, decide
from fairsub.domain.refunds import RefundKind as Outcome
from fairsub.domain.subscriptions import Status, Subscription
from fairsub.services import billing, cancel_refund, refunds, statements
from fairsub.services import subscriptions as subs
from fairsub.services.cancel_refund import CancelledWithRefund
from fairsub.services.refund_offers import RefundOffer
from fairsub.services.statements import LineKind, LineStatus
from tests.builders import Demo, at_once, seeded, turn_off
from tests.fakes import FakeClock, FakeGateway

# C30: what tests/test_docs.py calls a phone number (ISO dates in reasons are not).
PHONE = re.compile(r"(?<![\w.-])\+?\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}(?![\w-])")
ANNUAL_PRICE = Money(7999, "GBP")


def count(container: Container, table) -> int:  # type: ignore[no-untyped-def]
    with container.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def fake_gateway(container: Container) -> FakeGateway:
    gateway = container.gateway
    assert isinstance(gateway, FakeGateway)
    return gateway


def offer(container: Container, data: Demo, subscription: Subscription) -> RefundOffer | None:
    return cancel_refund.refund_offer(
        container.uows(), container.refund_policy(), container.clock, data.alex.id, subscription.id
    )


def cancel(
    container: Container,
    data: Demo,
    subscription: Subscription,
    shown: Money | None = ANNUAL_PRICE,
) -> CancelledWithRefund:
    return cancel_refund.cancel_with_refund(
        container.uows,
        container.gateway,
        container.clock,
        container.refund_policy(),
        account_id=data.alex.id,
        subscription_id=subscription.id,
        actor=f"customer:{data.alex.id}",
        channel="portal",
        shown_amount=shown,
    )


@pytest.fixture
def arrival(container: Container) -> ArrivalWindows:
    return container.refund_policy().arrival


@pytest.fixture
def data(container: Container) -> Demo:
    """The demo data with every period so far paid, as `fairsub demo` seeds it."""
    return seeded(container, history=True)


def test_c28_an_annual_plan_bought_20_days_ago_is_offered_its_full_price_back_until_day_60(
    container: Container, data: Demo
) -> None:
    now = container.clock.now()
    found = offer(container, data, data.annual)

    expected = decide(
        container.refund_policy(),
        region="GB",
        term=Term.YEAR,
        kind=ChargeKind.FIRST_PURCHASE,
        charged=ANNUAL_PRICE,
        charged_at=data.annual.started_at,
        period=data.annual.period,
        already_refunded=Money.zero("GBP"),
        now=now,
        eu_or_uk=True,
    )
    assert found is not None and found.allowed
    assert found.decision == expected
    assert (found.amount, found.decision.kind) == (ANNUAL_PRICE, Outcome.FULL)
    assert found.deadline == data.annual.started_at + timedelta(days=60)
    assert "60 days" in found.reason
    assert found.card is not None and found.card.last4 == "4242"
    assert timedelta(days=5) <= found.arrives_from - now < found.arrives_by - now


def test_c28_cancel_with_refund_ends_now_keeps_proof_sends_the_refund_once_and_emails(
    container: Container, data: Demo, clock: FakeClock
) -> None:
    now = clock.now()
    audit_before = count(container, audit_events)

    done = cancel(container, data, data.annual)

    sub, _ = subs.get_subscription(container.uows(), data.alex.id, data.annual.id)
    assert (sub.status, sub.auto_renew) == (Status.REFUNDED, False)
    assert not sub.is_entitled(now) and sub.period.end <= now + timedelta(seconds=1)
    assert is_valid_reference(done.cancellation.reference)
    assert (done.cancellation.received_at, done.cancellation.ends_at) == (now, sub.period.end)
    assert "refund GBP 79.99" in done.cancellation.declaration
    refund = done.refund
    assert (refund.amount, refund.kind, refund.reference) == (
        ANNUAL_PRICE,
        RefundKind.CANCEL_WITH_REFUND,
        done.cancellation.reference,
    )
    assert refund.status is RefundStatus.SENT and refund.arrives_by is not None
    gateway = fake_gateway(container)
    assert list(gateway.refunds) == [refund.idempotency_key]
    assert gateway.refunds[refund.idempotency_key].amount == ANNUAL_PRICE
    # The subscription change, the cancellation, the refund request and its sending.
    with container.engine.connect() as connection:
        actions = connection.execute(
            select(audit_events.c.action).where(audit_events.c.seq > audit_before)
        ).scalars()
        assert sorted(actions) == [
            "portal:refund:requested",
            "portal:subscription:cancelled_with_refund",
            "worker:refund:sent",
        ]

    container.relay.drain()
    (email,) = [m for m in container.mailer.sent if done.cancellation.reference in m.subject]  # type: ignore[attr-defined]
    assert email.to == "demo@example.com"
    reference = done.cancellation.reference
    assert (
        email.subject
        == f"Larkspur 360 cancelled — £79.99 refund on its way — reference {reference}"
    )
    for body in (email.text, email.html):
        assert done.cancellation.reference in body
        assert "£79.99" in body
        assert "within 60 days" in body  # the reason
        assert "Visa ending 4242" in body
        assert "5 to 10 business days" in body
        assert "ended" in body
        assert not PHONE.search(body)


def test_a_double_click_gives_one_refund_one_reference_and_one_email(
    container: Container, data: Demo, clock: FakeClock
) -> None:
    first = cancel(container, data, data.annual)
    clock.advance(seconds=2)
    second = cancel(container, data, data.annual)

    assert second.cancellation == first.cancellation
    assert second.refund.id == first.refund.id
    assert count(container, refund_rows) == 1
    assert len(fake_gateway(container).refunds) == 1
    with container.engine.connect() as connection:
        kinds = connection.execute(select(outbox.c.kind)).scalars().all()
    assert kinds.count("refund_confirmed") == 1


def test_two_simultaneous_requests_refund_once(container: Container, data: Demo) -> None:
    results = at_once(lambda: cancel(container, data, data.annual))

    assert len(results) == 2
    assert results[0].cancellation.reference == results[1].cancellation.reference
    assert count(container, refund_rows) == 1
    assert len(fake_gateway(container).refunds) == 1


@pytest.mark.parametrize("trouble", ["lost", "down"])
def test_a_refund_the_gateway_leaves_unknown_is_settled_by_the_janitor_with_the_same_key(
    container: Container, data: Demo, clock: FakeClock, trouble: str, arrival: ArrivalWindows
) -> None:
    gateway = fake_gateway(container)
    gateway.refunds_down = trouble

    done = cancel(container, data, data.annual)

    assert done.refund.status is RefundStatus.UNKNOWN
    sub, _ = subs.get_subscription(container.uows(), data.alex.id, data.annual.id)
    assert sub.status is Status.REFUNDED  # the cancellation stands, whatever the gateway did
    gateway.refunds_down = None
    clock.advance(minutes=1)
    assert refunds.settle(container.uows, container.gateway, clock, arrival=arrival) == 1
    assert refunds.settle(container.uows, container.gateway, clock, arrival=arrival) == 0

    with container.uows().read() as uow:
        settled = uow.refunds.get(done.refund.id)
    assert settled is not None and settled.status is RefundStatus.SENT
    assert gateway.refund_keys_asked == [done.refund.idempotency_key] * 2
    assert list(gateway.refunds) == [done.refund.idempotency_key]


def test_a_crash_between_the_commit_and_the_gateway_call_leaves_the_refund_to_the_janitor(
    container: Container,
    data: Demo,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    arrival: ArrivalWindows,
) -> None:
    def crash(*_: object, **__: object) -> None:
        raise SystemExit("killed after the commit")

    with monkeypatch.context() as patched:
        patched.setattr(refunds, "send", crash)
        with pytest.raises(SystemExit):
            cancel(container, data, data.annual)
    assert fake_gateway(container).refunds == {}
    with container.uows().read() as uow:
        (left,) = uow.refunds.for_account(data.alex.id)
    assert left.status is RefundStatus.REQUESTED

    clock.advance(minutes=3)
    assert refunds.settle(container.uows, container.gateway, clock, arrival=arrival) == 1

    with container.uows().read() as uow:
        sent = uow.refunds.get(left.id)
    assert sent is not None and sent.status is RefundStatus.SENT
    assert list(fake_gateway(container).refunds) == [left.idempotency_key]
    # The customer's retry finds it done: still one refund.
    assert cancel(container, data, data.annual).refund.id == left.id


def test_an_unexpected_gateway_error_still_shows_the_committed_cancellation(
    container: Container, data: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("the gateway said something nobody expected")

    monkeypatch.setattr(refunds, "send", broken)
    done = cancel(container, data, data.annual)

    assert done.refund.status is RefundStatus.REQUESTED
    assert is_valid_reference(done.cancellation.reference)


def test_a_monthly_plan_bought_95_days_ago_gets_no_offer_and_cannot_be_refunded(
    container: Container, data: Demo
) -> None:
    found = offer(container, data, data.monthly)
    assert found is not None and not found.allowed
    assert found.reason.startswith("No refund: the refund policy gives none for the renewal")
    before = (count(container, cancellations), count(container, refund_rows))

    with pytest.raises(NotAllowed, match="gives none for the renewal of a monthly plan"):
        cancel(container, data, data.monthly, shown=Money(449, "GBP"))

    sub, _ = subs.get_subscription(container.uows(), data.alex.id, data.monthly.id)
    assert (sub.status, sub.auto_renew) == (Status.ACTIVE, True)
    assert (count(container, cancellations), count(container, refund_rows)) == before
    assert count(container, outbox) == 0


def test_a_refund_figure_that_changed_since_it_was_shown_is_not_taken(
    container: Container, data: Demo
) -> None:
    with pytest.raises(NotAllowed, match=r"it is now GBP 79\.99"):
        cancel(container, data, data.annual, shown=Money(5000, "GBP"))
    sub, _ = subs.get_subscription(container.uows(), data.alex.id, data.annual.id)
    assert sub.status is Status.ACTIVE
    assert count(container, refund_rows) == 0


def test_after_the_60_days_the_annual_purchase_gets_no_offer(
    container: Container, data: Demo, clock: FakeClock
) -> None:
    clock.set(data.annual.started_at + timedelta(days=60, seconds=1))
    found = offer(container, data, data.annual)
    assert found is not None and not found.allowed
    assert "60-day refund window" in found.reason
    with pytest.raises(NotAllowed, match="closed"):
        cancel(container, data, data.annual, shown=None)


def test_with_no_payment_on_record_nothing_is_offered(container: Container) -> None:
    data = seeded(container)  # without its history: nothing was ever charged
    found = offer(container, data, data.annual)
    assert found is not None and not found.allowed
    assert "no payment on record" in found.reason


def test_a_reseller_subscription_has_no_refund_offer_here(container: Container) -> None:
    data = seeded(container)
    assert offer(container, data, data.resold) is None
    with pytest.raises(NotAllowed, match="Bluebird Software Store"):
        cancel(container, data, data.resold)


def test_a_past_due_subscription_has_no_refund_offer(
    container: Container, data: Demo, clock: FakeClock
) -> None:
    with container.engine.begin() as connection:
        method = connection.execute(
            select(subscription_rows.c.payment_method_id).where(
                subscription_rows.c.id == data.monthly.id
            )
        ).scalar_one()
        connection.execute(
            update(payment_methods)
            .where(payment_methods.c.id == method)
            .values(token="tok_decline_1")
        )
    clock.set(data.monthly.period.end + timedelta(minutes=1))
    billing.run(container.uows, container.gateway, clock)
    sub, _ = subs.get_subscription(container.uows(), data.alex.id, data.monthly.id)
    assert sub.status is Status.PAST_DUE

    found = offer(container, data, data.monthly)
    assert found is not None and not found.allowed
    assert "has not gone through" in found.reason


def test_auto_renew_already_off_can_still_be_cancelled_with_its_refund(
    container: Container, data: Demo
) -> None:
    turned_off = turn_off(container, data.alex, data.annual)
    done = cancel(container, data, data.annual)
    assert done.cancellation.reference != turned_off.reference
    assert done.refund.status is RefundStatus.SENT
    again = cancel_refund.options(
        container.uows(), container.refund_policy(), container.clock, data.alex.id, data.annual.id
    )
    assert again.offer is None
    assert again.done is not None and again.done.refund.id == done.refund.id


def test_someone_elses_subscription_is_not_found(
    container: Container, data: Demo, arrival: ArrivalWindows
) -> None:
    with pytest.raises(NotFound):
        cancel_refund.refund_offer(
            container.uows(), container.refund_policy(), container.clock, data.alex.id,
            data.erikas.id,
        )  # fmt: skip
    with pytest.raises(NotFound):
        cancel(container, data, data.erikas)
    assert (
        cancel_refund.by_reference(container.uows(), data.erika.id, "FS-0000-0000", arrival=arrival)
        is None
    )


def test_a_refunded_subscription_is_never_charged_again(
    container: Container, data: Demo, clock: FakeClock
) -> None:
    def annual_charges() -> list[str]:
        charged = fake_gateway(container).charges
        return [key for key in charged if key.split("-")[2] == str(data.annual.id)]

    cancel(container, data, data.annual)
    before = annual_charges()
    for days in (1, 30, 366):  # past where the period ended, and past the old renewal date
        clock.set(data.annual.period.end + timedelta(days=days))
        billing.run(container.uows, container.gateway, clock)
    assert annual_charges() == before
    sub, _ = subs.get_subscription(container.uows(), data.alex.id, data.annual.id)
    assert sub.status is Status.REFUNDED


def test_c31_the_statement_shows_the_refund_against_its_receipt_until_it_arrives(
    container: Container, data: Demo, clock: FakeClock, arrival: ArrivalWindows
) -> None:
    done = cancel(container, data, data.annual)

    lines = statements.statement(container.uows(), data.alex.id, arrival=arrival)
    refund_line, charge_line = [x for x in lines if x.subscription_id == data.annual.id][:2]
    assert refund_line.kind is LineKind.REFUND and charge_line.kind is LineKind.CHARGE
    assert refund_line.invoice_number == charge_line.invoice_number
    assert refund_line.amount == Money(-7999, "GBP")
    assert -refund_line.amount.amount_minor <= charge_line.amount.amount_minor
    assert (refund_line.status, refund_line.status_text) == (LineStatus.REFUND_SENT, "On its way")
    assert (refund_line.arrives_from, refund_line.arrives_by) == (
        done.refund.arrives_from,
        done.refund.arrives_by,
    )
    assert refund_line.reference == done.cancellation.reference
    receipt = statements.receipt(
        container.uows(), data.alex.id, charge_line.invoice_number, arrival=arrival
    )
    assert [r.amount for r in receipt.refunds] == [Money(-7999, "GBP")]
    # Its status no longer says just "Paid" (found on a walk through the demo).
    full = charge_line.amount == Money(7999, "GBP")
    assert receipt.status_text == (
        "Paid, then refunded in full" if full else "Paid, then GBP 79.99 refunded"
    )

    assert done.refund.arrives_by is not None
    clock.set(done.refund.arrives_by)
    refunds.settle(container.uows, container.gateway, clock, arrival=arrival)
    (arrived,) = [
        x
        for x in statements.statement(container.uows(), data.alex.id, arrival=arrival)
        if x.is_refund
    ]
    assert (arrived.status, arrived.status_text) == (LineStatus.REFUND_ARRIVED, "Arrived")
