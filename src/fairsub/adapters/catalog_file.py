"""Reading the operator's catalog TOML, with errors that point at a line."""

from __future__ import annotations

from pathlib import Path

from fairsub.adapters.operator_file import parse_located, read_operator_file
from fairsub.domain.catalog import Catalog, parse_catalog


def parse_text(text: str, name: str = "catalog") -> Catalog:
    return parse_located(text, name, parse_catalog)


def load_catalog(path: Path | None) -> Catalog:
    """The operator's catalog, or the demo catalog shipped with fairsub."""
    return parse_text(*read_operator_file(path))
