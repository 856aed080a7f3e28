"""The German cancellation button (C2-C4, § 312k BGB) against real databases: an ordinary
termination turns auto-renew off as the portal does, in one transaction with its email
and audit entries; an extraordinary one does too and waits for support; everything that
does not match gets the same answer and changes nothing; once only; the throttle."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from fairsub.adapters.db.tables import audit_events, cancellations, payment_attempts
from fairsub.bootstrap import Container
from fairsub.domain.accounts import Account
from fairsub.domain.cancellations import Cancellation
from fairsub.domain.errors import TooManyAttempts
from fairsub.domain.references import new_reference
from fairsub.domain.subscriptions import Status, Subscription
from fairsub.services import billing, public_forms, statutory_cancellation
from fairsub.services import subscriptions as subs
from fairsub.services.statutory_cancellation import CancellationReceipt, Termination
from tests.builders import at_once, seeded, turn_off
from tests.fakes import FakeClock, FakeMailer
from tests.integration.test_withdrawal import (
    CLIENT,
    JANA,
    PHONE,
    buy,
    customer,
    rows,
    state,
    withdraw,
)

ORDINARY_ACTION = "public-form:subscription:ordinary_termination"
EXTRAORDINARY_ACTION = "public-form:subscription:extraordinary_termination"
TURN_OFF_ACTION = "public-form:subscription:auto_renew_off"


def cancel(
    container: Container,
    contract: object,
    *,
    kind: str = "ordinary",
    email: str = JANA,
    name: str = "Jana Neu",
    reason: str = "",
    end_date: str = "",
    address: str = CLIENT.address,
) -> CancellationReceipt:
    return statutory_cancellation.cancel(
        container.uows,
        container.clock,
        kind=kind,
        name=name,
        email=email,
        contract=str(contract),
        end="date" if end_date else "earliest",
        end_date=end_date,
        reason=reason,
        address=address,
        user_agent=CLIENT.user_agent,
    )


def subscription(container: Container, account: Account, subscription_id: int) -> Subscription:
    found, _ = subs.get_subscription(container.uows(), account.id, subscription_id)
    return found


def in_force(container: Container, account: Account, subscription_id: int) -> Cancellation:
    _, cancellation = subs.get_subscription(container.uows(), account.id, subscription_id)
    assert cancellation is not None
    return cancellation


def off_mails(container: Container, mailer: FakeMailer) -> list:  # type: ignore[type-arg]
    container.relay.drain()
    return [m for m in mailer.sent if m.subject.startswith("Auto-renew is off")]


@pytest.fixture
def jana(container: Container) -> Account:
    seeded(container)
    return customer(container)


# --- it matches ------------------------------------------------------------------------


def test_c4_an_ordinary_termination_turns_auto_renew_off_and_emails_the_account(
    container: Container, clock: FakeClock, mailer: FakeMailer, jana: Account
) -> None:
    bought = buy(container, jana)
    clock.advance(days=3)

    receipt = cancel(container, f"Beleg {bought.invoice_number}", email="  Jana@Example.com ")

    assert receipt.received_at == clock.now()
    assert receipt.declaration.kind is Termination.ORDINARY
    assert receipt.declaration.identity.email == JANA
    assert receipt.declaration.wished_end is None
    found = subscription(container, jana, bought.subscription_id)
    assert (found.status, found.auto_renew) == (Status.CANCELED, False)
    cancellation = in_force(container, jana, bought.subscription_id)
    assert (cancellation.channel, cancellation.actor) == ("public-form", "customer")
    assert cancellation.ends_at == found.ends_at  # the earliest possible end
    assert cancellation.declaration.startswith(
        "Ordinary termination (ordentliche Kündigung) of the contract for Larkspur Antivirus "
        f"(Antivirus Annual), receipt {bought.invoice_number}. Wished end: the earliest possible."
    )
    assert "Turn off auto-renew for Larkspur Antivirus" in cancellation.declaration
    assert rows(container, audit_events, action=TURN_OFF_ACTION) == 1
    assert rows(container, audit_events, action=ORDINARY_ACTION) == 1

    (mail,) = off_mails(container, mailer)
    assert mail.to == JANA
    assert mail.subject == (
        f"Auto-renew is off for Larkspur Antivirus (reference {cancellation.reference})"
    )
    for text in (mail.text, mail.html):
        assert "30 November 2026" in text and "13:00:00 CET" in text  # received, with zone
        assert "27 November 2027" in text  # the end
        assert "Ordinary termination (ordentliche Kündigung)" in text
        assert "support team" not in text
        assert not PHONE.search(text)  # C30


def test_c4_nothing_is_charged_after_the_termination(
    container: Container, clock: FakeClock, jana: Account
) -> None:
    bought = buy(container, jana, "antivirus-monthly")
    cancel(container, bought.invoice_number)

    clock.advance(days=40)
    billing.renew_due(container.uows, container.gateway, clock)

    renewals = select(payment_attempts.c.id).where(
        payment_attempts.c.subscription_id == bought.subscription_id
    )
    with container.engine.connect() as connection:
        assert len(connection.execute(renewals).all()) == 1  # the purchase only


def test_c4_a_later_wished_end_is_kept_as_the_end_of_the_paid_period(
    container: Container, mailer: FakeMailer, jana: Account
) -> None:
    bought = buy(container, jana)

    receipt = cancel(container, bought.invoice_number, end_date="31.01.2028")

    assert receipt.declaration.wished_end == date(2028, 1, 31)
    found = subscription(container, jana, bought.subscription_id)
    cancellation = in_force(container, jana, bought.subscription_id)
    assert cancellation.ends_at == found.ends_at
    assert "Wished end: 2028-01-31. It ends at the end of the paid period" in (
        cancellation.declaration
    )
    (mail,) = off_mails(container, mailer)
    assert "You asked for the contract to end on 31 January 2028" in mail.text
    assert "so it ends on 27 November 2027" in " ".join(mail.text.split())


def test_c4_a_cancellation_reference_names_the_contract_too(
    container: Container, jana: Account
) -> None:
    bought = buy(container, jana)
    first = turn_off(container, jana, subscription(container, jana, bought.subscription_id))
    subs.turn_on_auto_renew(
        container.uows(),
        container.clock,
        account_id=jana.id,
        subscription_id=bought.subscription_id,
        actor="customer",
        channel="portal",
    )

    cancel(container, first.reference.lower())

    assert subscription(container, jana, bought.subscription_id).auto_renew is False


def test_c4_an_extraordinary_termination_stops_renewal_at_once_and_waits_for_support(
    container: Container, mailer: FakeMailer, jana: Account
) -> None:
    bought = buy(container, jana)

    receipt = cancel(
        container, bought.invoice_number, kind="extraordinary", reason="Umzug ins Ausland"
    )

    assert receipt.declaration.extraordinary
    assert receipt.declaration.reason == "Umzug ins Ausland"
    assert subscription(container, jana, bought.subscription_id).auto_renew is False
    cancellation = in_force(container, jana, bought.subscription_id)
    assert cancellation.declaration.startswith(
        "Extraordinary termination (außerordentliche Kündigung) of the contract for "
        f"Larkspur Antivirus (Antivirus Annual), receipt {bought.invoice_number}, for this "
        "reason: Umzug ins Ausland."
    )
    assert rows(container, audit_events, action=TURN_OFF_ACTION) == 1
    with container.engine.connect() as connection:
        (queued,) = connection.execute(
            select(audit_events.c.reason, audit_events.c.subject).where(
                audit_events.c.action == EXTRAORDINARY_ACTION
            )
        ).all()
    assert tuple(queued) == ("Umzug ins Ausland", f"subscription:{bought.subscription_id}")
    (mail,) = off_mails(container, mailer)
    text = " ".join(mail.text.split())
    assert "Our support team will answer you by email about ending it before" in text
    assert "for this reason: Umzug ins Ausland." in text

    before = state(container)
    cancel(container, bought.invoice_number, kind="extraordinary", reason="Umzug ins Ausland")
    assert state(container) == before  # once only
    assert len(off_mails(container, mailer)) == 1


def test_c4_an_extraordinary_termination_after_turning_off_in_the_portal_still_reaches_support(
    container: Container, mailer: FakeMailer, jana: Account
) -> None:
    bought = buy(container, jana)
    earlier = turn_off(container, jana, subscription(container, jana, bought.subscription_id))
    assert len(off_mails(container, mailer)) == 1

    cancel(container, bought.invoice_number, kind="extraordinary", reason="Krankheit")

    assert in_force(container, jana, bought.subscription_id) == earlier  # still the one
    assert rows(container, audit_events, action=EXTRAORDINARY_ACTION) == 1
    mails = off_mails(container, mailer)
    assert len(mails) == 2 and earlier.reference in mails[1].subject
    assert "for this reason: Krankheit." in " ".join(mails[1].text.split())

    before = state(container)
    cancel(container, bought.invoice_number, kind="extraordinary", reason="Krankheit")
    cancel(container, bought.invoice_number)  # and an ordinary one adds nothing either
    assert state(container) == before
    assert len(off_mails(container, mailer)) == 2


def test_c4_control_characters_in_a_name_or_reason_are_not_kept(
    container: Container, jana: Account
) -> None:
    bought = buy(container, jana)

    reason = "Umzug\x00\tins\r\nAusland"
    cancel(
        container, bought.invoice_number, kind="extraordinary", name="Jana\x00 Neu", reason=reason
    )

    declaration = in_force(container, jana, bought.subscription_id).declaration
    assert "for this reason: Umzug ins Ausland." in declaration
    assert "Name: Jana Neu." in declaration


# --- everything else gets the same answer and changes nothing ---------------------------


def test_c4_no_match_gets_the_same_answer_and_changes_nothing(
    container: Container, clock: FakeClock, mailer: FakeMailer, jana: Account
) -> None:
    demo = seeded(container)
    mine = buy(container, jana)
    one_term = buy(container, jana, "identity-annual", auto_renew=False)  # never renews
    erika = buy(container, demo.erika, "identity-annual")
    ended = buy(container, customer(container, "DE", "ended@example.com"), "antivirus-monthly")
    clock.advance(days=1)
    cancel(container, ended.invoice_number, email="ended@example.com")
    clock.advance(days=40)  # its last month is over: turned off, it has ended
    container.relay.drain()
    mailer.sent.clear()
    before = state(container)

    answers = [
        cancel(container, mine.invoice_number, email="nobody@example.com"),  # no account
        cancel(container, erika.invoice_number),  # someone else's receipt
        cancel(container, 99999),  # no such receipt
        cancel(container, new_reference()),  # no such reference
        cancel(container, one_term.invoice_number),  # off from the start: nothing to end
        cancel(
            container,
            ended.invoice_number,
            email="ended@example.com",
            kind="extraordinary",
            reason="x",
        ),  # over
    ]

    assert {a.received_at for a in answers} == {clock.now()}
    assert state(container) == before
    assert off_mails(container, mailer) == []
    cancel(container, mine.invoice_number)  # and the one that matches
    assert state(container) != before


def test_c4_a_contract_bought_through_a_reseller_is_never_changed_here(
    container: Container, mailer: FakeMailer
) -> None:
    demo = seeded(container)
    assert demo.resold.reseller is not None and demo.resold.auto_renew
    reference = new_reference()  # a reference naming it, say from an earlier partner sync
    now = container.clock.now()
    with container.uows().write() as uow:
        uow.cancellations.add(
            Cancellation(
                reference,
                demo.alex.id,
                demo.resold.id,
                now,
                demo.resold.ends_at,
                "partner",
                "partner:sync",
                "Synced.",
                reversed_at=now,
            )
        )
        uow.commit()
    before = state(container)

    for kind in ("ordinary", "extraordinary"):
        cancel(container, reference, kind=kind, email=demo.alex.email, reason="Moving")

    assert state(container) == before
    assert subscription(container, demo.alex, demo.resold.id).auto_renew is True
    assert off_mails(container, mailer) == []


def test_c4_cancelling_twice_turns_off_once_and_emails_once(
    container: Container, clock: FakeClock, mailer: FakeMailer, jana: Account
) -> None:
    bought = buy(container, jana)
    cancel(container, bought.invoice_number)
    clock.advance(minutes=5)
    after_first = state(container)

    second = cancel(container, bought.invoice_number)

    assert second.received_at == clock.now()
    assert state(container) == after_first
    assert rows(container, cancellations, subscription_id=bought.subscription_id) == 1
    assert len(off_mails(container, mailer)) == 1


def test_c4_two_cancellations_at_the_same_moment_turn_off_once(
    container: Container, mailer: FakeMailer, jana: Account
) -> None:
    bought = buy(container, jana)
    answers = at_once(lambda: cancel(container, bought.invoice_number))

    assert len(answers) == 2 and answers[0] == answers[1]
    assert rows(container, cancellations, subscription_id=bought.subscription_id) == 1
    assert rows(container, audit_events, action=ORDINARY_ACTION) == 1
    assert len(off_mails(container, mailer)) == 1


# --- the throttle -----------------------------------------------------------------------


def test_c4_cancellations_are_limited_per_email_address_and_apart_from_withdrawals(
    container: Container, clock: FakeClock, jana: Account
) -> None:
    bought = buy(container, jana)
    for n in range(public_forms.MAX_PER_EMAIL):
        withdraw(container, 90000 + n, address=f"198.51.100.{n}")  # another form's count
    for n in range(public_forms.MAX_PER_EMAIL):
        cancel(container, 90000 + n, address=f"198.51.100.{n}")
    before = state(container)

    with pytest.raises(TooManyAttempts, match="Too many cancellations"):
        cancel(container, bought.invoice_number, address="198.51.100.99")
    assert state(container) == before

    clock.advance(hours=1, seconds=1)
    cancel(container, bought.invoice_number)
    assert subscription(container, jana, bought.subscription_id).auto_renew is False


def test_c4_cancellations_are_limited_per_client_address(
    container: Container, jana: Account
) -> None:
    for n in range(public_forms.MAX_PER_ADDRESS):
        cancel(container, 1, email=f"guess{n}@example.com")
    with pytest.raises(TooManyAttempts):
        cancel(container, 1, email="one-more@example.com")
    cancel(container, 1, address="192.0.2.1")  # another address is not held back
