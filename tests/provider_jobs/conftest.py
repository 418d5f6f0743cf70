"""Fixtures for the provider execution tests: settings pointing at the fake providers, the
vidpipe resource on the test database with local storage, and in-flight nodes."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.fakes.elevenlabs import FakeElevenLabs
from tests.fakes.heygen import FakeHeyGen
from tests.fakes.runway import FakeRunway
from tests.fakes.veo import FakeVeo
from vidpipe_dagster.db.models import Node, Pipeline
from vidpipe_dagster.db.snapshot import take_snapshot
from vidpipe_dagster.definitions import build_definitions
from vidpipe_dagster.domain.lifecycle import Lifecycle
from vidpipe_dagster.resources.dagster_resources import VidpipeResource
from vidpipe_dagster.settings import Settings, get_settings

WEBHOOK_SECRET = "whsec-test-heygen"


@pytest.fixture
def provider_env(
    monkeypatch: pytest.MonkeyPatch,
    fake_elevenlabs: FakeElevenLabs,
    fake_heygen: FakeHeyGen,
    fake_veo: FakeVeo,
    fake_runway: FakeRunway,
) -> Iterator[dict[str, str]]:
    """``VIDPIPE_*`` variables pointing every provider at its fake (one attempt per call)."""
    env = {
        "VIDPIPE_ELEVENLABS_API_KEY": fake_elevenlabs.api_key,
        "VIDPIPE_ELEVENLABS_BASE_URL": fake_elevenlabs.url,
        "VIDPIPE_HEYGEN_API_KEY": fake_heygen.api_key,
        "VIDPIPE_HEYGEN_BASE_URL": fake_heygen.url,
        "VIDPIPE_HEYGEN_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "VIDPIPE_GEMINI_API_KEY": fake_veo.api_key,
        "VIDPIPE_GEMINI_BASE_URL": fake_veo.base_url,
        "VIDPIPE_RUNWAY_API_KEY": fake_runway.api_key,
        "VIDPIPE_RUNWAY_BASE_URL": fake_runway.url,
        "VIDPIPE_PROVIDER_MAX_ATTEMPTS": "1",
        "VIDPIPE_PROVIDER_TIMEOUT_SECONDS": "5",
        "VIDPIPE_PROVIDER_STEP_RETRIES": "0",
        "VIDPIPE_PROVIDER_RETRY_BASE_SECONDS": "0",
        "VIDPIPE_POLL_TIME_BUDGET_SECONDS": "20",
    }
    monkeypatch.delenv("VIDPIPE_PROVIDERS", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield env
    get_settings.cache_clear()


@pytest.fixture
def provider_settings(provider_env: dict[str, str]) -> Settings:
    """The settings ``provider_env`` makes."""
    return Settings()


@pytest.fixture
def resource(database_url: str, tmp_path: Path, provider_env) -> VidpipeResource:
    """The vidpipe resource: test database, local storage, providers from ``provider_env``."""
    return VidpipeResource(
        database_url=database_url,
        storage_url=(tmp_path / "storage").as_uri(),
        home=str(tmp_path / "home"),
    )


def node_row(sessions: sessionmaker[Session], node_uuid: str) -> Node:
    """The node's row now."""
    with sessions() as session:
        return session.get(Node, uuid.UUID(node_uuid))


def pipeline_row(sessions: sessionmaker[Session], pipeline_uuid: str) -> Pipeline:
    """The pipeline's row now."""
    with sessions() as session:
        return session.get(Pipeline, uuid.UUID(pipeline_uuid))


def stored_objects(resource: VidpipeResource, pipeline_uuid: str, node_uuid: str) -> list[Path]:
    """The files stored for a node (partial uploads excluded)."""
    root = Path(resource.storage().uri_for("")[len("file://") :])
    folder = root / "pipelines" / pipeline_uuid / "nodes" / node_uuid
    return sorted(p for p in folder.glob("*") if not p.name.startswith("."))


@pytest.fixture
def in_flight(sessions: sessionmaker[Session]) -> Callable[..., str]:
    """``in_flight(node_uuid, provider=, job_id=, **metadata)``: start the node's execution
    and record a submitted job the way the bridge does; returns the process_uuid."""
    lifecycle = Lifecycle(sessions)

    def start(node_uuid: str, *, provider: str, job_id: str, **metadata: Any) -> str:
        process_uuid = lifecycle.started(node_uuid, {"dagster_run_id": "test-run"})
        lifecycle.updated(
            node_uuid,
            {
                "provider": provider,
                "provider_job_id": job_id,
                "stage": "submitted",
                "submitted_at": metadata.pop("submitted_at", None) or lifecycle_now().isoformat(),
                "poll_attempts": 0,
                **metadata,
            },
            process_uuid,
        )
        return process_uuid

    return start


def lifecycle_now():
    """The current time in UTC."""
    from datetime import UTC, datetime

    return datetime.now(UTC)


def run_in_process(
    sessions: sessionmaker[Session],
    resource: VidpipeResource,
    instance: dg.DagsterInstance,
    keys: list[dg.AssetKey],
    *,
    tags: dict[str, str] | None = None,
) -> dg.ExecuteInProcessResult:
    """Compile the current rows and materialize ``keys`` in one in-process run."""
    with sessions() as session:
        snapshot = take_snapshot(session)
    defs = build_definitions(snapshot=snapshot, resource=resource)
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        instance=instance, asset_selection=keys, raise_on_error=False, tags=tags
    )


def sensor_tick(
    sessions: sessionmaker[Session],
    resource: VidpipeResource,
    instance: dg.DagsterInstance,
) -> dg.SensorResult | dg.SkipReason:
    """Evaluate the provider sensor once and persist its asset events as the daemon does."""
    from vidpipe_dagster.orchestration.provider_sensor import SENSOR_NAME

    with sessions() as session:
        snapshot = take_snapshot(session)
    defs = build_definitions(snapshot=snapshot, resource=resource)
    sensor = defs.resolve_sensor_def(SENSOR_NAME)
    context = dg.build_sensor_context(
        instance=instance, definitions=defs, resources={"vidpipe": resource}
    )
    result = sensor(context)
    if isinstance(result, dg.SensorResult):
        for event in result.asset_events:
            instance.report_runless_asset_event(event)
    return result


def all_nodes(sessions: sessionmaker[Session], pipeline_uuid: str) -> dict[str, Node]:
    """The pipeline's nodes by UUID."""
    with sessions() as session:
        rows = session.scalars(select(Node).where(Node.pipeline_id == uuid.UUID(pipeline_uuid)))
        return {row.uuid: row for row in rows}
