"""Alembic environment: runs against the connection fairsub hands it, or the URL in config."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from fairsub.adapters.db.engine import make_engine
from fairsub.adapters.db.tables import metadata

config = context.config


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as new_connection:
        run(new_connection)
    engine.dispose()
