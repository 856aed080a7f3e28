"""Reading the refund policy from the operator's TOML (the `[refunds]` section).

    [refunds.statutory]                  # optional; default: the EU, the EEA and the UK
    withdrawal_regions = ["DE", "GB"]

    [refunds.arrival]                    # optional; business days until the money arrives
    card = { earliest = 5, latest = 10 } # the default; a kind not listed takes the card's
    sepa_debit = { earliest = 2, latest = 5 }

    [[refunds.rules]]                    # in order: the first that matches and holds decides
    name = "uk-annual-renewal-full"      # optional; shown by `fairsub policy explain`
    regions = ["GB"]                     # or "*"
    terms = ["year"]                     # "month", "year", or "*"
    kinds = ["renewal"]                  # "first_purchase", "renewal", or "*"
    within_days = 60                     # optional: without it the outcome never closes
    outcome = "full"                     # "full", "pro_rata" or "none"

Rules are numbered from 1 in file order, and every problem is InvalidInput naming its path
(`refunds.rules[2].outcome: ...`), which the file adapter turns into a line number. A key
the parser does not know is an error: a misspelt `within_day` must not widen a refund.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal

from fairsub.domain.errors import InvalidInput
from fairsub.domain.periods import Term
from fairsub.domain.refunding import MAX_BUSINESS_DAYS, ArrivalWindow, ArrivalWindows
from fairsub.domain.refunds import ANY, ChargeKind, RefundKind, RefundPolicy, Rule
from fairsub.domain.subscriptions import PaymentMethodKind

RULE_KEYS = ("name", "regions", "terms", "kinds", "within_days", "outcome")
SECTION_KEYS = ("rules", "statutory", "arrival")
STATUTORY_KEYS = ("withdrawal_regions",)
METHOD_KINDS = tuple(kind.value for kind in PaymentMethodKind)
WINDOW_KEYS = ("earliest", "latest")


def _table(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{where}: expected a table")
    return value


def _known_keys(data: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in data:
        if key not in allowed:
            raise InvalidInput(f"{where}.{key}: unknown key (expected one of {', '.join(allowed)})")


def _codes(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not value:
        raise InvalidInput(f'{where}: expected "*" or a non-empty list of strings')
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise InvalidInput(f'{where}: expected "*" or a non-empty list of strings')
    return list(value)


def _regions(
    raw: Mapping[str, Any], where: str, known: Mapping[str, Any] | None
) -> frozenset[str] | Literal["*"]:
    value = raw.get("regions")
    if value == ANY:
        return ANY
    codes = _codes(value, f"{where}.regions")
    for code in codes:
        if known is not None and code not in known:
            raise InvalidInput(f"{where}.regions: no region {code!r} in the catalog")
    return frozenset(codes)


def _terms(raw: Mapping[str, Any], where: str) -> frozenset[Term]:
    value = raw.get("terms")
    if value == ANY:
        return frozenset(Term)
    try:
        return frozenset(Term(code) for code in _codes(value, f"{where}.terms"))
    except ValueError:
        raise InvalidInput(f'{where}.terms: expected "*" or a list of month, year') from None


def _kinds(raw: Mapping[str, Any], where: str) -> frozenset[ChargeKind]:
    value = raw.get("kinds")
    if value == ANY:
        return frozenset(ChargeKind)
    try:
        return frozenset(ChargeKind(code) for code in _codes(value, f"{where}.kinds"))
    except ValueError:
        raise InvalidInput(
            f'{where}.kinds: expected "*" or a list of first_purchase, renewal'
        ) from None


def _within_days(raw: Mapping[str, Any], where: str) -> int | None:
    value = raw.get("within_days")
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 3660:
        raise InvalidInput(f"{where}.within_days: expected a whole number of days, 1 to 3660")
    return value


def _outcome(raw: Mapping[str, Any], where: str) -> RefundKind:
    value = raw.get("outcome")
    try:
        return RefundKind(value if isinstance(value, str) else "")
    except ValueError:
        raise InvalidInput(f"{where}.outcome: expected one of full, pro_rata, none") from None


def _name(raw: Mapping[str, Any], where: str) -> str:
    value = raw.get("name", "")
    if not isinstance(value, str):
        raise InvalidInput(f"{where}.name: expected a string")
    return value.strip()


def _rule(raw: Any, where: str, known: Mapping[str, Any] | None) -> Rule:
    table = _table(raw, where)
    _known_keys(table, RULE_KEYS, where)
    return Rule(
        regions=_regions(table, where, known),
        terms=_terms(table, where),
        kinds=_kinds(table, where),
        outcome=_outcome(table, where),
        within_days=_within_days(table, where),
        name=_name(table, where),
    )


def _statutory(section: Mapping[str, Any]) -> frozenset[str] | None:
    if "statutory" not in section:
        return None
    where = "refunds.statutory"
    statutory = _table(section["statutory"], where)
    _known_keys(statutory, STATUTORY_KEYS, where)
    value = statutory.get("withdrawal_regions")
    where = f"{where}.withdrawal_regions"
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InvalidInput(f"{where}: expected a list of region codes")
    return frozenset(value)


def _business_days(window: Mapping[str, Any], key: str, where: str) -> int:
    value = window.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_BUSINESS_DAYS:
        raise InvalidInput(
            f"{where}.{key}: expected a whole number of business days, 0 to {MAX_BUSINESS_DAYS}"
        )
    return value


def _window(raw: Any, where: str) -> ArrivalWindow:
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"{where}: expected a table such as {{ earliest = 5, latest = 10 }}")
    _known_keys(raw, WINDOW_KEYS, where)
    earliest = _business_days(raw, "earliest", where)
    latest = _business_days(raw, "latest", where)
    if earliest > latest:
        raise InvalidInput(f"{where}: earliest ({earliest}) is after latest ({latest})")
    return ArrivalWindow(earliest, latest)


def _arrival(section: Mapping[str, Any]) -> ArrivalWindows:
    """Business days until refunded money arrives, by payment method kind; without the
    table, or for a kind it leaves out, the card's window (by default 5 to 10)."""
    if "arrival" not in section:
        return ArrivalWindows()
    where = "refunds.arrival"
    table = _table(section["arrival"], where)
    _known_keys(table, METHOD_KINDS, where)
    windows = {
        PaymentMethodKind(kind): _window(raw, f"{where}.{kind}") for kind, raw in table.items()
    }
    card = windows.pop(PaymentMethodKind.CARD, None)
    others = MappingProxyType(windows)
    return ArrivalWindows(others=others) if card is None else ArrivalWindows(card, others)


def _names_differ(rules: tuple[Rule, ...]) -> None:
    """A name says which rule decided (`fairsub policy explain`): two alike would not."""
    seen: dict[str, int] = {}
    for number, rule in enumerate(rules, start=1):
        if not rule.name:
            continue
        first = seen.setdefault(rule.name.casefold(), number)
        if first != number:
            raise InvalidInput(
                f"refunds.rules[{number}].name: {rule.name!r} is already the name of rule {first}"
            )


def parse_policy(data: Mapping[str, Any]) -> RefundPolicy:
    """The `[refunds]` section of parsed TOML as a policy. When the same file has a catalog
    (`[regions.*]`), every region a rule names must be one of its regions."""
    if "refunds" not in data:
        raise InvalidInput("refunds: expected a [refunds] section with [[refunds.rules]]")
    section = _table(data["refunds"], "refunds")
    _known_keys(section, SECTION_KEYS, "refunds")
    raw_rules = section.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise InvalidInput("refunds.rules: expected at least one [[refunds.rules]] table")
    regions = data.get("regions")
    known = regions if isinstance(regions, Mapping) else None
    rules = tuple(
        _rule(raw, f"refunds.rules[{number}]", known)
        for number, raw in enumerate(raw_rules, start=1)
    )
    _names_differ(rules)
    withdrawal = _statutory(section)
    arrival = _arrival(section)
    if withdrawal is None:
        return RefundPolicy(rules, arrival=arrival)
    return RefundPolicy(rules, withdrawal, arrival)


def describe(rule: Rule) -> str:
    """One line for `fairsub policy check`: 'GB · year · renewal · within 60 days → full'."""
    regions = ANY if rule.regions == ANY else ", ".join(sorted(rule.regions))
    terms = ", ".join(t.value for t in Term if t in rule.terms)
    kinds = ", ".join(k.value for k in ChargeKind if k in rule.kinds)
    window = "any time" if rule.within_days is None else f"within {rule.within_days} days"
    return f"{regions} · {terms} · {kinds} · {window} → {rule.outcome.value}"


def describe_arrival(arrival: ArrivalWindows) -> list[str]:
    """Lines for `fairsub policy check`: 'card: 5 to 10 business days after it is sent'."""
    return [
        f"{kind.value}: {window.words} business days after it is sent"
        + ("" if own else " (as card)")
        for kind, window, own in arrival.by_kind()
    ]
