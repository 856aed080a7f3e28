"""What the commands print, read by people and by scripts: help that reads as written,
counts in the right number, tables that keep what an operator copies.

The commands run in this process (the `fairsub` fixture)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from tests.e2e.conftest import Fairsub


@pytest.mark.parametrize("group", ["billing", "clock", "cases", "db", "audit"])
def test_each_command_is_summed_up_on_one_line_of_the_help(
    fairsub: Fairsub, monkeypatch: pytest.MonkeyPatch, group: str
) -> None:
    """A line break inside a docstring's first paragraph showed in the list of commands
    ("… end what will not" and "renew." on the next line)."""
    monkeypatch.setenv("COLUMNS", "200")  # wide enough for every summary
    code, out, _ = fairsub(group, "--help")
    assert code == 0
    commands = out[out.index("Commands") :].splitlines()[1:-1]
    continued = [line for line in commands if line.startswith("│  ")]
    assert commands and continued == []


def test_counts_of_one_are_singular(fairsub: Fairsub) -> None:
    assert fairsub("db", "upgrade")[0] == 0
    assert fairsub("worker", "--once")[0] == 0  # stores the catalog: one audit entry
    code, out, _ = fairsub("audit", "verify")
    assert (code, out) == (0, "Audit log intact: 1 entry, hash chain verified.\n")


def test_review_shows_the_whole_idempotency_key_in_80_columns(
    fairsub: Fairsub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The operator looks each one up at the gateway: 'fs-20270219T094546Z-…' finds nothing."""
    assert fairsub("db", "upgrade")[0] == 0
    assert fairsub("seed-demo")[0] == 0  # with its paid history
    with closing(sqlite3.connect(tmp_path / "var" / "fairsub.db")) as db, db:
        db.execute("UPDATE payment_attempts SET status = 'unknown'")  # every answer lost
        keys = [key for (key,) in db.execute("SELECT idempotency_key FROM payment_attempts")]
    monkeypatch.setenv("COLUMNS", "80")

    code, out, _ = fairsub("billing", "review")

    assert code == 0
    assert keys and all(f" {key} " in out for key in keys)
