"""Alembic entry points: ``vidpipe db upgrade`` and friends call these."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from vidpipe_dagster.settings import get_settings, normalize_database_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(database_url: str | None = None) -> Config:
    """An Alembic config pointing at the packaged migrations and ``database_url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    url = normalize_database_url(database_url or get_settings().resolved_database_url)
    config.attributes["database_url"] = url
    return config


def upgrade(database_url: str | None = None, revision: str = "head") -> None:
    """Bring the database at ``database_url`` to ``revision`` (head by default)."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str | None = None, revision: str = "base") -> None:
    """Downgrade the database at ``database_url`` to ``revision``."""
    command.downgrade(alembic_config(database_url), revision)


def current_revision(database_url: str | None = None) -> str | None:
    """The revision the database is at, or None for an empty database."""
    from alembic.migration import MigrationContext

    from vidpipe_dagster.db.session import make_engine

    engine = make_engine(database_url or get_settings().resolved_database_url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
