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


def test_upgrade_names_existing_rows_from_their_titles(scratch_pg_url):
    url = scratch_pg_url
    migrate.upgrade(url, "0005_pipeline_events")
    engine = make_engine(url)
    pipelines = [(f"00000000-0000-4000-8000-00000000000{i}", "Demo video") for i in (1, 2)]
    nodes = [
        ("10000000-0000-4000-8000-000000000001", pipelines[0][0], "Voice over", "2026-01-01"),
        ("10000000-0000-4000-8000-000000000002", pipelines[0][0], "Voice-over", "2026-01-02"),
        ("10000000-0000-4000-8000-000000000003", pipelines[1][0], "Voice over", "2026-01-01"),
    ]
    with engine.begin() as connection:
        for number, (pipeline_id, title) in enumerate(pipelines):
            connection.exec_driver_sql(
                "INSERT INTO video_production_pipelines (id, version, title, config, metadata, "
                "created_at, updated_at) VALUES (%s, '1.0', %s, '{}', '{}', %s, %s)",
                (pipeline_id, title, f"2026-01-0{number + 1}", "2026-01-05"),
            )
        for node_id, pipeline_id, title, created in nodes:
            connection.exec_driver_sql(
                "INSERT INTO video_production_nodes (id, pipeline_id, title, type, inputs, "
                "config, status, created_at, updated_at) "
                "VALUES (%s, %s, %s, 'asset', '{}', '{}', 'pending', %s, '2026-01-05')",
                (node_id, pipeline_id, title, created),
            )
    migrate.upgrade(url)
    with engine.connect() as connection:
        named = connection.exec_driver_sql(
            "SELECT id::text, dagster_name, updated_at::date::text FROM video_production_pipelines "
            "UNION ALL SELECT id::text, dagster_name, updated_at::date::text "
            "FROM video_production_nodes ORDER BY 1"
        ).all()
    engine.dispose()
    assert [(name, updated) for _id, name, updated in named] == [
        ("demo_video", "2026-01-05"),
        ("demo_video_2", "2026-01-05"),
        ("voice_over", "2026-01-05"),
        ("voice_over_2", "2026-01-05"),
        ("voice_over", "2026-01-05"),
    ]
