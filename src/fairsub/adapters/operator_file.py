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


HEADER = re.compile(r"\s*(\[\[?[^\[\]#]*\]\]?)\s*(?:#.*)?")


def table_header(line: str) -> str | None:
    """A table header without its comment: '[refunds.arrival]  # why' -> '[refunds.arrival]'."""
    found = HEADER.fullmatch(line)
    return found.group(1) if found else None


def line_of(text: str, path: str) -> int | None:
    """The line that holds the key at a dotted path such as plans.x.term, as best we can:
    the table header [plans.x], then the first line below it that sets `term`."""
    parts = path.split(".")
    lines = text.splitlines()
    for depth in range(len(parts), 0, -1):
        table, key = ".".join(parts[:depth]), parts[depth] if depth < len(parts) else None
        for number, line in enumerate(lines, start=1):
            if table_header(line) != f"[{table}]":
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


TOML_LINE = re.compile(r"at line (\d+)")


def parse_located(
    text: str,
    name: str,
    parse: Callable[[Mapping[str, Any]], T],
    locate: Callable[[str, str], int | None] = line_of,
) -> T:
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
        line = locate(text, path)
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
