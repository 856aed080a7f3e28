"""Reading the refund policy from the operator's TOML, with errors that point at a line.

The policy lives in the catalog file's `[refunds]` section (one operator file); a file
with only that section works too. Rules are an array of tables, `[[refunds.rules]]`, whose
n-th header `_rule_line` finds; every other path (`refunds.statutory`, `refunds.arrival`)
is found by the operator file's `line_of`.
"""

from __future__ import annotations

import re
from pathlib import Path

from fairsub.adapters.operator_file import line_of as table_line_of
from fairsub.adapters.operator_file import parse_located, read_operator_file, table_header
from fairsub.domain.refund_rules import parse_policy
from fairsub.domain.refunds import RefundPolicy

RULE_PATH = re.compile(r"^refunds\.rules\[(\d+)\](?:\.(\w+))?$")


def _rule_line(text: str, number: int, key: str | None) -> int | None:
    """The line of `key` in the number-th [[refunds.rules]] table, else its header."""
    lines = text.splitlines()
    headers = [
        n for n, line in enumerate(lines, start=1) if table_header(line) == "[[refunds.rules]]"
    ]
    if number > len(headers):
        return None
    header = headers[number - 1]
    if key is None:
        return header
    for offset, below in enumerate(lines[header:], start=header + 1):
        if below.lstrip().startswith("["):
            break
        if below.split("=", 1)[0].strip() == key:
            return offset
    return header


def line_of(text: str, path: str) -> int | None:
    found = RULE_PATH.match(path)
    if found is not None:
        line = _rule_line(text, int(found.group(1)), found.group(2))
        # Rules written inline (rules = [{...}]): point at the `rules` key instead.
        return line if line is not None else table_line_of(text, "refunds.rules")
    return table_line_of(text, path)


def parse_text(text: str, name: str = "catalog") -> RefundPolicy:
    return parse_located(text, name, parse_policy, line_of)


def load_policy(path: Path | None) -> RefundPolicy:
    """The refund policy in the operator's catalog file, or the demo catalog's."""
    return parse_text(*read_operator_file(path))
