"""What only the Stripe adapter does: the requests it sends, Stripe's failures in the port's
terms, and keeping "one key, one charge" beyond what Stripe's idempotency keys promise."""

from __future__ import annotations

import pytest
import stripe

from fairsub.adapters.payments import stripe as adapter_module
from fairsub.adapters.payments.stripe import StripeGateway
from fairsub.domain.errors import InvalidInput
from fairsub.domain.money import Money
from fairsub.services.ports import (
    CardDetails,
    GatewayRefusedCredentials,
    GatewayTimeout,
    GatewayUnavailable,
)
from tests.fakes import FakeClock
from tests.integration.stripe_fake import FakeStripe

VISA = CardDetails("4242 4242 4242 4242", 12, 2030, "123")


def eur(cents: int) -> Money:
    return Money(cents, "EUR")


@pytest.fixture
def fake() -> FakeStripe:
    return FakeStripe()


@pytest.fixture
def gateway(fake: FakeStripe) -> StripeGateway:
    return StripeGateway(
        "sk_test_fairsub", http_client=fake, clock=FakeClock(), max_network_retries=0
    )


def test_the_adapter_named_stripe_py_imports_the_sdk_not_itself() -> None:
    assert vars(adapter_module)["stripe"] is stripe
    assert adapter_module.__name__ == "fairsub.adapters.payments.stripe"


def test_a_charge_is_an_off_session_payment_intent_keyed_for_idempotency(
    gateway: StripeGateway, fake: FakeStripe
) -> None:
    token = gateway.store_card(VISA).token
    customer, method = token.split(":")
    gateway.charge("renewal:1:2026-11", Money(4800, "JPY"), token, "Pro, monthly")
    [(params, headers)] = fake.posts("/v1/payment_intents")
    assert params == {
        "amount": "4800",
        "currency": "jpy",
        "customer": customer,
        "payment_method": method,
        "confirm": "true",
        "off_session": "true",
        "automatic_payment_methods": {"enabled": "true", "allow_redirects": "never"},
        "description": "Pro, monthly",
        "metadata": {"fairsub_key": "renewal:1:2026-11"},
    }
    assert headers["Idempotency-Key"] == "fairsub-charge:renewal:1:2026-11"


def test_store_card_attaches_stripes_test_payment_method_to_a_new_customer(
    gateway: StripeGateway, fake: FakeStripe
) -> None:
    stored = gateway.store_card(CardDetails("5555 5555 5555 4444", 3, 2031, "123"))
    customer, method = stored.token.split(":")
    assert fake.payment_methods[method]["customer"] == customer
    assert fake.payment_methods[method]["test"] == "pm_card_mastercard"
    assert (stored.brand, stored.last4) == ("Mastercard", "4444")


def test_in_test_mode_only_stripes_test_numbers_are_taken(gateway: StripeGateway) -> None:
    with pytest.raises(InvalidInput, match="Stripe's test cards"):
        gateway.store_card(CardDetails("4012 8888 8888 1881", 12, 2030, "123"))


def test_in_live_mode_card_numbers_are_never_taken(fake: FakeStripe) -> None:
    live = StripeGateway("sk_live_fairsub", http_client=fake, clock=FakeClock())
    with pytest.raises(InvalidInput, match="Stripe's own payment form"):
        live.store_card(VISA)
    assert fake.requests == []


def test_a_bare_payment_method_is_charged_without_a_customer(
    gateway: StripeGateway, fake: FakeStripe
) -> None:
    assert gateway.charge("k", eur(1000), "pm_card_visa", "Pro").succeeded
    [(params, _)] = fake.posts("/v1/payment_intents")
    assert "customer" not in params


CREATE = "POST /v1/payment_intents"


@pytest.mark.parametrize("after_processing", [False, True])
def test_a_5xx_on_charging_is_an_unknown_outcome_resolved_by_the_same_key(
    gateway: StripeGateway, fake: FakeStripe, after_processing: bool
) -> None:
    token = gateway.store_card(VISA).token
    fake.search_lag = True  # the worst case: what was done is not searchable yet
    fake.fail_next(500, after_processing=after_processing, on=CREATE)
    with pytest.raises(GatewayTimeout):
        gateway.charge("k", eur(1000), token, "Pro")
    retried = gateway.charge("k", eur(1000), token, "Pro")
    assert retried.succeeded
    assert len(fake.payment_intents) == 1
    fake.index_search()
    assert gateway.lookup_charge("k") == retried


def test_a_connection_lost_after_charging_is_a_timeout_and_lookup_finds_the_charge(
    gateway: StripeGateway, fake: FakeStripe
) -> None:
    token = gateway.store_card(VISA).token
    fake.disconnect_next(after_processing=True, on=CREATE)
    with pytest.raises(GatewayTimeout):
        gateway.charge("k", eur(1000), token, "Pro")
    found = gateway.lookup_charge("k")
    assert found is not None and found.succeeded
    assert gateway.charge("k", eur(1000), token, "Pro") == found
    assert len(fake.payment_intents) == 1


def test_when_the_search_before_charging_fails_nothing_is_charged(
    gateway: StripeGateway, fake: FakeStripe
) -> None:
    token = gateway.store_card(VISA).token
    fake.fail_next(500, on="GET /v1/payment_intents/search")
    with pytest.raises(GatewayUnavailable):
        gateway.charge("k", eur(1000), token, "Pro")
    assert fake.payment_intents == {}


def test_reads_that_fail_are_unavailable_not_unknown(
    gateway: StripeGateway, fake: FakeStripe
) -> None:
    fake.disconnect_next()
    with pytest.raises(GatewayUnavailable):
        gateway.lookup_charge("k")
    fake.fail_next(503)
    with pytest.raises(GatewayUnavailable):
        list(gateway.ledger())


def test_a_rate_limit_is_unavailable_and_charges_nothing(
    gateway: StripeGateway, fake: FakeStripe
) -> None:
    token = gateway.store_card(VISA).token
    fake.fail_next(429)
    with pytest.raises(GatewayUnavailable):
        gateway.charge("k", eur(1000), token, "Pro")
    assert fake.payment_intents == {}


def test_the_sdk_retries_a_dropped_line_with_the_same_key_and_charges_once(
    fake: FakeStripe,
) -> None:
    patient = StripeGateway(
        "sk_test_fairsub", http_client=fake, clock=FakeClock(), max_network_retries=1
    )
    token = patient.store_card(VISA).token
    fake.search_lag = True
    fake.disconnect_next(after_processing=True, on=CREATE)
    assert patient.charge("k", eur(1000), token, "Pro").succeeded
    assert len(fake.payment_intents) == 1
    keys = [headers["Idempotency-Key"] for _, headers in fake.posts("/v1/payment_intents")]
    assert keys == ["fairsub-charge:k", "fairsub-charge:k"]


def test_a_key_older_than_stripes_idempotency_window_still_charges_once(
    gateway: StripeGateway, fake: FakeStripe
) -> None:
    token = gateway.store_card(VISA).token
    first = gateway.charge("k", eur(1000), token, "Pro")
    fake.forget_idempotency_keys()  # 24 hours later
    assert gateway.charge("k", eur(1000), token, "Pro") == first
    assert len(fake.payment_intents) == 1


def test_a_refund_key_older_than_stripes_idempotency_window_still_refunds_once(
    gateway: StripeGateway, fake: FakeStripe
) -> None:
    token = gateway.store_card(VISA).token
    ref = gateway.charge("k", eur(1000), token, "Pro").gateway_ref
    assert ref is not None
    first = gateway.refund("r", ref, eur(300))
    fake.forget_idempotency_keys()
    assert gateway.refund("r", ref, eur(300)) == first
    assert len(fake.refunds) == 1


def test_isk_is_sent_in_hundredths_as_stripe_wants(
    gateway: StripeGateway, fake: FakeStripe
) -> None:
    token = gateway.store_card(VISA).token
    assert gateway.charge("k", Money(2990, "ISK"), token, "Pro").amount == Money(2990, "ISK")
    [intent] = fake.payment_intents.values()
    assert (intent["amount"], intent["currency"]) == (299000, "isk")


def test_three_decimal_amounts_stripe_cannot_take_are_refused_before_sending(
    gateway: StripeGateway, fake: FakeStripe
) -> None:
    token = gateway.store_card(VISA).token
    fake.requests.clear()
    with pytest.raises(InvalidInput, match="multiples of 10"):
        gateway.charge("k", Money(12345, "KWD"), token, "Pro")
    assert fake.requests == []


def test_the_ledger_shows_what_was_done_outside_fairsub_with_an_empty_key(
    gateway: StripeGateway, fake: FakeStripe
) -> None:
    ref = gateway.charge("k", eur(1000), "pm_card_visa", "Pro").gateway_ref
    assert ref is not None
    dashboard = stripe.StripeClient("sk_test_dashboard", http_client=fake)
    dashboard.v1.refunds.create(params={"payment_intent": ref, "amount": 250})
    entries = {(e.kind, e.idempotency_key, e.amount) for e in gateway.ledger()}
    assert entries == {("charge", "k", eur(1000)), ("refund", "", eur(250))}


@pytest.mark.parametrize("call", ["store_card", "charge", "lookup_charge", "ledger"])
def test_a_wrong_or_revoked_key_is_a_setting_to_fix_never_an_outcome(
    fake: FakeStripe, call: str
) -> None:
    revoked = StripeGateway(
        "rk_test_revoked51Hx", http_client=fake, clock=FakeClock(), max_network_retries=0
    )
    calls = {
        "store_card": lambda: revoked.store_card(VISA),
        "charge": lambda: revoked.charge("k", eur(1000), "pm_card_visa", "Pro"),
        "lookup_charge": lambda: revoked.lookup_charge("k"),
        "ledger": lambda: list(revoked.ledger()),
    }
    with pytest.raises(GatewayRefusedCredentials) as refused:
        calls[call]()
    # Nothing happened, so it is "unavailable" to every caller: same key, later, no outcome.
    assert isinstance(refused.value, GatewayUnavailable)
    assert not isinstance(refused.value, GatewayTimeout)
    assert refused.value.setting == "FAIRSUB_STRIPE_API_KEY"
    assert str(refused.value) == (
        "Stripe refused the API key (wrong or revoked); check FAIRSUB_STRIPE_API_KEY."
    )
    assert "51Hx" not in str(refused.value)
    assert fake.payment_intents == {}


def test_a_key_without_permission_refused_on_the_charge_itself_is_not_an_unknown_outcome(
    gateway: StripeGateway, fake: FakeStripe
) -> None:
    token = gateway.store_card(VISA).token
    fake.fail_next(403, on=CREATE)  # a restricted key: search allowed, payments not
    with pytest.raises(GatewayRefusedCredentials, match="lacks a permission") as refused:
        gateway.charge("k", eur(1000), token, "Pro")
    assert "FAIRSUB_STRIPE_API_KEY" in str(refused.value)
    assert fake.payment_intents == {}
