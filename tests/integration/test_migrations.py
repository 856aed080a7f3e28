"""Migrations go up and down on both engines, and match the tables the code uses."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from fairsub.adapters.db import migrate
from fairsub.adapters.db.billing import _IN_FLIGHT
from fairsub.adapters.db.engine import make_engine
from fairsub.adapters.db.tables import metadata


def test_migrated_schema_matches_the_tables_in_code(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert migrate.current_revision(engine) == migrate.head_revision(engine)
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), metadata)
        assert diff == []
    finally:
        engine.dispose()


def test_migrations_go_down_to_empty_and_up_again(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        migrate.downgrade(engine, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        migrate.upgrade(engine)
        assert set(metadata.tables) <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_a_url_with_percent_encoding_reaches_alembic_unchanged() -> None:
    """A PostgreSQL socket path or a password with "%" in the URL once stopped
    `fairsub db upgrade` with a ConfigParser interpolation error."""
    url = "postgresql+psycopg://fairsub:p%25ss@/fairsub?host=%2Fvar%2Frun%2Fpostgresql"
    engine = create_engine(url)
    try:
        config = migrate.alembic_config(engine)
        assert config.get_main_option("sqlalchemy.url") == url
    finally:
        engine.dispose()


def test_in_flight_charges_are_found_through_their_partial_index(sqlite_url: str) -> None:
    """SQLite uses a partial index only when the query spells its condition the same way;
    every "is a charge in flight?" question goes through IN_FLIGHT, and so through it."""
    engine = make_engine(sqlite_url)
    try:
        with engine.connect() as connection:
            query = _IN_FLIGHT.compile(engine)
            plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {query}", (1, 1, 0)).all()
        assert any("ix_payment_attempts_in_flight" in str(row) for row in plan), plan
    finally:
        engine.dispose()
