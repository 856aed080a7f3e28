"""Reading the operator's TOML file (the catalog, the refund policy), with every error
turned into FILE:LINE: what is wrong."""

from __future__ import annotations

import codecs
import re
import tomllib
from collections.abc import Callable, Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any, TypeVar

from fairsub.domain.errors import InvalidInput

T = TypeVar("T")


Step = tuple[str, int | None]  # a key, and for an array of tables which one (from 1)
STEP = re.compile(r"([^.\[\]]+)(?:\[(\d+)\])?")


def _steps(path: str) -> tuple[Step, ...] | None:
    """An error's path as steps: 'refunds.rules[2].outcome' -> refunds, rules 2, outcome."""
    steps: list[Step] = []
    for part in path.split("."):
        found = STEP.fullmatch(part)
        if found is None:
            return None
        steps.append((found.group(1), int(found.group(2)) if found.group(2) else None))
    return tuple(steps)


def _keys(toml: str) -> tuple[tuple[str, ...], Any] | None:
    """The keys a one-line TOML document nests, as TOML reads them (quotes, spaces and
    all), and what is at the bottom: '[ plans."x" ]' -> (('plans', 'x'), {})."""
    try:
        node: Any = tomllib.loads(toml)
    except tomllib.TOMLDecodeError:
        return None
    keys: list[str] = []
    while isinstance(node, dict) and len(node) == 1:
        ((key, node),) = node.items()
        keys.append(key)
    return tuple(keys), node


def _header(line: str) -> tuple[tuple[str, ...], bool] | None:
    """The keys of a table header, and whether it is one of an array of tables."""
    if not line.lstrip().startswith("["):
        return None
    found = _keys(line)
    if found is None or not found[0]:
        return None
    return found[0], isinstance(found[1], list)


def _key(line: str) -> tuple[str, ...] | None:
    """The dotted key a `key = value` line sets: 'prices.US = 499' -> ('prices', 'US')."""
    key, equals, _ = line.partition("=")
    if not equals or not key.strip():
        return None
    found = _keys(f"{key}= 0")
    return found[0] if found is not None and found[0] else None


def _covers(short: tuple[Step, ...], long: tuple[Step, ...]) -> bool:
    """Whether `short` leads to `long`; a step with no number stands for the whole array."""
    return len(short) <= len(long) and all(
        a == b and (i is None or j is None or i == j)
        for (a, i), (b, j) in zip(short, long, strict=False)
    )


def _places(lines: list[str]) -> list[tuple[int, tuple[Step, ...]]]:
    """(line, path) of every table header and every key line, in file order."""
    places: list[tuple[int, tuple[Step, ...]]] = []
    table: tuple[Step, ...] = ()  # the root table, until the first header
    arrays: dict[tuple[str, ...], int] = {}
    for number, line in enumerate(lines, start=1):
        header = _header(line)
        if header is not None:
            keys, is_array = header
            index = None
            if is_array:
                index = arrays[keys] = arrays.get(keys, 0) + 1
            table = (*((k, None) for k in keys[:-1]), (keys[-1], index))
            places.append((number, table))
            continue
        key = _key(line)
        if key is not None:
            places.append((number, (*table, *((k, None) for k in key))))
    return places


def line_of(text: str, path: str) -> int | None:
    """The line that best holds the thing at an error's path, such as plans.x.prices.US or
    refunds.rules[2].outcome: the line that sets it, else the nearest line above it in the
    file's tree (`prices = {...}`, the header [plans.x]), else None."""
    steps = _steps(path)
    if steps is None:
        return None
    best, best_depth = None, 0
    for number, place in _places(text.splitlines()):
        if _covers(place, steps):
            depth = len(place)
        elif _covers(steps, place):
            depth = len(steps)
        else:
            continue
        if depth > best_depth:
            best, best_depth = number, depth
    return best


TOML_LINE = re.compile(r"at line (\d+)")


def parse_located(text: str, name: str, parse: Callable[[Mapping[str, Any]], T]) -> T:
    """Parse an operator's TOML file, turning every error into NAME:LINE: what is wrong."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        at = TOML_LINE.search(str(error))
        where = f"{name}:{at.group(1)}" if at else name
        raise InvalidInput(f"{where}: not valid TOML: {error}") from None
    try:
        return parse(data)
    except InvalidInput as error:
        path = error.message.split(":", 1)[0]
        line = line_of(text, path)
        where = f"{name}:{line}" if line else name
        raise InvalidInput(f"{where}: {error.message}") from None


def read_operator_file(path: Path | None) -> tuple[str, str]:
    """(text, name) of the operator's file, or of the demo catalog shipped with fairsub."""
    if path is None:
        text = files("fairsub").joinpath("data/demo-catalog.toml").read_text("utf-8")
        return text, "demo-catalog.toml"
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InvalidInput(f"cannot read {path}: {error.strerror}") from None
    return decoded(data, str(path)), str(path)


def decoded(data: bytes, name: str) -> str:
    """The file's text. TOML is UTF-8; the byte-order mark some editors put first is
    dropped, and line ends become newlines, as reading the file as text would."""
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise InvalidInput(
            f"{name}:{line}: not UTF-8 text (byte 0x{data[error.start]:02x}); "
            "save the file as UTF-8"
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")
