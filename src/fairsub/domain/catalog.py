"""What the vendor sells: products, their plans, and a price per region.

The operator keeps the catalog in a TOML file; `parse_catalog` turns the parsed
mapping into these classes and explains, by path, anything it cannot accept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fairsub.domain.errors import InvalidInput
from fairsub.domain.money import Money
from fairsub.domain.periods import Term


@dataclass(frozen=True, slots=True)
class Region:
    code: str
    name: str
    currency: str
    locale: str
    timezone: str


@dataclass(frozen=True, slots=True)
class Product:
    code: str
    name: str
    description: str


@dataclass(frozen=True, slots=True)
class Plan:
    code: str
    product_code: str
    name: str
    term: Term
    seats: int
    prices: Mapping[str, Money] = field(default_factory=dict)

    def price_in(self, region: str) -> Money:
        try:
            return self.prices[region]
        except KeyError:
            raise InvalidInput(f"{self.name} is not sold in region {region}.") from None


@dataclass(frozen=True, slots=True)
class Catalog:
    vendor: str
    regions: Mapping[str, Region]
    products: Mapping[str, Product]
    plans: Mapping[str, Plan]

    def plan(self, code: str) -> Plan:
        try:
            return self.plans[code]
        except KeyError:
            raise InvalidInput(f"Unknown plan {code!r}.") from None


def _text(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{where}.{key}: expected a non-empty string")
    return value


def _section(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    if not isinstance(value, Mapping) or not value:
        raise InvalidInput(f"{key}: expected at least one [{key}.<code>] table")
    return value


def parse_catalog(data: Mapping[str, Any]) -> Catalog:
    vendor = _text(data, "vendor", "catalog")
    regions: dict[str, Region] = {}
    for code, raw in _section(data, "regions").items():
        where = f"regions.{code}"
        regions[code] = Region(
            code=code,
            name=_text(raw, "name", where),
            currency=_text(raw, "currency", where),
            locale=_text(raw, "locale", where),
            timezone=_text(raw, "timezone", where),
        )
        Money.zero(regions[code].currency)  # refuses unknown currencies
    products = {
        code: Product(code, _text(raw, "name", f"products.{code}"), raw.get("description", ""))
        for code, raw in _section(data, "products").items()
    }
    plans: dict[str, Plan] = {}
    for code, raw in _section(data, "plans").items():
        where = f"plans.{code}"
        product = _text(raw, "product", where)
        if product not in products:
            raise InvalidInput(f"{where}.product: no product {product!r}")
        try:
            term = Term(_text(raw, "term", where))
        except ValueError:
            raise InvalidInput(f"{where}.term: expected 'month' or 'year'") from None
        seats = raw.get("seats", 1)
        if not isinstance(seats, int) or seats < 1:
            raise InvalidInput(f"{where}.seats: expected a whole number of at least 1")
        prices: dict[str, Money] = {}
        for region, amount in dict(raw.get("prices", {})).items():
            if region not in regions:
                raise InvalidInput(f"{where}.prices.{region}: no region {region!r}")
            if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
                raise InvalidInput(f"{where}.prices.{region}: expected minor units (an integer)")
            prices[region] = Money(amount, regions[region].currency)
        if not prices:
            raise InvalidInput(f"{where}.prices: expected a price for at least one region")
        plans[code] = Plan(code, product, _text(raw, "name", where), term, seats, prices)
    return Catalog(vendor, regions, products, plans)
