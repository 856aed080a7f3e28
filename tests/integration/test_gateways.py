"""The PaymentGateway contract: each test runs against the sandbox and against Stripe (on the
official SDK, through an in-process fake of Stripe's API)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fairsub.adapters.payments.sandbox import SandboxGateway
from fairsub.adapters.payments.stripe import StripeGateway
from fairsub.domain.errors import InvalidInput
from fairsub.domain.money import Money
from fairsub.services.ports import CardDetails, GatewayLedgerEntry, PaymentGateway
from tests.fakes import FakeClock
from tests.integration.stripe_fake import FakeStripe

VISA = "4242 4242 4242 4242"
DECLINED = "4000 0000 0000 0002"
NO_FUNDS = "4000 0000 0000 9995"


def card(
    number: str = VISA, exp_month: int = 12, exp_year: int = 2030, cvc: str = "123"
) -> CardDetails:
    return CardDetails(number=number, exp_month=exp_month, exp_year=exp_year, cvc=cvc)


def eur(cents: int) -> Money:
    return Money(cents, "EUR")


@pytest.fixture(params=["sandbox", "stripe"])
def gateway(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PaymentGateway]:
    clock = FakeClock()  # 2026-11-27
    if request.param == "sandbox":
        sandbox = SandboxGateway(tmp_path / "sandbox.db", clock)
        yield sandbox
        sandbox.close()
    else:
        # A page size of 2 makes the ledger and lookups page through Stripe's lists.
        yield StripeGateway(
            "sk_test_fairsub",
            http_client=FakeStripe(page_size=2),
            clock=clock,
            max_network_retries=0,
        )


def charges_in(gateway: PaymentGateway) -> list[GatewayLedgerEntry]:
    return [entry for entry in gateway.ledger() if entry.kind == "charge"]


def refunds_in(gateway: PaymentGateway) -> list[GatewayLedgerEntry]:
    return [entry for entry in gateway.ledger() if entry.kind == "refund"]


def test_a_stored_card_shows_brand_last_four_and_expiry_never_the_number(
    gateway: PaymentGateway,
) -> None:
    stored = gateway.store_card(card())
    assert (stored.brand, stored.last4) == ("Visa", "4242")
    assert len(stored.expires) == 7 and stored.expires[2] == "/"
    assert "4242424242424242" not in stored.token


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        (card("4242 4242 4242 4241"), "not valid"),
        (card("4242"), "12 to 19 digits"),
        (card(exp_month=10, exp_year=2026), "expired"),
        (card(exp_month=13), "month"),
        (card(cvc="12"), "security code"),
    ],
)
def test_a_card_that_cannot_work_is_refused_with_a_message(
    gateway: PaymentGateway, typed: CardDetails, says: str
) -> None:
    with pytest.raises(InvalidInput, match=says):
        gateway.store_card(typed)


def test_the_same_key_twice_charges_once_and_answers_the_same(gateway: PaymentGateway) -> None:
    token = gateway.store_card(card()).token
    first = gateway.charge("renewal:1:2026-11", eur(4999), token, "Pro, monthly")
    again = gateway.charge("renewal:1:2026-11", eur(4999), token, "Pro, monthly")
    assert first.succeeded and first.gateway_ref
    assert again == first
    assert [(c.idempotency_key, c.amount) for c in charges_in(gateway)] == [
        ("renewal:1:2026-11", eur(4999))
    ]


def test_a_key_reused_for_another_amount_is_refused(gateway: PaymentGateway) -> None:
    token = gateway.store_card(card()).token
    gateway.charge("k", eur(4999), token, "Pro")
    with pytest.raises(InvalidInput):
        gateway.charge("k", eur(5999), token, "Pro")
    assert len(charges_in(gateway)) == 1


@pytest.mark.parametrize(
    ("number", "reason"), [(DECLINED, "card_declined"), (NO_FUNDS, "insufficient_funds")]
)
def test_a_declined_card_is_an_answer_not_an_error(
    gateway: PaymentGateway, number: str, reason: str
) -> None:
    token = gateway.store_card(card(number)).token
    result = gateway.charge("k", eur(4999), token, "Pro")
    assert (result.succeeded, result.decline_reason) == (False, reason)
    assert gateway.charge("k", eur(4999), token, "Pro") == result
    assert gateway.lookup_charge("k") == result
    [entry] = charges_in(gateway)
    assert (entry.idempotency_key, entry.succeeded) == ("k", False)


def test_the_first_answer_for_a_key_stands_even_with_another_card(
    gateway: PaymentGateway,
) -> None:
    declined = gateway.charge("k", eur(4999), gateway.store_card(card(DECLINED)).token, "Pro")
    good_card = gateway.store_card(card()).token
    assert gateway.charge("k", eur(4999), good_card, "Pro") == declined
    assert gateway.charge("k-attempt-2", eur(4999), good_card, "Pro").succeeded


def test_a_token_the_gateway_never_issued_is_declined_and_nothing_recorded(
    gateway: PaymentGateway,
) -> None:
    result = gateway.charge("k", eur(4999), "cus_nobody:pm_nothing", "Pro")
    assert (result.succeeded, result.decline_reason) == (False, "card_not_found")
    assert gateway.lookup_charge("k") is None
    assert list(gateway.ledger()) == []


def test_amounts_must_be_positive(gateway: PaymentGateway) -> None:
    token = gateway.store_card(card()).token
    with pytest.raises(InvalidInput):
        gateway.charge("k", eur(0), token, "Pro")


def test_lookup_of_an_unknown_key_is_none(gateway: PaymentGateway) -> None:
    assert gateway.lookup_charge("never-sent") is None


def test_lookup_reports_what_the_charge_under_a_key_did(gateway: PaymentGateway) -> None:
    token = gateway.store_card(card()).token
    charged = gateway.charge("k", eur(4999), token, "Pro")
    assert gateway.lookup_charge("k") == charged


def test_refunds_go_up_to_the_charged_amount_and_no_further(gateway: PaymentGateway) -> None:
    token = gateway.store_card(card()).token
    charged = gateway.charge("k", eur(1000), token, "Pro")
    assert charged.gateway_ref is not None
    first = gateway.refund("refund-1", charged.gateway_ref, eur(600))
    second = gateway.refund("refund-2", charged.gateway_ref, eur(400))
    beyond = gateway.refund("refund-3", charged.gateway_ref, eur(1))
    assert first.succeeded and second.succeeded
    assert first.gateway_ref != second.gateway_ref
    assert (beyond.succeeded, beyond.failure_reason, beyond.gateway_ref) == (
        False,
        "amount_too_large",
        None,
    )
    assert sorted(r.amount.amount_minor for r in refunds_in(gateway)) == [400, 600]


def test_a_refund_is_made_once_per_key(gateway: PaymentGateway) -> None:
    token = gateway.store_card(card()).token
    charged = gateway.charge("k", eur(1000), token, "Pro")
    assert charged.gateway_ref is not None
    first = gateway.refund("refund-1", charged.gateway_ref, eur(1000))
    assert gateway.refund("refund-1", charged.gateway_ref, eur(1000)) == first
    with pytest.raises(InvalidInput):
        gateway.refund("refund-1", charged.gateway_ref, eur(500))
    assert [(r.idempotency_key, r.amount) for r in refunds_in(gateway)] == [("refund-1", eur(1000))]


def test_a_refund_needs_a_succeeded_charge_in_its_currency(gateway: PaymentGateway) -> None:
    declined = gateway.charge("d", eur(1000), gateway.store_card(card(DECLINED)).token, "Pro")
    charged = gateway.charge("k", eur(1000), gateway.store_card(card()).token, "Pro")
    assert declined.gateway_ref is not None and charged.gateway_ref is not None
    reasons = [
        gateway.refund("r1", "pi_or_ch_unknown", eur(100)).failure_reason,
        gateway.refund("r2", declined.gateway_ref, eur(100)).failure_reason,
        gateway.refund("r3", charged.gateway_ref, Money(100, "USD")).failure_reason,
    ]
    assert reasons == ["charge_not_found", "charge_not_succeeded", "currency_mismatch"]
    assert refunds_in(gateway) == []


def test_one_key_may_name_both_a_charge_and_its_refund(gateway: PaymentGateway) -> None:
    token = gateway.store_card(card()).token
    charged = gateway.charge("subscription-7", eur(1000), token, "Pro")
    assert charged.gateway_ref is not None
    refunded = gateway.refund("subscription-7", charged.gateway_ref, eur(1000))
    assert refunded.succeeded


def test_the_ledger_lists_what_happened(gateway: PaymentGateway) -> None:
    token = gateway.store_card(card()).token
    declined_token = gateway.store_card(card(DECLINED)).token
    refs = {}
    for month in range(1, 6):
        result = gateway.charge(f"renewal:1:2026-{month:02d}", eur(4999), token, "Pro")
        refs[result.idempotency_key] = result.gateway_ref
    gateway.charge("renewal:2:2026-01", eur(4999), declined_token, "Pro")
    ref = refs["renewal:1:2026-05"]
    assert ref is not None
    gateway.refund("refund:1:2026-05", ref, eur(2000))
    gateway.refund("refund:1:2026-05b", ref, eur(9999))  # refused: not in the ledger

    seen = {(e.kind, e.idempotency_key, e.amount, e.succeeded) for e in gateway.ledger()}
    assert seen == {
        *{("charge", f"renewal:1:2026-{m:02d}", eur(4999), True) for m in range(1, 6)},
        ("charge", "renewal:2:2026-01", eur(4999), False),
        ("refund", "refund:1:2026-05", eur(2000), True),
    }
    assert {e.gateway_ref for e in charges_in(gateway) if e.succeeded} == set(refs.values())


@pytest.mark.parametrize("amount", [Money(4800, "JPY"), Money(2990, "ISK"), Money(12340, "KWD")])
def test_amounts_in_any_minor_unit_pass_through_exactly(
    gateway: PaymentGateway, amount: Money
) -> None:
    token = gateway.store_card(card()).token
    charged = gateway.charge("k", amount, token, "Pro")
    assert charged.amount == amount
    assert gateway.lookup_charge("k") == charged
    assert charged.gateway_ref is not None
    part = Money(amount.amount_minor // 2, amount.currency)
    assert gateway.refund("r", charged.gateway_ref, part).amount == part
    assert {(e.kind, e.amount) for e in gateway.ledger()} == {("charge", amount), ("refund", part)}
