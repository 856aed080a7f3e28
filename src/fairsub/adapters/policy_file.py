"""Reading the refund policy from the operator's TOML, with errors that point at a line.

The policy lives in the catalog file's `[refunds]` section (one operator file); a file
with only that section works too. Rules are an array of tables, `[[refunds.rules]]`, whose
n-th header `_rule_line` finds; every other path is found by the catalog reader's `_line_of`.
"""

from __future__ import annotations

import re
import tomllib
from importlib.resources import files
from pathlib import Path

from fairsub.adapters.catalog_file import _line_of
from fairsub.domain.errors import InvalidInput
from fairsub.domain.refund_rules import parse_policy
from fairsub.domain.refunds import RefundPolicy

RULE_PATH = re.compile(r"^refunds\.rules\[(\d+)\](?:\.(\w+))?$")
TOML_LINE = re.compile(r"at line (\d+)")


def _rule_line(text: str, number: int, key: str | None) -> int | None:
    """The line of `key` in the number-th [[refunds.rules]] table, else its header."""
    lines = text.splitlines()
    headers = [n for n, line in enumerate(lines, start=1) if line.strip() == "[[refunds.rules]]"]
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
        return line if line is not None else _line_of(text, "refunds.rules")
    return _line_of(text, path)


def parse_text(text: str, name: str = "catalog") -> RefundPolicy:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        at = TOML_LINE.search(str(error))
        where = f"{name}:{at.group(1)}" if at else name
        raise InvalidInput(f"{where}: not valid TOML: {error}") from None
    try:
        return parse_policy(data)
    except InvalidInput as error:
        path = error.message.split(":", 1)[0]
        line = line_of(text, path)
        where = f"{name}:{line}" if line else name
        raise InvalidInput(f"{where}: {error.message}") from None


def load_policy(path: Path | None) -> RefundPolicy:
    """The refund policy in the operator's catalog file, or the demo catalog's."""
    if path is None:
        text = files("fairsub").joinpath("data/demo-catalog.toml").read_text("utf-8")
        return parse_text(text, "demo-catalog.toml")
    try:
        text = path.read_text("utf-8")
    except OSError as error:
        raise InvalidInput(f"cannot read {path}: {error.strerror}") from None
    return parse_text(text, str(path))
