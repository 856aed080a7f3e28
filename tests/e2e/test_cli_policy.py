"""`fairsub policy check` and `fairsub policy explain`, as real processes on a test clock."""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

from tests.e2e.test_cli_billing import DEMO_CATALOG, ok, run


def _field(output: str, name: str) -> str:
    found = re.search(rf"^{name}:\s+(.*)$", output, re.M)
    assert found, f"no {name} in:\n{output}"
    return found.group(1)


def _subscription_id(tmp_path: Path, plan_code: str) -> int:
    with sqlite3.connect(tmp_path / "var" / "fairsub.db") as db:
        row = db.execute(
            "SELECT s.id FROM subscriptions s JOIN accounts a ON a.id = s.account_id "
            "WHERE a.email = 'demo@example.com' AND s.plan_code = ?",
            (plan_code,),
        ).fetchone()
    assert row, plan_code
    return int(row[0])


def test_policy_check_accepts_the_demo_and_points_at_the_bad_line(tmp_path: Path) -> None:
    checked = ok(run(tmp_path, "policy", "check", str(DEMO_CATALOG)))
    assert f"{DEMO_CATALOG}: OK — 4 refund rules" in checked
    assert "rule 2 (uk-annual-renewal-pro-rata): GB · year · renewal · any time → pro_rata" in (
        checked
    )
    assert "  card: 5 to 10 business days after it is sent\n" in checked
    assert "  sepa_debit: 2 to 5 business days after it is sent\n" in checked

    broken = tmp_path / "catalog.toml"
    broken.write_text(DEMO_CATALOG.read_text().replace('outcome = "pro_rata"', 'outcome = "some"'))
    result = run(tmp_path, "policy", "check", str(broken))

    assert result.returncode == 2
    line = next(
        n for n, text in enumerate(broken.read_text().splitlines(), 1) if 'outcome = "some"' in text
    )
    assert result.stderr.strip() == (
        f"fairsub: {broken}:{line}: refunds.rules[2].outcome: expected one of full, pro_rata, none"
    )
    assert result.stdout == ""


def test_policy_explain_gives_the_demo_customers_decisions_and_why(tmp_path: Path) -> None:
    ok(run(tmp_path, "db", "upgrade"))
    ok(run(tmp_path, "seed-demo"))
    annual = _subscription_id(tmp_path, "total360-annual")
    monthly = _subscription_id(tmp_path, "antivirus-monthly")

    # The 360 Annual was bought 20 days ago in GB: refunded in full for 40 more days.
    explained = ok(run(tmp_path, "policy", "explain", str(annual)))
    asked = datetime.fromisoformat(_field(explained, "Asked at"))
    deadline = datetime.fromisoformat(_field(explained, "Deadline").split(" (")[0])
    assert _field(explained, "Decision") == "full refund of GBP 79.99"
    assert _field(explained, "Why").startswith(
        "Full refund: you are within 60 days of your purchase"
    )
    assert abs(deadline - (asked + timedelta(days=40))) < timedelta(minutes=5)
    assert _field(explained, "Rule") == "rule 3 (annual-full-60-days)"
    assert _field(explained, "Arrives") == "5 to 10 business days after the refund is sent"

    # The monthly is 95 days old: its latest charge is a renewal, which gets nothing.
    explained = ok(run(tmp_path, "policy", "explain", str(monthly)))
    assert _field(explained, "Decision") == "no refund"
    assert _field(explained, "Why").startswith(
        "No refund: the refund policy gives none for the renewal of a monthly plan"
    )
    assert _field(explained, "Deadline") == "none"

    # Asked the day after that deadline, the window has closed.
    late = (deadline + timedelta(days=1)).date().isoformat()
    explained = ok(run(tmp_path, "policy", "explain", str(annual), "--at", late))
    assert _field(explained, "Decision") == "no refund"
    assert "60-day refund window after your purchase" in _field(explained, "Why")

    unknown = run(tmp_path, "policy", "explain", "999")
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == "fairsub: There is no subscription 999."
    garbage = run(tmp_path, "policy", "explain", str(annual), "--at", "next tuesday")
    assert garbage.returncode == 2
    assert len(garbage.stderr.strip().splitlines()) == 1
    assert "not a date: 'next tuesday'" in garbage.stderr
