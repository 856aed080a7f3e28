"""Reading the operator's catalog TOML, with errors that point at a line."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError

from fairsub.adapters.operator_file import parse_located, read_operator_file
from fairsub.domain.catalog import Catalog, parse_catalog
from fairsub.domain.errors import InvalidInput
from fairsub.domain.refund_rules import parse_policy
from fairsub.domain.refunds import RefundPolicy


def _usable_here(catalog: Catalog) -> Catalog:
    """Every region's time zone and locale are ones this machine can format in: the
    portal formats each page in them, and would fail the region's customers instead."""
    for code, region in catalog.regions.items():
        try:
            ZoneInfo(region.timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise InvalidInput(
                f"regions.{code}.timezone: no time zone {region.timezone!r} "
                "(use a name from the tz database, such as Europe/Berlin)"
            ) from None
        try:
            Locale.parse(region.locale)
        except (UnknownLocaleError, ValueError):
            raise InvalidInput(
                f"regions.{code}.locale: no locale {region.locale!r} "
                "(use language_TERRITORY, such as de_DE)"
            ) from None
    return catalog


def _catalog(data: Mapping[str, Any]) -> Catalog:
    return _usable_here(parse_catalog(data))


def parse_text(text: str, name: str = "catalog") -> Catalog:
    return parse_located(text, name, _catalog)


def load_catalog(path: Path | None) -> Catalog:
    """The operator's catalog, or the demo catalog shipped with fairsub."""
    return parse_text(*read_operator_file(path))


def _catalog_and_policy(data: Mapping[str, Any]) -> tuple[Catalog, RefundPolicy | None]:
    return _catalog(data), parse_policy(data) if "refunds" in data else None


def check_file(path: Path) -> tuple[Catalog, RefundPolicy | None]:
    """The catalog in the operator's file and, if the file has a [refunds] section, the
    refund policy in it, checked as `fairsub policy check` checks it. Without one, the
    portal reads the policy from FAIRSUB_REFUND_POLICY_FILE."""
    return parse_located(*read_operator_file(path), _catalog_and_policy)
