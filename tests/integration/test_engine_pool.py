"""The PostgreSQL engine's pool: a connection that died while idle is never handed out, and
the pool recovers from one that died a moment after use."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from fairsub.adapters.db.engine import make_engine

pytestmark = pytest.mark.postgres

IDLE = 0.2  # seconds after which these tests' engines ping a pooled connection


@pytest.fixture
def engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url, pool_size=1, ping_after_idle=IDLE)
    yield engine
    engine.dispose()


def backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        pid: int = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
    return pid


def terminate(pg_url: str, pid: int) -> None:
    """What a server restart or a dropped network does to one connection."""
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()


def test_a_connection_that_died_while_idle_is_replaced_before_use(
    engine: Engine, pg_url: str
) -> None:
    first = backend_pid(engine)
    terminate(pg_url, first)
    time.sleep(IDLE * 1.5)

    second = backend_pid(engine)  # no error: the ping found it dead, the pool made another

    assert second != first


def test_a_connection_used_a_moment_ago_is_trusted_and_the_pool_recovers(
    engine: Engine, pg_url: str
) -> None:
    first = backend_pid(engine)
    terminate(pg_url, first)

    # Not pinged (used within IDLE): the statement meets the dead connection and fails...
    with pytest.raises(OperationalError) as failed:
        backend_pid(engine)
    assert failed.value.connection_invalidated

    # ...and the next one gets a fresh connection.
    assert backend_pid(engine) not in (first, None)
