"""The money side of the command line, as real processes on a test clock."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

FAIRSUB = [sys.executable, "-m", "fairsub.entrypoints.cli.main"]
DEMO_CATALOG = Path(__file__).resolve().parents[2] / "src/fairsub/data/demo-catalog.toml"


def run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FAIRSUB_")}
    environment.update({"FAIRSUB_DATA_DIR": str(tmp_path / "var"), "FAIRSUB_CLOCK": "test", **env})
    return subprocess.run(
        [*FAIRSUB, *args], capture_output=True, text=True, env=environment, timeout=300, check=False
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def start_worker(tmp_path: Path) -> subprocess.Popen[str]:
    """`fairsub worker` on the test clock over the data in tmp_path, its output piped."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FAIRSUB_")}
    environment.update(FAIRSUB_DATA_DIR=str(tmp_path / "var"), FAIRSUB_CLOCK="test")
    return subprocess.Popen(
        [*FAIRSUB, "worker", "--interval", "600"],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def logs_only(stderr: str) -> list[dict[str, object]]:
    """Each line on stderr a JSON log entry (an empty line fails: what a bar left)."""
    return [json.loads(line) for line in stderr.splitlines()]


def test_days_pass_renewals_are_charged_and_the_ledgers_agree(tmp_path: Path) -> None:
    ok(run(tmp_path, "db", "upgrade"))
    ok(run(tmp_path, "seed-demo"))
    assert "(test clock)" in ok(run(tmp_path, "clock", "show"))

    advance = run(tmp_path, "clock", "advance", "--days", "27")

    # The result alone on stdout; on stderr the log lines, and no line left by the bar.
    (advanced,) = ok(advance).splitlines()
    assert "email_sent" in [entry["event"] for entry in logs_only(advance.stderr)]
    # Within 27 days each demo monthly plan renews at most once; Kenji's (10 days old) surely.
    charged = int(re.search(r"Charged (\d+)", advanced).group(1))  # type: ignore[union-attr]
    assert 1 <= charged <= 2
    agreed = ok(run(tmp_path, "billing", "reconcile"))
    compared = int(re.search(r"Ledgers agree: (\d+) charges compared", agreed).group(1))  # type: ignore[union-attr]
    assert compared >= charged + 4  # the demo's paid history, and the new renewals
    agree = f"Ledgers agree: {compared} charges compared"
    assert "Nothing to review" in ok(run(tmp_path, "billing", "review"))
    billing_run = run(tmp_path, "billing", "run")
    assert "charged" in ok(billing_run)  # the summary table
    logs_only(billing_run.stderr)
    assert agree in ok(run(tmp_path, "billing", "reconcile"))


def test_the_clock_moves_only_as_a_test_clock_and_only_forward(tmp_path: Path) -> None:
    ok(run(tmp_path, "db", "upgrade"))
    system = run(tmp_path, "clock", "advance", "--days", "1", FAIRSUB_CLOCK="system")
    assert system.returncode == 2
    assert system.stderr.strip() == "fairsub: the clock can only be moved with FAIRSUB_CLOCK=test"
    past = run(tmp_path, "clock", "set", "2001-01-01")
    assert past.returncode == 2
    assert "only moves forward" in past.stderr
    garbage = run(tmp_path, "clock", "set", "next tuesday")
    assert garbage.returncode == 2
    assert len(garbage.stderr.strip().splitlines()) == 1


def test_catalog_check_accepts_the_demo_and_points_at_the_bad_line(tmp_path: Path) -> None:
    assert "OK — 3 products" in ok(run(tmp_path, "catalog", "check", str(DEMO_CATALOG)))
    broken = tmp_path / "catalog.toml"
    broken.write_text(DEMO_CATALOG.read_text().replace('term = "year"', 'term = "yearly"', 1))
    result = run(tmp_path, "catalog", "check", str(broken))
    assert result.returncode == 2
    line = next(
        n for n, text in enumerate(broken.read_text().splitlines(), 1) if 'term = "yearly"' in text
    )
    assert f"{broken}:{line}: plans." in result.stderr
    assert "expected 'month' or 'year'" in result.stderr
    missing = run(tmp_path, "catalog", "check", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr


def test_worker_once_does_a_pass_and_reports_it(tmp_path: Path) -> None:
    ok(run(tmp_path, "db", "upgrade"))
    ok(run(tmp_path, "seed-demo"))
    assert "charged 0" in ok(run(tmp_path, "worker", "--once"))
    ok(run(tmp_path, "clock", "set", str(datetime.now(UTC).date() + timedelta(days=40))))

    renewed = run(tmp_path, "worker", "--once")

    (summary,) = ok(renewed).splitlines()  # the report alone; the log lines on stderr
    assert re.match(r"charged [1-9]", summary), summary
    assert "email_sent" in [entry["event"] for entry in logs_only(renewed.stderr)]


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_the_worker_stops_cleanly_on_ctrl_c_and_on_sigterm(
    tmp_path: Path, stop: signal.Signals
) -> None:
    """A service manager stops it with SIGTERM: the same clean ending as Ctrl-C."""
    ok(run(tmp_path, "db", "upgrade"))
    worker = start_worker(tmp_path)
    try:
        assert worker.stdout is not None
        assert "a pass every" in worker.stdout.readline()
        worker.send_signal(stop)
        out, err = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert worker.returncode == 0, err
    assert "fairsub worker stopped." in out
    assert "Traceback" not in err


def test_a_price_increase_is_announced_with_the_notice_period_enforced(tmp_path: Path) -> None:
    today = datetime.now(UTC).date()
    soon, later = str(today + timedelta(days=3)), str(today + timedelta(days=200))
    ok(run(tmp_path, "db", "upgrade"))
    ok(run(tmp_path, "seed-demo"))
    announce = ("billing", "announce-price", "antivirus-monthly", "GB", "549", "--effective")

    too_soon = run(tmp_path, *announce, soon)
    assert too_soon.returncode == 2
    assert len(too_soon.stderr.strip().splitlines()) == 1

    announced = ok(run(tmp_path, *announce, later))
    assert f"GBP 5.49 from {later}" in announced


def test_the_worker_sends_the_portals_email_within_seconds_when_serve_runs_without_relay(
    tmp_path: Path,
) -> None:
    """`fairsub serve --no-relay` beside `fairsub worker`: the confirmation still goes out
    at once, from the worker, long before its next billing pass."""
    import time

    from fairsub.adapters.email.maildir import MaildirMailer
    from fairsub.bootstrap import bootstrap
    from fairsub.config import Settings
    from fairsub.services import subscriptions

    ok(run(tmp_path, "db", "upgrade"))
    ok(run(tmp_path, "seed-demo"))
    worker = start_worker(tmp_path)
    settings = Settings(data_dir=tmp_path / "var", clock="test", _env_file=None)  # type: ignore[call-arg]
    container = bootstrap(settings)
    mailbox = MaildirMailer(settings.mailbox_dir, settings.mail_from)
    try:
        deadline = time.monotonic() + 60
        while "a pass every" not in (worker.stdout.readline() if worker.stdout else ""):
            assert time.monotonic() < deadline and worker.poll() is None
        time.sleep(1.0)  # its first pass is under way; what it queues is not ours
        with container.uows().read() as uow:
            account, _ = uow.accounts.by_email("demo@example.com") or (None, None)
            assert account is not None
            subscription = next(
                s
                for s in uow.subscriptions.for_account(account.id)
                if s.auto_renew and not s.reseller
            )
        cancellation = subscriptions.turn_off_auto_renew(
            container.uows(),
            container.clock,
            account=account,
            subscription_id=subscription.id,
            actor=f"customer:{account.id}",
            channel="portal",
        )

        deadline = time.monotonic() + 15
        while not any(cancellation.reference in m.subject for m in mailbox.messages()):
            assert time.monotonic() < deadline, "the worker did not send the email"
            time.sleep(0.2)
    finally:
        worker.terminate()
        worker.communicate(timeout=30)
        container.close()


STOPPED_MID_RUN = """
import os, signal, sys, time
from fairsub.services import billing
def interrupted(*args, **kwargs):  # the signal arrives while the run is under way
    os.kill(os.getpid(), signal.SIG{name})
    time.sleep(5)
billing.run = interrupted
from fairsub.entrypoints.cli.main import app
sys.argv = ["fairsub", "billing", "run"]
app()
"""


@pytest.mark.parametrize("name", ["INT", "TERM"])
def test_a_billing_run_stopped_midway_says_so_in_one_line(tmp_path: Path, name: str) -> None:
    # Ctrl-C used to end it silently (exit 130, nothing said), SIGTERM on the spot.
    ok(run(tmp_path, "db", "upgrade"))
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FAIRSUB_")}
    environment.update(FAIRSUB_DATA_DIR=str(tmp_path / "var"))
    stopped = subprocess.run(
        [sys.executable, "-c", STOPPED_MID_RUN.format(name=name)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )
    assert stopped.returncode == 130
    assert stopped.stdout == ""
    assert stopped.stderr.startswith("fairsub: billing run stopped before the end; ")
    assert len(stopped.stderr.splitlines()) == 1
