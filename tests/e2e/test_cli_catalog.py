"""Operator files gone wrong, as `fairsub catalog check`, `fairsub policy check` and the
commands that start the portal or the worker see them: one line on stderr naming FILE:LINE,
exit 2, never a traceback."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.e2e.test_cli_billing import DEMO_CATALOG, FAIRSUB, run


def refused_at_start(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """As `run`, for a command that should refuse to start: one that starts instead is
    stopped after 30 seconds, and the test fails."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FAIRSUB_")}
    environment.update({"FAIRSUB_DATA_DIR": str(tmp_path / "var"), "FAIRSUB_CLOCK": "test", **env})
    try:
        return subprocess.run(
            [*FAIRSUB, *args], capture_output=True, text=True, env=environment, timeout=30
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"`fairsub {' '.join(args)}` started instead of refusing to")


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


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ('timezone = "Europe/Berlin"', 'timezone = "Mars/Olympus"'),
            "regions.DE.timezone: no time zone 'Mars/Olympus'",
        ),
        (('locale = "de_DE"', 'locale = "xx_YY"'), "regions.DE.locale: no locale 'xx_YY'"),
        (("trial_days = 30", "trail_days = 30"), "plans.identity-monthly.trail_days: unknown key"),
        (("US = 499,", "US = -499,"), "plans.antivirus-monthly.prices.US: a price cannot be"),
        (
            ('outcome = "pro_rata"', 'outcome = "half"'),
            "refunds.rules[2].outcome: expected one of full, pro_rata, none",
        ),
        (
            ('name = "annual-full-60-days"', 'name = "uk-annual-renewal-full"'),
            "refunds.rules[3].name: 'uk-annual-renewal-full' is already the name of rule 1",
        ),
    ],
)
def test_catalog_check_refuses_what_the_portal_could_not_use_and_names_the_line(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    demo = DEMO_CATALOG.read_text("utf-8")
    text = demo.replace(*change, 1)
    changed = next(
        n
        for n, (a, b) in enumerate(zip(demo.splitlines(), text.splitlines(), strict=True), 1)
        if a != b
    )
    broken = tmp_path / "catalog.toml"
    broken.write_text(text, encoding="utf-8")

    result = run(tmp_path, "catalog", "check", str(broken))

    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"fairsub: {broken}:{changed}: {message}")


def test_catalog_check_says_what_refund_policy_the_file_has(tmp_path: Path) -> None:
    checked = run(tmp_path, "catalog", "check", str(DEMO_CATALOG))
    assert checked.returncode == 0, checked.stderr
    assert "Refund policy: 4 rules; the statutory 14-day withdrawal applies in 31 regions" in (
        checked.stdout
    )

    text = DEMO_CATALOG.read_text("utf-8")
    without = tmp_path / "catalog.toml"
    without.write_text(text[: text.index("[refunds.statutory]")], encoding="utf-8")
    checked = run(tmp_path, "catalog", "check", str(without))
    assert checked.returncode == 0, checked.stderr
    assert "No refund policy ([refunds]) in this file: set FAIRSUB_REFUND_POLICY_FILE" in (
        checked.stdout
    )


@pytest.mark.parametrize("command", ["serve", "worker"])
@pytest.mark.parametrize("policy", ["broken", "missing"])
def test_the_portal_and_the_worker_do_not_start_with_a_broken_or_missing_refund_policy(
    tmp_path: Path, command: str, policy: str
) -> None:
    text = DEMO_CATALOG.read_text("utf-8")
    if policy == "broken":
        text = text.replace('outcome = "pro_rata"', 'outcome = "half"')
        expected = f"{line_of(text, 'half')}: refunds.rules[2].outcome: expected one of full"
    else:
        text = text[: text.index("[refunds.statutory]")]
        expected = " no refund policy: FAIRSUB_CATALOG_FILE has no [refunds] section"
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(text, encoding="utf-8")
    args = ("--port", str(free_port()), "--workers", "1") if command == "serve" else ("--once",)
    assert run(tmp_path, "db", "upgrade").returncode == 0

    result = refused_at_start(tmp_path, command, *args, FAIRSUB_CATALOG_FILE=str(catalog))

    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"fairsub: {catalog}:{expected}")
