"""Reading the operator's catalog TOML, with errors that point at a line."""

from __future__ import annotations

import tomllib
from importlib.resources import files
from pathlib import Path

from fairsub.domain.catalog import Catalog, parse_catalog
from fairsub.domain.errors import InvalidInput


def _line_of(text: str, path: str) -> int | None:
    """The line that holds the key at a dotted path such as plans.x.term, as best we can:
    the table header [plans.x], then the first line below it that sets `term`."""
    parts = path.split(".")
    lines = text.splitlines()
    for depth in range(len(parts), 0, -1):
        table, key = ".".join(parts[:depth]), parts[depth] if depth < len(parts) else None
        for number, line in enumerate(lines, start=1):
            if line.strip() != f"[{table}]":
                continue
            if key is None:
                return number
            for offset, below in enumerate(lines[number:], start=number + 1):
                if below.lstrip().startswith("["):
                    break
                if below.split("=", 1)[0].strip() == key:
                    return offset
            return number
    return None


def parse_text(text: str, name: str = "catalog") -> Catalog:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InvalidInput(f"{name}: not valid TOML: {error}") from None
    try:
        return parse_catalog(data)
    except InvalidInput as error:
        path = error.message.split(":", 1)[0]
        line = _line_of(text, path)
        where = f"{name}:{line}" if line else name
        raise InvalidInput(f"{where}: {error.message}") from None


def load_catalog(path: Path | None) -> Catalog:
    """The operator's catalog, or the demo catalog shipped with fairsub."""
    if path is None:
        text = files("fairsub").joinpath("data/demo-catalog.toml").read_text("utf-8")
        return parse_text(text, "demo-catalog.toml")
    try:
        text = path.read_text("utf-8")
    except OSError as error:
        raise InvalidInput(f"cannot read {path}: {error.strerror}") from None
    return parse_text(text, str(path))
