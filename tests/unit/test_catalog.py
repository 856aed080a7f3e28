"""The catalog: the shipped demo file parses, and bad input is explained by its path."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from importlib.resources import files
from typing import Any

import pytest

from fairsub.domain.catalog import Catalog, parse_catalog
from fairsub.domain.errors import InvalidInput
from fairsub.domain.money import Money, minor_units
from fairsub.domain.periods import Term


def demo_catalog() -> Catalog:
    text = (files("fairsub") / "data" / "demo-catalog.toml").read_text(encoding="utf-8")
    return parse_catalog(tomllib.loads(text))


def catalog_data() -> dict[str, Any]:
    """The smallest catalog that parses; tests break one thing in it."""
    return tomllib.loads(
        """
        vendor = "Larkspur Security"

        [regions.US]
        name = "United States"
        currency = "USD"
        locale = "en_US"
        timezone = "America/New_York"

        [products.av]
        name = "Larkspur Antivirus"

        [plans.x]
        product = "av"
        name = "Antivirus Monthly"
        term = "month"
        prices = { US = 499 }
        """
    )


# The shipped demo catalog


def test_the_demo_catalog_parses() -> None:
    catalog = demo_catalog()

    assert catalog.vendor == "Larkspur Security"
    assert set(catalog.regions) == {"US", "DE", "GB", "JP"}
    assert set(catalog.products) == {"antivirus", "total360", "identity"}
    assert len(catalog.plans) == 6


def test_the_demo_regions_use_their_own_currencies() -> None:
    regions = demo_catalog().regions

    assert {code: r.currency for code, r in regions.items()} == {
        "US": "USD",
        "DE": "EUR",
        "GB": "GBP",
        "JP": "JPY",
    }
    assert minor_units(regions["JP"].currency) == 0


def test_every_demo_product_has_a_monthly_and_an_annual_plan() -> None:
    catalog = demo_catalog()

    for product in catalog.products:
        terms = sorted(p.term for p in catalog.plans.values() if p.product_code == product)
        assert terms == [Term.MONTH, Term.YEAR], product


def test_every_demo_plan_is_priced_in_every_region_in_its_currency() -> None:
    catalog = demo_catalog()

    for plan in catalog.plans.values():
        for code, region in catalog.regions.items():
            price = plan.price_in(code)
            assert price.currency == region.currency
            assert price.amount_minor > 0


def test_yen_prices_are_whole_yen() -> None:
    price = demo_catalog().plan("antivirus-monthly").price_in("JP")

    assert price == Money(700, "JPY")
    assert price.plain() == "JPY 700"


def test_a_plan_defaults_to_one_seat() -> None:
    assert parse_catalog(catalog_data()).plan("x").seats == 1


def test_an_unknown_plan_is_refused_by_name() -> None:
    with pytest.raises(InvalidInput, match="'nope'"):
        demo_catalog().plan("nope")


def test_a_plan_is_not_sold_in_a_region_without_a_price() -> None:
    with pytest.raises(InvalidInput, match="Antivirus Monthly is not sold in region FR"):
        parse_catalog(catalog_data()).plan("x").price_in("FR")


# Bad input names its path


Breakage = Callable[[dict[str, Any]], object]


def setting(path: str, value: object) -> Breakage:
    *parents, key = path.split(".")

    def apply(data: dict[str, Any]) -> None:
        for parent in parents:
            data = data[parent]
        data[key] = value

    apply.__name__ = f"{path}={value!r}"
    return apply


def removing(path: str) -> Breakage:
    *parents, key = path.split(".")

    def apply(data: dict[str, Any]) -> None:
        for parent in parents:
            data = data[parent]
        del data[key]

    apply.__name__ = f"without-{path}"
    return apply


@pytest.mark.parametrize(
    ("break_it", "path"),
    [
        (removing("vendor"), "vendor"),
        (setting("vendor", "   "), "vendor"),
        (setting("vendor", 42), "vendor"),
        (removing("regions"), "regions"),
        (setting("regions", {}), "regions"),
        (removing("regions.US.currency"), "regions.US.currency"),
        (setting("regions.US.timezone", ""), "regions.US.timezone"),
        (removing("products"), "products"),
        (removing("products.av.name"), "products.av.name"),
        (setting("plans", {}), "plans"),
        (removing("plans.x.name"), "plans.x.name"),
        (setting("plans.x.product", "vpn"), "plans.x.product"),
        (setting("plans.x.term", "weekly"), "plans.x.term"),
        (setting("plans.x.term", "Month"), "plans.x.term"),
        (removing("plans.x.term"), "plans.x.term"),
        (setting("plans.x.seats", 0), "plans.x.seats"),
        (setting("plans.x.seats", "5"), "plans.x.seats"),
        (setting("plans.x.prices", {}), "plans.x.prices"),
        (removing("plans.x.prices"), "plans.x.prices"),
        (setting("plans.x.prices.FR", 499), "plans.x.prices.FR"),
        (setting("plans.x.prices.US", 4.99), "plans.x.prices.US"),
        (setting("plans.x.prices.US", "4.99"), "plans.x.prices.US"),
        (setting("plans.x.prices.US", -1), "plans.x.prices.US"),
        (setting("plans.x.prices.US", True), "plans.x.prices.US"),
        (setting("regions.US.currency", "XXX"), "regions.US.currency"),
        (setting("regions.US", "United States"), "regions.US"),
        (setting("plans.x", "month"), "plans.x"),
        (setting("plans.x.prices", 499), "plans.x.prices"),
        (setting("plans.x.seats", True), "plans.x.seats"),
    ],
)
def test_bad_input_is_refused_with_a_message_naming_its_path(break_it: Breakage, path: str) -> None:
    data = catalog_data()
    break_it(data)

    with pytest.raises(InvalidInput) as refused:
        parse_catalog(data)

    assert refused.value.message.startswith(path), refused.value.message


def test_a_negative_price_is_refused_as_negative_not_as_a_non_integer() -> None:
    data = catalog_data()
    data["plans"]["x"]["prices"]["US"] = -499

    with pytest.raises(InvalidInput) as refused:
        parse_catalog(data)

    assert refused.value.message == "plans.x.prices.US: a price cannot be negative (got -499)"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("plans.x.trail_days", "product, name, term, seats, prices, trial_days"),
        ("plans.x.colour", "product, name, term, seats, prices, trial_days"),
        ("regions.US.time_zone", "name, currency, locale, timezone"),
        ("products.av.summary", "name, description"),
        ("plan", "vendor, regions, products, plans, refunds"),
    ],
)
def test_an_unknown_key_is_refused_rather_than_ignored(path: str, expected: str) -> None:
    data = catalog_data()
    setting(path, 30)(data)

    with pytest.raises(InvalidInput) as refused:
        parse_catalog(data)

    assert refused.value.message == f"{path}: unknown key (expected one of {expected})"
