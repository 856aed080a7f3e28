"""`fairsub catalog check` and `fairsub policy check` on files an operator got wrong: one
line on stderr naming FILE:LINE, exit 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_cli_billing import DEMO_CATALOG, run


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize("command", ["catalog", "policy"])
def test_a_file_saved_as_latin1_is_one_line_naming_the_line_not_a_traceback(
    tmp_path: Path, command: str
) -> None:
    text = DEMO_CATALOG.read_text("utf-8").replace('name = "Deutschland"', 'name = "Österreich"')
    latin1 = tmp_path / "catalog.toml"
    latin1.write_bytes(text.encode("utf-8").replace("Ö".encode(), "Ö".encode("latin-1")))

    result = run(tmp_path, command, "check", str(latin1))

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"fairsub: {latin1}:{line_of(text, 'Österreich')}: not UTF-8 text (byte 0xd6); "
        "save the file as UTF-8\n"
    )
