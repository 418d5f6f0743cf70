"""The production dagster.yaml template loads against the real PostgreSQL and stores runs."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from tests.fixtures.database import ADMIN_URL

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "dagster.yaml"


@pytest.fixture
def dagster_database() -> Iterator[str]:
    """An empty PostgreSQL database for Dagster's own storage."""
    name = f"dagster_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_production_template_runs_on_postgres(
    dagster_database: str, tmp_path: Path, monkeypatch
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(TEMPLATE, home / "dagster.yaml")
    server = psycopg.conninfo.conninfo_to_dict(ADMIN_URL)
    monkeypatch.setenv("DAGSTER_PG_USERNAME", server.get("user", "postgres"))
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", server.get("password", ""))
    monkeypatch.setenv("DAGSTER_PG_HOST", server.get("host", "127.0.0.1"))
    monkeypatch.setenv("DAGSTER_PG_PORT", str(server.get("port", 5432)))
    monkeypatch.setenv("DAGSTER_PG_DB", dagster_database)

    @dg.asset
    def probe_asset() -> None:
        return None

    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.run_coordinator.dequeue_interval_seconds == 1
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 20
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert instance.run_monitoring_enabled
        assert not instance.telemetry_enabled
        result = dg.materialize([probe_asset], instance=instance)
        assert result.success
        stored = instance.get_latest_materialization_event(probe_asset.key)
        assert stored is not None and stored.run_id == result.run_id
