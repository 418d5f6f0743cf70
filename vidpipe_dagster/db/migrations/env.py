"""Alembic environment: runs migrations against the URL the caller put in the config."""

from __future__ import annotations

from alembic import context

from vidpipe_dagster.db.models import Base
from vidpipe_dagster.db.session import make_engine
from vidpipe_dagster.settings import get_settings

config = context.config
target_metadata = Base.metadata


def run_migrations() -> None:
    """Run migrations online, on a connection of our own engine."""
    url = config.attributes.get("database_url") or get_settings().resolved_database_url
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=connection.dialect.name == "sqlite",
            )
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
    finally:
        engine.dispose()


run_migrations()
