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
