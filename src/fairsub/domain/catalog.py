"""What the vendor sells: products, their plans, and a price per region.

The operator keeps the catalog in a TOML file; `parse_catalog` turns the parsed
mapping into these classes and explains, by path, anything it cannot accept. A key it
does not know is an error, as in the refund policy: a misspelt `trail_days` must not
quietly sell a plan without its trial.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fairsub.domain.errors import InvalidInput
from fairsub.domain.money import Money
from fairsub.domain.periods import Term

TOP_KEYS = ("vendor", "regions", "products", "plans", "refunds")  # refunds: refund_rules.py
REGION_KEYS = ("name", "currency", "locale", "timezone")
PRODUCT_KEYS = ("name", "description")
PLAN_KEYS = ("product", "name", "term", "seats", "prices", "trial_days")


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
    trial_days: int = 0

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


def _at(where: str, key: str) -> str:
    """The path of `key` in the table at `where` ("" for the file's top level)."""
    return f"{where}.{key}" if where else key


def _table(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{where}: expected a table")
    return value


def _known_keys(data: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in data:
        if key not in allowed:
            raise InvalidInput(
                f"{_at(where, key)}: unknown key (expected one of {', '.join(allowed)})"
            )


def _text(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{_at(where, key)}: expected a non-empty string")
    return value


def _whole(data: Mapping[str, Any], key: str, where: str, default: int, minimum: int) -> int:
    value = data.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InvalidInput(f"{where}.{key}: expected a whole number of at least {minimum}")
    return value


def _section(data: Mapping[str, Any], key: str) -> Mapping[str, Mapping[str, Any]]:
    value = data.get(key)
    if not isinstance(value, Mapping) or not value:
        raise InvalidInput(f"{key}: expected at least one [{key}.<code>] table")
    return {code: _table(raw, f"{key}.{code}") for code, raw in value.items()}


def _region(code: str, raw: Mapping[str, Any]) -> Region:
    where = f"regions.{code}"
    _known_keys(raw, REGION_KEYS, where)
    currency = _text(raw, "currency", where)
    try:
        Money.zero(currency)
    except InvalidInput as error:
        raise InvalidInput(f"{where}.currency: {error.message}") from None
    return Region(
        code=code,
        name=_text(raw, "name", where),
        currency=currency,
        locale=_text(raw, "locale", where),
        timezone=_text(raw, "timezone", where),
    )


def _product(code: str, raw: Mapping[str, Any]) -> Product:
    _known_keys(raw, PRODUCT_KEYS, f"products.{code}")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise InvalidInput(f"products.{code}.description: expected a string")
    return Product(code, _text(raw, "name", f"products.{code}"), description)


def _plan(
    code: str,
    raw: Mapping[str, Any],
    regions: Mapping[str, Region],
    products: Mapping[str, Product],
) -> Plan:
    where = f"plans.{code}"
    _known_keys(raw, PLAN_KEYS, where)
    product = _text(raw, "product", where)
    if product not in products:
        raise InvalidInput(f"{where}.product: no product {product!r}")
    try:
        term = Term(_text(raw, "term", where))
    except ValueError:
        raise InvalidInput(f"{where}.term: expected 'month' or 'year'") from None
    prices: dict[str, Money] = {}
    for region, amount in _table(raw.get("prices", {}), f"{where}.prices").items():
        if region not in regions:
            raise InvalidInput(f"{where}.prices.{region}: no region {region!r}")
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise InvalidInput(f"{where}.prices.{region}: expected minor units (an integer)")
        if amount < 0:
            raise InvalidInput(
                f"{where}.prices.{region}: a price cannot be negative (got {amount})"
            )
        prices[region] = Money(amount, regions[region].currency)
    if not prices:
        raise InvalidInput(f"{where}.prices: expected a price for at least one region")
    return Plan(
        code=code,
        product_code=product,
        name=_text(raw, "name", where),
        term=term,
        seats=_whole(raw, "seats", where, default=1, minimum=1),
        prices=prices,
        trial_days=_whole(raw, "trial_days", where, default=0, minimum=0),
    )


def parse_catalog(data: Mapping[str, Any]) -> Catalog:
    """Build the catalog from parsed TOML; any problem is InvalidInput naming its path."""
    _known_keys(data, TOP_KEYS, "")
    vendor = _text(data, "vendor", "")
    regions = {code: _region(code, raw) for code, raw in _section(data, "regions").items()}
    products = {code: _product(code, raw) for code, raw in _section(data, "products").items()}
    plans = {
        code: _plan(code, raw, regions, products) for code, raw in _section(data, "plans").items()
    }
    return Catalog(vendor, regions, products, plans)
