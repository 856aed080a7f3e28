"""The operator's catalog file as fairsub reads it: every problem is one message that
names FILE:LINE, whatever is wrong with the file."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest

from fairsub.adapters.catalog_file import load_catalog
from fairsub.adapters.policy_file import load_policy
from fairsub.domain.errors import InvalidInput

DEMO = (files("fairsub") / "data" / "demo-catalog.toml").read_text(encoding="utf-8")


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


# Encoding


def test_a_file_that_is_not_utf8_is_refused_with_the_line_of_the_first_bad_byte(
    tmp_path: Path,
) -> None:
    text = DEMO.replace('name = "Deutschland"', 'name = "Österreich"')
    path = tmp_path / "catalog.toml"
    path.write_bytes(text.encode("utf-8").replace("Ö".encode(), "Ö".encode("latin-1")))
    expected = (
        f"{path}:{line_of(text, 'Österreich')}: not UTF-8 text (byte 0xd6); save the file as UTF-8"
    )

    for load in (load_catalog, load_policy):
        with pytest.raises(InvalidInput) as refused:
            load(path)
        assert refused.value.message == expected


def test_a_utf8_file_with_a_byte_order_mark_or_windows_line_ends_is_read(tmp_path: Path) -> None:
    path = tmp_path / "catalog.toml"
    path.write_bytes(b"\xef\xbb\xbf" + DEMO.replace("\n", "\r\n").encode("utf-8"))

    assert load_catalog(path).regions["JP"].name == "日本"
    assert len(load_policy(path).rules) == 4
