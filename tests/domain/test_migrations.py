"""Alembic owns the schema: head matches the models, and down/up round-trips."""

from __future__ import annotations

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from tests.fixtures.database import ADMIN_URL
from vidpipe_dagster.db import migrate
from vidpipe_dagster.db.models import Base
from vidpipe_dagster.db.session import make_engine


@pytest.fixture
def scratch_pg_url(database_url):
    name = database_url.rsplit("/", 1)[1] + "_mig"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield database_url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _head() -> str:
    """The one head of the packaged migrations (a second head is a merge mistake)."""
    from alembic.script import ScriptDirectory

    (head,) = ScriptDirectory.from_config(migrate.alembic_config("sqlite://")).get_heads()
    return head


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_head_matches_models_and_round_trips(backend, scratch_pg_url, tmp_path):
    url = scratch_pg_url if backend == "postgresql" else f"sqlite:///{tmp_path / 'm.db'}"
    assert migrate.current_revision(url) is None
    migrate.upgrade(url)
    assert migrate.current_revision(url) == _head()
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
            assert diff == []
            tables = set(inspect(connection).get_table_names())
        assert {"video_production_pipelines", "video_production_nodes", "api_tokens"} <= tables
        if backend == "postgresql":
            with engine.connect() as connection:
                columns = {
                    c["name"]: c for c in inspect(connection).get_columns("video_production_nodes")
                }
            assert type(columns["inputs"]["type"]).__name__ == "JSONB"
    finally:
        engine.dispose()
    migrate.downgrade(url, "base")
    assert migrate.current_revision(url) is None
    migrate.upgrade(url)
    assert migrate.current_revision(url) == _head()
