"""Migrations go up and down on both engines, and match the tables the code uses."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from fairsub.adapters.db import migrate
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
