"""When refunded money should arrive: business days, windows by payment method kind, and the
policy file's `[refunds.arrival]` table with errors that point at a line."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fairsub.adapters.policy_file import load_policy, parse_text
from fairsub.domain.errors import InvalidInput
from fairsub.domain.refund_rules import describe_arrival
from fairsub.domain.refunding import (
    MAX_BUSINESS_DAYS,
    ArrivalWindow,
    ArrivalWindows,
    add_business_days,
)
from fairsub.domain.subscriptions import PaymentMethodKind

CARD, SEPA = PaymentMethodKind.CARD, PaymentMethodKind.SEPA_DEBIT
FRIDAY = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
RULES = """
[[refunds.rules]]
regions = "*"
terms = "*"
kinds = "*"
outcome = "full"
"""


def policy_file(arrival: str) -> str:
    return arrival + RULES


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


# --- business days ----------------------------------------------------------------------------


def test_business_days_skip_the_weekend_and_keep_the_time_of_day() -> None:
    assert add_business_days(FRIDAY, 1) == datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # Monday
    assert add_business_days(FRIDAY, 5) == datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    assert add_business_days(FRIDAY, 10) == datetime(2026, 12, 11, 12, 0, tzinfo=UTC)
    assert add_business_days(FRIDAY, 0) == FRIDAY


def test_a_refund_sent_on_a_saturday_counts_from_monday() -> None:
    saturday = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)

    earliest, latest = ArrivalWindow(2, 5).for_refund(saturday)

    assert earliest == datetime(2026, 12, 1, 9, 30, tzinfo=UTC)  # Mon, Tue
    assert latest == datetime(2026, 12, 4, 9, 30, tzinfo=UTC)  # ... Friday
    assert earliest.weekday() < 5 and latest.weekday() < 5


def test_a_card_refund_sent_on_friday_arrives_between_5_and_10_business_days_later() -> None:
    assert ArrivalWindows().for_kind(CARD).for_refund(FRIDAY) == (
        datetime(2026, 12, 4, 12, 0, tzinfo=UTC),
        datetime(2026, 12, 11, 12, 0, tzinfo=UTC),
    )


def test_a_window_is_said_in_words() -> None:
    assert ArrivalWindow(5, 10).words == "5 to 10"
    assert ArrivalWindow(3, 3).words == "3"
    assert ArrivalWindow(0, 2).words == "0 to 2"


@pytest.mark.parametrize(("earliest", "latest"), [(-1, 5), (6, 5), (0, MAX_BUSINESS_DAYS + 1)])
def test_a_window_that_cannot_be_is_refused(earliest: int, latest: int) -> None:
    with pytest.raises(InvalidInput, match="An arrival window is 0 to"):
        ArrivalWindow(earliest, latest)


# --- windows by payment method kind -----------------------------------------------------------


def test_without_configuration_cards_take_5_to_10_business_days_and_so_does_every_kind() -> None:
    arrival = ArrivalWindows()

    assert arrival.card == ArrivalWindow(5, 10)
    assert arrival.for_kind(SEPA) == arrival.for_kind(None) == ArrivalWindow(5, 10)


def test_c32_a_kind_with_a_window_of_its_own_uses_it_and_others_take_the_cards() -> None:
    arrival = ArrivalWindows(ArrivalWindow(3, 7), {SEPA: ArrivalWindow(2, 5)})

    assert arrival.for_kind(SEPA) == ArrivalWindow(2, 5)
    assert arrival.for_kind(CARD) == ArrivalWindow(3, 7)
    assert arrival.for_kind(None) == ArrivalWindow(3, 7)  # a charge with no method on record
    assert describe_arrival(arrival) == [
        "card: 3 to 7 business days after it is sent",
        "sepa_debit: 2 to 5 business days after it is sent",
    ]


def test_a_kind_that_falls_back_to_the_card_says_so() -> None:
    assert describe_arrival(ArrivalWindows(ArrivalWindow(4, 8))) == [
        "card: 4 to 8 business days after it is sent",
        "sepa_debit: 4 to 8 business days after it is sent (as card)",
    ]


def test_the_cards_window_is_not_also_one_of_the_others() -> None:
    with pytest.raises(InvalidInput):
        ArrivalWindows(others={CARD: ArrivalWindow(1, 2)})


# --- the [refunds.arrival] table --------------------------------------------------------------


def test_the_policy_file_sets_a_window_per_payment_method_kind() -> None:
    text = policy_file(
        "[refunds.arrival]            # business days until the money arrives\n"
        "card = { earliest = 3, latest = 8 }\n"
        "sepa_debit = { earliest = 2, latest = 5 }\n"
    )

    arrival = parse_text(text, "policy.toml").arrival

    assert arrival.for_kind(CARD) == ArrivalWindow(3, 8)
    assert arrival.for_kind(SEPA) == ArrivalWindow(2, 5)


def test_without_an_arrival_table_cards_take_5_to_10_business_days() -> None:
    assert parse_text(policy_file(""), "policy.toml").arrival == ArrivalWindows()


def test_a_kind_left_out_of_the_table_takes_the_cards_window_and_the_card_its_default() -> None:
    only_sepa = parse_text(
        policy_file("[refunds.arrival]\nsepa_debit = { earliest = 1, latest = 3 }\n"), "p"
    ).arrival
    only_card = parse_text(
        policy_file("[refunds.arrival]\ncard = { earliest = 4, latest = 9 }\n"), "p"
    ).arrival

    assert (only_sepa.card, only_sepa.for_kind(SEPA)) == (ArrivalWindow(5, 10), ArrivalWindow(1, 3))
    assert only_card.for_kind(SEPA) == only_card.card == ArrivalWindow(4, 9)


def test_windows_may_be_written_as_tables_of_their_own() -> None:
    text = policy_file("[refunds.arrival.sepa_debit]\nearliest = 2\nlatest = 4\n")

    assert parse_text(text, "p").arrival.for_kind(SEPA) == ArrivalWindow(2, 4)


def test_the_demo_catalog_promises_5_to_10_days_for_cards_and_2_to_5_for_sepa_debits() -> None:
    arrival = load_policy(None).arrival

    assert arrival.for_kind(CARD) == ArrivalWindow(5, 10)
    assert arrival.for_kind(SEPA) == ArrivalWindow(2, 5)


@pytest.mark.parametrize(
    ("table", "needle", "message"),
    [
        ("card = { earliest = 10, latest = 5 }\n", "card =",
         "refunds.arrival.card: earliest (10) is after latest (5)"),
        ("card = { earliest = -1, latest = 5 }\n", "card =",
         "refunds.arrival.card.earliest: expected a whole number of business days, 0 to 260"),
        ("card = { earliest = 1, latest = 2.5 }\n", "card =",
         "refunds.arrival.card.latest: expected a whole number of business days, 0 to 260"),
        ("card = { earliest = true, latest = 5 }\n", "card =",
         "refunds.arrival.card.earliest: expected a whole number of business days, 0 to 260"),
        ("card = { earliest = 1, latest = 9999 }\n", "card =",
         "refunds.arrival.card.latest: expected a whole number of business days, 0 to 260"),
        ("sepa_debit = { earliest = 2 }\n", "sepa_debit =",
         "refunds.arrival.sepa_debit.latest: expected a whole number of business days, 0 to 260"),
        ("card = { earliest = 2, latest = 5, days = 3 }\n", "card =",
         "refunds.arrival.card.days: unknown key (expected one of earliest, latest)"),
        ("card = { earliest = 5, latest = 10 }\npostal_order = { earliest = 9, latest = 20 }\n",
         "postal_order =",
         "refunds.arrival.postal_order: unknown key (expected one of card, sepa_debit)"),
        ("card = 5\n", "card =",
         "refunds.arrival.card: expected a table such as { earliest = 5, latest = 10 }"),
    ],
)  # fmt: skip
def test_a_bad_arrival_window_is_reported_with_its_file_line_and_path(
    table: str, needle: str, message: str
) -> None:
    text = policy_file("# the operator's file\n\n[refunds.arrival]  # by payment method\n" + table)

    with pytest.raises(InvalidInput) as caught:
        parse_text(text, "policy.toml")

    assert caught.value.message == f"policy.toml:{line_of(text, needle)}: {message}"


def test_a_bad_window_in_a_table_of_its_own_points_at_its_key() -> None:
    text = policy_file("[refunds.arrival.card]\nearliest = 4\nlatest = -2\n")

    with pytest.raises(InvalidInput) as caught:
        parse_text(text, "policy.toml")

    assert caught.value.message.startswith(
        f"policy.toml:{line_of(text, 'latest = -2')}: refunds.arrival.card.latest: "
    )


def test_an_arrival_that_is_not_a_table_is_reported_at_its_line() -> None:
    text = policy_file("[refunds]\narrival = 7\n")

    with pytest.raises(InvalidInput) as caught:
        parse_text(text, "policy.toml")

    assert caught.value.message == "policy.toml:2: refunds.arrival: expected a table"
