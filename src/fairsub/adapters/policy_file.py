"""Reading the refund policy from the operator's TOML: the `[refunds]` section of the
catalog file (one operator file), or of a file with only that section."""

from __future__ import annotations

from pathlib import Path

from fairsub.adapters.operator_file import parse_located, read_operator_file
from fairsub.domain.refund_rules import parse_policy
from fairsub.domain.refunds import RefundPolicy


def parse_text(text: str, name: str = "catalog") -> RefundPolicy:
    return parse_located(text, name, parse_policy)


def load_policy(path: Path | None) -> RefundPolicy:
    """The refund policy in the operator's catalog file, or the demo catalog's."""
    return parse_text(*read_operator_file(path))
