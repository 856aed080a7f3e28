"""The command line as a newcomer runs it: real processes, real exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, make_url, select, text

from fairsub.adapters.db.tables import accounts, subscriptions
from tests.conftest import free_port

FAIRSUB = [sys.executable, "-m", "fairsub.entrypoints.cli.main"]


def run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FAIRSUB_")}
    environment.update(FAIRSUB_DATA_DIR=str(tmp_path / "var"), **env)
    return subprocess.run(
        [*FAIRSUB, *args], capture_output=True, text=True, env=environment, timeout=120, check=False
    )


def table_count(tmp_path: Path, table) -> int:  # type: ignore[no-untyped-def]
    engine = create_engine(f"sqlite:///{tmp_path / 'var' / 'fairsub.db'}")
    with engine.connect() as connection:
        found = int(connection.execute(select(func.count()).select_from(table)).scalar_one())
    engine.dispose()
    return found


def test_upgrade_and_seed_demo_twice_changes_nothing_the_second_time(tmp_path: Path) -> None:
    upgrade = run(tmp_path, "db", "upgrade")
    assert upgrade.returncode == 0, upgrade.stderr
    assert "upgraded from empty to revision" in upgrade.stdout

    first = run(tmp_path, "seed-demo")
    assert first.returncode == 0, first.stderr
    assert "demo@example.com / fairsub-demo" in first.stdout
    before = (table_count(tmp_path, accounts), table_count(tmp_path, subscriptions))

    second = run(tmp_path, "seed-demo")
    assert second.returncode == 0
    assert "nothing changed" in second.stdout
    assert (table_count(tmp_path, accounts), table_count(tmp_path, subscriptions)) == before
    assert before[1] >= 3


def test_audit_verify_exits_1_and_names_the_tampered_entry(tmp_path: Path) -> None:
    assert run(tmp_path, "db", "upgrade").returncode == 0
    assert run(tmp_path, "seed-demo").returncode == 0
    intact = run(tmp_path, "audit", "verify")
    assert intact.returncode == 0 and "hash chain verified" in intact.stdout

    engine = create_engine(f"sqlite:///{tmp_path / 'var' / 'fairsub.db'}")
    with engine.begin() as connection:
        connection.execute(text("UPDATE audit_events SET actor = 'someone-else' WHERE seq = 2"))
    engine.dispose()

    broken = run(tmp_path, "audit", "verify")
    assert broken.returncode == 1
    (line,) = broken.stderr.splitlines()  # nothing left where the progress bar was
    assert line.startswith("fairsub: audit log broken at entry 2")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FAIRSUB_SMTP_PORT": "not-a-port"}, "FAIRSUB_SMTP_PORT: input should be"),
        ({"FAIRSUB_ENV": "production"}, "FAIRSUB_SECRET_KEY must be set"),
        ({"FAIRSUB_DATABASE_URL": "nosuchdb://x"}, "FAIRSUB_DATABASE_URL is not a database"),
    ],
)
def test_bad_settings_give_one_line_on_stderr_and_exit_2(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    result = run(tmp_path, "db", "upgrade", **env)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_help_lists_every_command(tmp_path: Path) -> None:
    result = run(tmp_path, "--help")
    assert result.returncode == 0
    for command in ("db", "seed-demo", "serve", "demo", "audit"):
        assert command in result.stdout


@pytest.mark.postgres
def test_upgrade_and_seed_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    url = pg_url  # already migrated from the template: upgrade must be a no-op
    upgrade = run(tmp_path, "db", "upgrade", FAIRSUB_DATABASE_URL=url)
    assert upgrade.returncode == 0, upgrade.stderr
    assert "already at revision" in upgrade.stdout
    # Which database it was, its password hidden: without FAIRSUB_DATABASE_URL it would have
    # been SQLite in the data directory, and nothing else would have said so.
    named = make_url(url)
    if named.password is None:  # the test server trusts local users: any password will do
        named = named.set(password="not-for-the-terminal")
    current = run(tmp_path, "db", "current", FAIRSUB_DATABASE_URL=named.render_as_string(False))
    assert current.returncode == 0, current.stderr
    assert current.stdout.endswith(f":***@{named.host}:{named.port}/{named.database}\n")
    assert str(named.password) not in current.stdout
    unset = run(tmp_path, "db", "current", FAIRSUB_DATABASE_URL="")
    assert unset.stdout.endswith(f"sqlite:///{tmp_path / 'var' / 'fairsub.db'}\n")
    seed = run(tmp_path, "seed-demo", FAIRSUB_DATABASE_URL=url)
    assert seed.returncode == 0, seed.stderr
    assert run(tmp_path, "audit", "verify", FAIRSUB_DATABASE_URL=url).returncode == 0


def test_a_usage_error_is_one_line_from_a_real_process(tmp_path: Path) -> None:
    result = run(tmp_path, "clock", "advance", "--days", "-3")
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("fairsub: invalid value for '--days'")
    assert line.endswith("clock advance --help)")


@pytest.mark.parametrize("host", ["garbage.invalid", "192.0.2.1"])
def test_serve_on_an_address_not_of_this_machine_says_so_not_that_the_port_is_taken(
    tmp_path: Path, host: str
) -> None:
    assert run(tmp_path, "db", "upgrade").returncode == 0
    result = run(tmp_path, "serve", "--host", host, "--port", str(free_port()), "--workers", "1")
    assert (result.returncode, result.stdout) == (2, "")
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"fairsub: cannot listen on {host}:")
    assert line.endswith("--host must be an address of this machine, such as 127.0.0.1 or 0.0.0.0")
    assert "another server" not in line


def test_serve_with_its_database_down_says_so_before_any_banner(tmp_path: Path) -> None:
    nobody = f"postgresql+psycopg://fairsub@127.0.0.1:{free_port()}/fairsub"
    result = run(tmp_path, "serve", "--port", str(free_port()), FAIRSUB_DATABASE_URL=nobody)
    assert (result.returncode, result.stdout) == (2, "")
    (line,) = result.stderr.splitlines()
    assert line.startswith("fairsub: database error: OperationalError")
