"""The checks a gateway makes before keeping a card (shared by the sandbox and Stripe)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fairsub.adapters.payments.cards import brand_of, check_card, luhn_valid
from fairsub.domain.errors import InvalidInput
from fairsub.services.ports import CardDetails

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "number",
    ["4242424242424242", "4000000000000002", "4000000000009995", "4000000000000119",
     "5555555555554444", "378282246310005", "6011111111111117", "2223003122003222"],
)  # fmt: skip
def test_the_documented_test_numbers_pass_luhn(number: str) -> None:
    assert luhn_valid(number)


@pytest.mark.parametrize("number", ["4242424242424241", "4000000000000001", "1234567812345678"])
def test_a_mistyped_digit_fails_luhn(number: str) -> None:
    assert not luhn_valid(number)


@pytest.mark.parametrize(
    ("number", "brand"),
    [("4242424242424242", "Visa"), ("5105105105105100", "Mastercard"),
     ("2221000000000009", "Mastercard"), ("2720990000000007", "Mastercard"),
     ("2721000000000004", "Card"), ("340000000000009", "Amex"), ("371449635398431", "Amex"),
     ("6011111111111117", "Card")],
)  # fmt: skip
def test_the_brand_comes_from_the_prefix(number: str, brand: str) -> None:
    assert brand_of(number) == brand


def test_spaces_and_dashes_are_ignored_and_only_the_last_four_kept() -> None:
    checked = check_card(CardDetails("4242-4242 4242 4242", 3, 2028, "123"), NOW)
    assert (checked.number, checked.last4, checked.expires) == (
        "4242424242424242",
        "4242",
        "03/2028",
    )


def test_a_card_is_good_through_its_expiry_month_and_two_digit_years_are_read() -> None:
    assert check_card(CardDetails("4242424242424242", 11, 26, "123"), NOW).expires == "11/2026"
    with pytest.raises(InvalidInput, match="expired"):
        check_card(CardDetails("4242424242424242", 10, 2026, "123"), NOW)


def test_amex_wants_four_cvc_digits_and_others_three() -> None:
    assert check_card(CardDetails("378282246310005", 1, 2030, "1234"), NOW).brand == "Amex"
    with pytest.raises(InvalidInput, match="4 digits on the front"):
        check_card(CardDetails("378282246310005", 1, 2030, "123"), NOW)
    with pytest.raises(InvalidInput, match="3 digits on the back"):
        check_card(CardDetails("4242424242424242", 1, 2030, "1234"), NOW)


def test_an_expiry_decades_away_is_taken_for_a_typo() -> None:
    with pytest.raises(InvalidInput, match="too far"):
        check_card(CardDetails("4242424242424242", 1, 2099, "123"), NOW)


FULL_WIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + d) for d in range(10)))
ARABIC_INDIC = str.maketrans("0123456789", "".join(chr(0x0660 + d) for d in range(10)))


def test_full_width_digits_are_read_as_the_digits_they_are() -> None:
    # Typed with a Japanese input method still on: the same card, kept in ASCII.
    typed = CardDetails(
        "4242 4242 4242 4242".translate(FULL_WIDTH), 3, 2028, "123".translate(FULL_WIDTH)
    )
    checked = check_card(typed, NOW)
    assert (checked.number, checked.last4) == ("4242424242424242", "4242")


@pytest.mark.parametrize(
    "number",
    ["4242424242424242".translate(ARABIC_INDIC), "4242 4242 4242 424x", "4242\x004242424242424"],
)
def test_characters_that_are_not_card_digits_are_refused(number: str) -> None:
    with pytest.raises(InvalidInput, match="12 to 19 digits"):
        check_card(CardDetails(number, 3, 2028, "123"), NOW)
