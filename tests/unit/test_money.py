"""Money: integer minor units, one currency at a time, no floats."""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairsub.domain.errors import InvalidInput
from fairsub.domain.money import MINOR_UNITS, Money, minor_units

CURRENCIES = sorted(MINOR_UNITS)
currencies = st.sampled_from(CURRENCIES)
amounts = st.integers(min_value=-(10**15), max_value=10**15)


@st.composite
def same_currency(draw: st.DrawFn, count: int) -> list[Money]:
    currency = draw(currencies)
    return [Money(draw(amounts), currency) for _ in range(count)]


money = same_currency(1).map(lambda ms: ms[0])


# Allocation


@given(money, st.integers(min_value=1, max_value=60))
def test_allocated_parts_sum_exactly_to_the_original_amount(total: Money, parts: int) -> None:
    shares = total.allocate(parts)

    assert len(shares) == parts
    assert sum(s.amount_minor for s in shares) == total.amount_minor


@given(money, st.integers(min_value=1, max_value=60))
def test_allocated_parts_differ_by_at_most_one_minor_unit(total: Money, parts: int) -> None:
    amounts_ = [s.amount_minor for s in total.allocate(parts)]

    assert max(amounts_) - min(amounts_) <= 1


@given(money, st.integers(min_value=1, max_value=60))
def test_allocated_parts_keep_the_currency(total: Money, parts: int) -> None:
    assert {s.currency for s in total.allocate(parts)} == {total.currency}


def test_allocation_gives_the_leftover_cents_to_the_first_parts() -> None:
    assert Money(1000, "USD").allocate(3) == [
        Money(334, "USD"),
        Money(333, "USD"),
        Money(333, "USD"),
    ]


@pytest.mark.parametrize("parts", [0, -1])
def test_allocating_into_fewer_than_one_part_is_refused(parts: int) -> None:
    with pytest.raises(InvalidInput):
        Money(1000, "USD").allocate(parts)


# Arithmetic


@given(same_currency(3))
def test_addition_is_associative(ms: list[Money]) -> None:
    a, b, c = ms
    assert (a + b) + c == a + (b + c)


@given(same_currency(2))
def test_addition_is_commutative(ms: list[Money]) -> None:
    a, b = ms
    assert a + b == b + a


@given(same_currency(2))
def test_subtraction_undoes_addition(ms: list[Money]) -> None:
    a, b = ms
    assert (a + b) - b == a
    assert a - a == Money.zero(a.currency)


@given(money)
def test_zero_is_the_identity_for_addition(m: Money) -> None:
    assert m + Money.zero(m.currency) == m


@given(same_currency(2))
def test_ordering_follows_the_amounts(ms: list[Money]) -> None:
    a, b = ms
    assert (a < b) == (a.amount_minor < b.amount_minor)
    assert (a <= b) == (a.amount_minor <= b.amount_minor)
    assert (a > b) == (a.amount_minor > b.amount_minor)


Operation = Callable[[Money, Money], Any]


@pytest.mark.parametrize(
    "operation",
    [operator.add, operator.sub, operator.lt, operator.le, operator.gt, operator.ge],
    ids=["add", "sub", "lt", "le", "gt", "ge"],
)
@settings(max_examples=30)  # six operations share the budget
@given(st.lists(currencies, min_size=2, max_size=2, unique=True), amounts, amounts)
def test_mixing_currencies_is_refused(
    operation: Operation, pair: list[str], x: int, y: int
) -> None:
    first, second = pair
    with pytest.raises(InvalidInput, match=f"{first}.*{second}|{second}.*{first}"):
        operation(Money(x, first), Money(y, second))


def test_equal_amounts_in_different_currencies_are_not_equal() -> None:
    assert Money(100, "USD") != Money(100, "EUR")


def test_money_cannot_be_changed_in_place() -> None:
    price = Money(499, "USD")
    with pytest.raises(dataclasses.FrozenInstanceError):
        price.amount_minor = 1  # type: ignore[misc]


# What is refused at the door


@pytest.mark.parametrize("amount", [49.99, 1.0, 0.0, Decimal("1"), "100", None, True, False])
def test_only_whole_minor_units_are_accepted(amount: object) -> None:
    with pytest.raises(InvalidInput, match="whole minor units"):
        Money(amount, "USD")  # type: ignore[arg-type]


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_no_float_is_ever_accepted(amount: float) -> None:
    with pytest.raises(InvalidInput):
        Money(amount, "EUR")  # type: ignore[arg-type]


@pytest.mark.parametrize("currency", ["XXX", "usd", "EURO", "", " USD", "BTC"])
def test_unknown_currencies_are_refused(currency: str) -> None:
    with pytest.raises(InvalidInput, match="Unknown currency"):
        Money(100, currency)
    with pytest.raises(InvalidInput, match="Unknown currency"):
        Money.zero(currency)
    with pytest.raises(InvalidInput, match="Unknown currency"):
        minor_units(currency)


@pytest.mark.parametrize(
    ("currency", "exponent"), [("USD", 2), ("EUR", 2), ("GBP", 2), ("JPY", 0), ("KWD", 3)]
)
def test_minor_unit_exponents_follow_iso_4217(currency: str, exponent: int) -> None:
    assert minor_units(currency) == exponent


# Plain rendering


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (4999, "EUR", "EUR 49.99"),
        (5, "USD", "USD 0.05"),
        (0, "USD", "USD 0.00"),
        (-5, "USD", "USD -0.05"),
        (-100, "GBP", "GBP -1.00"),
        (4800, "JPY", "JPY 4800"),
        (0, "JPY", "JPY 0"),
        (-4800, "JPY", "JPY -4800"),
        (1234, "KWD", "KWD 1.234"),
        (1, "KWD", "KWD 0.001"),
        (-1, "KWD", "KWD -0.001"),
        (-12345, "KWD", "KWD -12.345"),
    ],
)
def test_plain_shows_the_currency_and_its_own_number_of_decimals(
    amount: int, currency: str, shown: str
) -> None:
    assert Money(amount, currency).plain() == shown


@given(money)
def test_plain_reads_back_as_the_same_amount(m: Money) -> None:
    code, number = m.plain().split(" ")
    exponent = minor_units(m.currency)

    assert code == m.currency
    assert Decimal(number).scaleb(exponent) == m.amount_minor
    decimals = len(number.partition(".")[2])
    assert decimals == exponent


@given(money)
def test_from_plain_is_the_inverse_of_plain(m: Money) -> None:
    assert Money.from_plain(m.plain()) == m


@pytest.mark.parametrize(
    "text",
    ["", "EUR", "EUR ", "XXX 1.00", "EUR 1", "EUR 1.0", "EUR 1.000", "JPY 1.00", "EUR 1,00",
     "EUR --1.00", "EUR 1.-5", "EUR \u0661.\u0660\u0660", "eur 1.00", "EUR +1.00"],
)  # fmt: skip
def test_from_plain_refuses_anything_plain_would_not_write(text: str) -> None:
    with pytest.raises(InvalidInput):
        Money.from_plain(text)
