"""Charge cases against real databases: queued for support, or, for a charge made after a
committed turn-off (invariant 1), refunded at once with an operator alert."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from structlog.testing import capture_logs

from fairsub.adapters.db.tables import payment_methods, subscriptions
from fairsub.bootstrap import Container
from fairsub.domain.billing import AttemptStatus, InvoiceKind, InvoiceStatus, PaymentAttempt
from fairsub.domain.charge_cases import CaseReason, CaseStatus
from fairsub.domain.errors import InvalidInput, NotAllowed, NotFound
from fairsub.domain.money import Money
from fairsub.domain.periods import Period, add_months
from fairsub.domain.references import is_valid_reference, new_reference
from fairsub.domain.refunding import RefundKind, RefundStatus
from fairsub.domain.subscriptions import Subscription
from fairsub.services import billing, billing_stages, cases, refunds
from fairsub.services import subscriptions as subs
from fairsub.services.ports import RefundResult
from tests.builders import Demo, refund_charge, seeded, turn_off
from tests.conftest import make_container
from tests.fakes import FakeClock, FakeGateway, FakeMailer

PHONE = re.compile(r"\+?\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}")  # C30: as in tests/test_docs.py


class RecordingGateway(FakeGateway):
    """The fake gateway, noting which charge each refund was paid against (C32)."""

    def __init__(self) -> None:
        super().__init__()
        self.refunded_charge: dict[str, str] = {}

    def refund(self, idempotency_key: str, charge_ref: str, amount: Money) -> RefundResult:
        self.refunded_charge[idempotency_key] = charge_ref
        return super().refund(idempotency_key, charge_ref, amount)


@pytest.fixture
def container(
    db_url: str, tmp_path: Path, clock: FakeClock, mailer: FakeMailer
) -> Iterator[Container]:
    built = make_container(db_url, tmp_path, clock, mailer, gateway=RecordingGateway())
    yield built
    built.close()


def gateway(container: Container) -> RecordingGateway:
    assert isinstance(container.gateway, RecordingGateway)
    return container.gateway


def only(container: Container, keep: Subscription) -> None:
    """Leave auto-renew on for this subscription only, so billing runs charge it alone."""
    with container.engine.begin() as connection:
        connection.execute(
            update(subscriptions)
            .where(subscriptions.c.id != keep.id)
            .values(auto_renew=False, status="canceled")
        )


def renew(container: Container, clock: FakeClock, data: Demo) -> PaymentAttempt:
    """Renew Alex's monthly plan once, through the billing engine; return that charge."""
    current, _ = subs.get_subscription(container.uows(), data.alex.id, data.monthly.id)
    clock.set(current.period.end + timedelta(minutes=1))
    assert billing.run(container.uows, container.gateway, clock).charged == 1
    return latest_charge(container, data)


def latest_charge(container: Container, data: Demo) -> PaymentAttempt:
    with container.uows().read() as uow:
        (charge, *_) = refunds.paid_charges(uow, data.alex.id, data.monthly.id)
    return charge.attempt


def rogue_charge(container: Container, clock: FakeClock, data: Demo) -> PaymentAttempt:
    """A renewal charge written straight into the ledger, bypassing the billing engine,
    for the period after Alex turned the monthly plan off: what invariant 1 forbids."""
    current, _ = subs.get_subscription(container.uows(), data.alex.id, data.monthly.id)
    clock.set(current.period.end + timedelta(minutes=1))
    with container.engine.connect() as connection:
        method_id, token = connection.execute(
            select(payment_methods.c.id, payment_methods.c.token)
            .join(subscriptions, subscriptions.c.payment_method_id == payment_methods.c.id)
            .where(subscriptions.c.id == data.monthly.id)
        ).one()
    key = f"rogue-{data.monthly.id}"
    result = container.gateway.charge(key, current.price, token, "a charge nobody asked for")
    now = clock.now()
    with container.uows().write() as uow:
        invoice = uow.billing.add_invoice(
            number=uow.billing.take_invoice_numbers(1),
            account_id=data.alex.id,
            subscription_id=data.monthly.id,
            kind=InvoiceKind.RENEWAL,
            period=Period(current.period.end, add_months(current.period.end, 1)),
            amount=current.price,
            at=now,
        )
        attempt = uow.billing.add_attempt(
            invoice=invoice,
            attempt_no=1,
            key=key,
            payment_method_id=method_id,
            payment_token=token,
            at=now,
        )
        uow.billing.settle_attempt(
            attempt.id, AttemptStatus.SUCCEEDED, now, gateway_ref=result.gateway_ref
        )
        uow.billing.set_invoice_status(invoice.id, InvoiceStatus.PAID, now)
        uow.commit()
    return latest_charge(container, data)


def ask(
    container: Container,
    data: Demo,
    attempt: PaymentAttempt,
    reason: CaseReason = CaseReason.UNKNOWN_CHARGE,
    account_id: int | None = None,
    note: str = "Never heard of it.",
):  # type: ignore[no-untyped-def]
    return cases.open_case(
        container.uows,
        container.gateway,
        container.clock,
        account_id=data.alex.id if account_id is None else account_id,
        charge_attempt_id=attempt.id,
        reason=reason,
        note=note,
        arrival=container.refund_policy().arrival,
    )


def decide(container: Container, case_id: int, *, refund: bool):  # type: ignore[no-untyped-def]
    return cases.resolve(
        container.uows,
        container.gateway,
        container.clock,
        case_id,
        refund=refund,
        note="Checked the renewal log.",
        actor="operator:test",
        arrival=container.refund_policy().arrival,
    )


def emails(container: Container, mailer: FakeMailer, subject: str) -> list[str]:
    container.relay.drain()
    return [m.text for m in mailer.sent if subject in m.subject]


def test_a_case_about_an_ordinary_charge_waits_for_support_with_a_reference_and_an_email(
    container: Container, clock: FakeClock, mailer: FakeMailer
) -> None:
    data = seeded(container)
    only(container, data.monthly)
    charge = renew(container, clock, data)

    with capture_logs() as logs:
        case = ask(container, data, charge)

    assert case.status is CaseStatus.OPEN and not case.alert and case.refund_id is None
    assert is_valid_reference(case.reference)
    queue = cases.list_cases(container.uows(), status=CaseStatus.OPEN)
    assert [item.case.reference for item in queue] == [case.reference]
    assert queue[0].customer_email == data.alex.email
    assert queue[0].amount == charge.amount
    assert cases.list_cases(container.uows(), alerts_only=True) == []
    assert not [entry for entry in logs if entry["log_level"] == "error"]
    (text,) = emails(container, mailer, f"case {case.reference}")
    assert "£4.49" in text and "Antivirus Monthly" in text
    assert "emails you the outcome" in text
    assert "never ask for bank details" in text
    assert PHONE.search(text) is None
    with container.uows().read() as uow:
        assert uow.refunds.for_charge(charge.id) == []


def test_a_note_keeps_its_lines_and_loses_its_control_characters(
    container: Container, clock: FakeClock
) -> None:
    # An escape sequence in a note would run in the terminal of whoever lists the cases.
    data = seeded(container)
    only(container, data.monthly)
    charge = renew(container, clock, data)
    case = ask(
        container, data, charge, note="\x1b[31mRED\x1b]0;pwned\x07 and\x00 more\r\nsecond   line"
    )
    assert case.note == "[31mRED ]0;pwned and more\nsecond line"


def test_asking_again_about_the_same_charge_returns_the_same_case_and_sends_nothing_new(
    container: Container, clock: FakeClock, mailer: FakeMailer
) -> None:
    data = seeded(container)
    only(container, data.monthly)
    charge = renew(container, clock, data)

    first = ask(container, data, charge)
    again = ask(container, data, charge, CaseReason.WRONG_AMOUNT)

    assert again.reference == first.reference
    assert len(cases.list_cases(container.uows())) == 1
    assert len(emails(container, mailer, "case ")) == 1


def test_someone_elses_charge_is_not_found_exactly_like_an_unknown_one(
    container: Container, clock: FakeClock
) -> None:
    data = seeded(container)
    only(container, data.monthly)
    charge = renew(container, clock, data)

    with pytest.raises(NotFound) as other:
        ask(container, data, charge, account_id=data.erika.id)
    with pytest.raises(NotFound) as unknown:
        cases.open_case(
            container.uows,
            container.gateway,
            clock,
            account_id=data.alex.id,
            charge_attempt_id=charge.id + 1000,
            reason="other",
            arrival=container.refund_policy().arrival,
        )

    assert other.value.message == unknown.value.message == cases.NO_SUCH_CHARGE
    assert cases.list_cases(container.uows()) == []


def test_a_case_needs_one_of_the_reasons(container: Container, clock: FakeClock) -> None:
    data = seeded(container)
    only(container, data.monthly)
    charge = renew(container, clock, data)
    with pytest.raises(InvalidInput, match="Choose what is wrong"):
        ask(container, data, charge, reason="because")  # type: ignore[arg-type]
    assert cases.list_cases(container.uows()) == []


def test_invariant_1_a_charge_after_a_committed_turn_off_is_refunded_in_full_and_alerts(
    container: Container, clock: FakeClock, mailer: FakeMailer
) -> None:
    data = seeded(container)
    only(container, data.monthly)
    cancellation = turn_off(container, data.alex, data.monthly)
    clock.advance(days=1)
    charge = rogue_charge(container, clock, data)

    with capture_logs() as logs:
        case = ask(container, data, charge, CaseReason.UNKNOWN_CHARGE)  # whatever they chose

    assert case.status is CaseStatus.REFUNDED and case.alert
    assert case.resolved_by == "system:cases"
    assert cancellation.reference in (case.resolution_note or "")
    with container.uows().read() as uow:
        (refund,) = uow.refunds.for_charge(charge.id)
    assert refund.id == case.refund_id
    assert refund.kind is RefundKind.CHARGED_AFTER_TURN_OFF
    assert refund.amount == charge.amount  # in full
    assert refund.status is RefundStatus.SENT  # sent after the commit, not left for later
    assert gateway(container).refunded_charge == {refund.idempotency_key: charge.gateway_ref}
    (alert,) = [entry for entry in logs if entry["log_level"] == "error"]
    assert alert["event"] == "charge_after_turn_off"
    assert alert["reference"] == case.reference
    assert alert["turn_off_reference"] == cancellation.reference
    alerts = cases.list_cases(container.uows(), alerts_only=True)
    assert [item.case.reference for item in alerts] == [case.reference]
    assert cases.list_cases(container.uows(), status=CaseStatus.OPEN) == []
    (text,) = emails(container, mailer, "is on its way back to your card")
    assert "should never have happened" in text
    assert cancellation.reference in text and case.reference in text


def test_a_turn_off_reversed_before_the_renewal_leaves_the_charge_to_support(
    container: Container, clock: FakeClock
) -> None:
    data = seeded(container)
    only(container, data.monthly)
    turn_off(container, data.alex, data.monthly)
    clock.advance(days=1)
    subs.turn_on_auto_renew(
        container.uows(),
        clock,
        account_id=data.alex.id,
        subscription_id=data.monthly.id,
        actor="customer",
        channel="portal",
    )
    charge = renew(container, clock, data)

    case = ask(container, data, charge, CaseReason.AFTER_CANCEL)

    assert case.status is CaseStatus.OPEN and not case.alert


def test_a_turn_off_that_lost_the_race_is_not_refunded_automatically(
    container: Container, clock: FakeClock
) -> None:
    data = seeded(container)
    only(container, data.monthly)
    clock.set(data.monthly.period.end + timedelta(minutes=1))
    work, _ = billing._claim(container.uows, clock, 10)  # the renewal committed first...
    cancellation = turn_off(container, data.alex, data.monthly)  # ...then the turn-off
    outcomes = billing_stages.charge_all(container.gateway, work, 1)
    billing._record(container.uows, clock, work, outcomes, billing.DunningPolicy())
    assert "had already started" in cancellation.declaration
    charge = latest_charge(container, data)

    with capture_logs() as logs:
        case = ask(container, data, charge, CaseReason.AFTER_CANCEL)

    assert case.status is CaseStatus.OPEN and not case.alert
    assert not [entry for entry in logs if entry["log_level"] == "error"]
    assert gateway(container).refunds == {}


def test_c32_support_refunds_the_charge_once_back_to_the_card_it_came_from(
    container: Container, clock: FakeClock, mailer: FakeMailer
) -> None:
    data = seeded(container)
    only(container, data.monthly)
    charge = renew(container, clock, data)
    case = ask(container, data, charge)

    resolved = decide(container, case.id, refund=True)

    assert resolved.status is CaseStatus.REFUNDED and not resolved.alert
    assert resolved.resolved_by == "operator:test"
    with container.uows().read() as uow:
        (refund,) = uow.refunds.for_charge(charge.id)
    assert (refund.kind, refund.amount, refund.status) == (
        RefundKind.CASE,
        charge.amount,
        RefundStatus.SENT,
    )
    assert refund.reference == case.reference
    assert gateway(container).refunded_charge == {refund.idempotency_key: charge.gateway_ref}
    with pytest.raises(NotAllowed, match="already refunded"):
        decide(container, case.id, refund=True)
    with pytest.raises(NotAllowed, match="already refunded"):
        decide(container, case.id, refund=False)
    assert len(gateway(container).refunds) == 1
    (text,) = emails(container, mailer, "is on its way back to your card")
    assert "Checked the renewal log." in text
    assert "back only to the card" in text


def test_support_rejects_a_case_with_a_note_the_customer_is_emailed(
    container: Container, clock: FakeClock, mailer: FakeMailer
) -> None:
    data = seeded(container)
    only(container, data.monthly)
    charge = renew(container, clock, data)
    case = ask(container, data, charge)

    resolved = decide(container, case.id, refund=False)

    assert resolved.status is CaseStatus.REJECTED
    assert resolved.resolution_note == "Checked the renewal log."
    with pytest.raises(NotAllowed, match="already rejected"):
        decide(container, case.id, refund=True)
    assert gateway(container).refunds == {}
    (text,) = emails(container, mailer, "the outcome of your question")
    assert "Why: Checked the renewal log." in text
    # After a rejection the customer may ask again: a new case, a new reference.
    again = ask(container, data, charge)
    assert again.reference != case.reference and again.status is CaseStatus.OPEN


def test_the_case_emails_keep_the_customers_own_words_as_the_case_page_does(
    container: Container, clock: FakeClock, mailer: FakeMailer
) -> None:
    """The emails said only the reason picked from the list; what the customer wrote was
    on the case page but missing from the proof in their inbox."""
    data = seeded(container)
    only(container, data.monthly)
    charge = renew(container, clock, data)
    case = ask(container, data, charge, note="Never heard of it & <b>odd</b>.\nSecond line.")
    decide(container, case.id, refund=False)
    container.relay.drain()

    for subject in (f"case {case.reference}", "the outcome of your question"):
        (email,) = [m for m in mailer.sent if subject in m.subject]
        assert "What you told us: I don't know what this charge is\n" in email.text
        assert "“Never heard of it & <b>odd</b>.\n                  Second line.”" in email.text
        assert "Never heard of it &amp; &lt;b&gt;odd&lt;/b&gt;." in email.html


def test_refunding_a_charge_with_nothing_left_is_refused_and_the_case_stays_open(
    container: Container, clock: FakeClock
) -> None:
    data = seeded(container)
    only(container, data.monthly)
    charge = renew(container, clock, data)
    case = ask(container, data, charge)
    refund_charge(container, data.alex.id, charge.id)

    with pytest.raises(NotAllowed, match="Nothing is left to refund"):
        decide(container, case.id, refund=True)

    (still,) = cases.list_cases(container.uows(), status=CaseStatus.OPEN)
    assert still.case.id == case.id


def test_resolving_needs_a_note_and_a_case_that_exists(
    container: Container, clock: FakeClock
) -> None:
    data = seeded(container)
    only(container, data.monthly)
    case = ask(container, data, renew(container, clock, data))
    with pytest.raises(InvalidInput, match="note"):
        cases.resolve(
            container.uows,
            container.gateway,
            clock,
            case.id,
            refund=False,
            note=" ",
            actor="x",
            arrival=container.refund_policy().arrival,
        )
    with pytest.raises(NotFound):
        decide(container, case.id + 1000, refund=False)


def test_case_references_never_repeat_a_cancellation_reference(
    container: Container, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = seeded(container)
    only(container, data.monthly)
    charge = renew(container, clock, data)
    taken = turn_off(container, data.alex, data.monthly).reference
    fresh = new_reference()
    monkeypatch.setattr(cases, "new_reference", iter([taken, fresh]).__next__)

    case = ask(container, data, charge)

    assert case.reference == fresh
