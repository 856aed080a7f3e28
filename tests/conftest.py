"""Shared fixtures: databases (SQLite and a throwaway PostgreSQL), a wired container.

PostgreSQL is started by the tests: as a normal user through pytest-postgresql, as root
(CI runs as root, and PostgreSQL refuses to run as root) as the `postgres` user with
runuser. Browser and PostgreSQL tests skip on a laptop without them, but under CI=true a
missing dependency is a failure.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_postgresql import factories
from sqlalchemy import create_engine, text

from fairsub.adapters.db import migrate
from fairsub.adapters.db.engine import make_engine
from fairsub.adapters.passwords import Argon2Hasher
from fairsub.bootstrap import Container, bootstrap
from fairsub.config import Settings
from tests.fakes import FakeClock, FakeGateway, FakeMailer

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_BINDIRS = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
PG_BIN = PG_BINDIRS[-1] if PG_BINDIRS else None
CHROMIUM = "/usr/bin/chromium"


def require(available: bool, what: str) -> None:
    """Skip on a developer machine without `what`; fail under CI=true."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is required under CI=true but is missing")
    pytest.skip(f"{what} is not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


postgresql_proc = factories.postgresql_proc(
    executable=f"{PG_BIN}/pg_ctl" if PG_BIN else "pg_ctl", port=None
)


@pytest.fixture(scope="session")
def pg_server(request: pytest.FixtureRequest) -> Iterator[str]:
    """A running PostgreSQL server for the session; yields the URL of its postgres DB."""
    require(PG_BIN is not None, "PostgreSQL (Debian package postgresql)")
    if os.geteuid() != 0:
        proc = request.getfixturevalue("postgresql_proc")
        password = f":{proc.password}" if proc.password else ""
        yield f"postgresql+psycopg://{proc.user}{password}@{proc.host}:{proc.port}/postgres"
        return
    postgres = pwd.getpwnam("postgres")
    base = Path(tempfile.mkdtemp(prefix="fairsub-pg-"))
    os.chown(base, postgres.pw_uid, postgres.pw_gid)
    data, port = base / "data", free_port()

    def as_postgres(*args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    as_postgres(f"{PG_BIN}/initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
    options = (
        f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    as_postgres(
        f"{PG_BIN}/pg_ctl", "-D", str(data), "-o", options, "-w", "-l", str(base / "log"), "start"
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        as_postgres(f"{PG_BIN}/pg_ctl", "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_template(pg_server: str) -> str:
    """A migrated database that each test copies with CREATE DATABASE ... TEMPLATE."""
    admin = create_engine(pg_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text("DROP DATABASE IF EXISTS fairsub_template"))
        connection.execute(text("CREATE DATABASE fairsub_template"))
    admin.dispose()
    url = pg_server.rsplit("/", 1)[0] + "/fairsub_template"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    return "fairsub_template"


@pytest.fixture
def pg_url(pg_server: str, pg_template: str) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE {pg_template}'))
    yield pg_server.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "fairsub.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    target = tmp_path / "fairsub.db"
    shutil.copy(sqlite_template, target)
    return f"sqlite:///{target}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test that takes this runs once on SQLite and once on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    url: str = request.getfixturevalue(name)
    return url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def mailer() -> FakeMailer:
    return FakeMailer()


# Cheap argon2 parameters keep the suite fast; production strength is tested on its own.
FAST_HASHER = Argon2Hasher(memory_kib=64, time_cost=1, parallelism=1)


def make_container(
    url: str,
    data_dir: Path,
    clock: object,
    mailer: object = None,
    gateway: object = None,
    **settings: object,
) -> Container:
    """A wired container on the given database; the fake gateway unless one is given."""
    return bootstrap(
        Settings(database_url=url, data_dir=data_dir, secret_key="t" * 40, **settings),  # type: ignore[arg-type]
        clock=clock,  # type: ignore[arg-type]
        mailer=mailer,  # type: ignore[arg-type]
        hasher=FAST_HASHER,
        gateway=gateway or FakeGateway(),  # type: ignore[arg-type]
    )


@pytest.fixture
def container(
    db_url: str, tmp_path: Path, clock: FakeClock, mailer: FakeMailer
) -> Iterator[Container]:
    built = make_container(db_url, tmp_path, clock, mailer)
    yield built
    built.close()
