"""A second execute of a node already queued or in flight is a 409 naming its run.

A real ``dagster-webserver`` with the ``QueuedRunCoordinator`` and no daemon: a launched
run stays ``QUEUED``, which is exactly the window in which a second execute used to start
a second run.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from api.main import create_app
from tests.api.conftest import BASE, make_token
from tests.fixtures.webserver import (
    vidpipe_webserver,
)
from vidpipe_dagster.db.models import Node
from vidpipe_dagster.domain.waiting import Wait, row_structure
from vidpipe_dagster.runs.launcher import DagsterLauncher
from vidpipe_dagster.settings import Settings

DAGSTER_YAML = """\
telemetry:
  enabled: false
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
"""
RUNS = "query { runsOrError { ... on Runs { results { runId status } } } }"


@pytest.fixture(scope="module")
def dagster_settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    root = tmp_path_factory.mktemp("execute_conflict")
    with vidpipe_webserver(database_url=database_url, root=root, dagster_yaml=DAGSTER_YAML) as (
        _home,
        settings,
    ):
        yield settings


@pytest.fixture
def client(dagster_settings: Settings, sessions) -> Iterator[TestClient]:
    app = create_app(
        settings=dagster_settings,
        sessions=sessions,
        notify_change=lambda _pipeline_uuid: None,
        launcher=lambda: DagsterLauncher(settings=dagster_settings),
    )
    token = make_token(sessions, admin=True)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as test_client:
        yield test_client


def _create(client: TestClient, path: str, kind: str, body: dict) -> dict:
    response = client.post(f"{BASE}{path}", json={kind: body})
    assert response.status_code == 201, response.text
    return response.json()[kind]


def _runs(url: str) -> list[dict]:
    body = httpx.post(f"{url}/graphql", json={"query": RUNS}, timeout=60).json()
    return body["data"]["runsOrError"]["results"]


def _set_row(sessions, node_uuid: str, **values) -> None:
    with sessions() as session, session.begin():
        session.execute(update(Node).where(Node.id == uuid.UUID(node_uuid)).values(**values))


def test_second_execute_of_a_queued_node_is_a_409_naming_the_run(
    client: TestClient, dagster_settings: Settings
) -> None:
    pipeline = _create(client, "", "pipeline", {"title": "Twice"})
    script = _create(
        client,
        f"/{pipeline['uuid']}/nodes",
        "node",
        {"title": "Script", "type": "asset", "asset": {"type": "text", "content": "Hi."}},
    )
    url = f"{BASE}/{pipeline['uuid']}/nodes/{script['uuid']}/execute"
    first = client.post(url)
    assert first.status_code == 202, first.text
    run_id = first.json()["run_id"]

    second = client.post(url)
    assert second.status_code == 409, second.text
    assert second.json() == {
        "error": {
            "type": "conflict",
            "message": f"Node 'Script' is already in Dagster run {run_id} (queued); "
            "wait for it to finish",
        }
    }
    again = client.post(f"{BASE}/{pipeline['uuid']}/execute", json={"node_uuids": [script["uuid"]]})
    assert again.status_code == 409 and run_id in again.json()["error"]["message"]
    assert [run["runId"] for run in _runs(dagster_settings.dagster_url)] == [run_id]


def test_execute_of_a_node_in_flight_or_waiting_is_a_409_naming_the_run(
    client: TestClient, dagster_settings: Settings, sessions
) -> None:
    before = len(_runs(dagster_settings.dagster_url))
    pipeline = _create(client, "", "pipeline", {"title": "Busy"})
    talk = {"title": "Talk", "type": "talking-head", "config": {"provider": "heygen"}}
    talk["config"].update(avatarId="a", voiceId="v", script="Hello.")
    node = _create(client, f"/{pipeline['uuid']}/nodes", "node", talk)
    url = f"{BASE}/{pipeline['uuid']}/nodes/{node['uuid']}/execute"
    metadata = {
        "process_uuid": "p-1",
        "dagster_run_id": "run-in-flight",
        "provider": "heygen",
        "provider_job_id": "abc123",
    }
    _set_row(sessions, node["uuid"], status="in_progress", metadata_=metadata)

    response = client.post(url)
    assert response.status_code == 409
    assert response.json()["error"] == {
        "type": "conflict",
        "message": "Node 'Talk' is already waiting on heygen job abc123 in Dagster run "
        "run-in-flight; wait for it to finish",
    }

    with sessions() as session:
        row = session.get(Node, uuid.UUID(node["uuid"]))
        structure = row_structure(row)
    wait = Wait(
        provider="heygen",
        since="2026-12-01T08:00:00+00:00",
        token="t",
        structure=structure,
        run_id="run-that-asked",
    )
    stage = "waiting for a heygen slot, 3 ahead"
    waiting = {"waiting": wait.as_json(), "stage": stage}
    _set_row(sessions, node["uuid"], status="pending", metadata_=waiting)
    response = client.post(url)
    assert response.status_code == 409
    assert response.json()["error"]["message"] == (
        f"Node 'Talk' is {stage} (asked for by Dagster run run-that-asked); "
        "it starts when a slot frees"
    )
    assert len(_runs(dagster_settings.dagster_url)) == before


def _node_row(sessions, node_uuid: str) -> Node:
    with sessions() as session:
        return session.get(Node, uuid.UUID(node_uuid))


def test_concurrent_executes_of_a_free_node_launch_one_run(
    client: TestClient, dagster_settings: Settings, sessions
) -> None:
    """Eight threads execute the same asset node at once: one run, seven 409s naming it."""
    pipeline = _create(client, "", "pipeline", {"title": "Racing"})
    script = _create(
        client,
        f"/{pipeline['uuid']}/nodes",
        "node",
        {"title": "Script", "type": "asset", "asset": {"type": "text", "content": "Go."}},
    )
    url = f"{BASE}/{pipeline['uuid']}/nodes/{script['uuid']}/execute"
    before = {run["runId"] for run in _runs(dagster_settings.dagster_url)}
    barrier = threading.Barrier(8)

    def execute(_index: int):
        barrier.wait()
        return client.post(url)

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(execute, range(8)))

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [202] + [409] * 7, [r.text for r in responses]
    run_id = next(r.json()["run_id"] for r in responses if r.status_code == 202)
    new_runs = [r["runId"] for r in _runs(dagster_settings.dagster_url) if r["runId"] not in before]
    assert new_runs == [run_id]
    for response in responses:
        if response.status_code == 409:
            assert response.json()["error"]["type"] == "conflict"
            assert run_id in response.json()["error"]["message"], response.text
    metadata = _node_row(sessions, script["uuid"]).metadata_
    assert metadata["queued_run"] == run_id and "launching" not in metadata
    assert metadata["stage"] == f"queued in Dagster run {run_id}: waiting for a run slot"


def test_a_node_its_run_finished_executes_again_while_the_run_winds_down(
    client: TestClient, dagster_settings: Settings, sessions
) -> None:
    """The run stays active (other steps, checks, teardown) after the node completed in it:
    executing the node again is a new run at once, not a 409; a transient failure the
    run's step retry will redo is still a 409."""
    pipeline = _create(client, "", "pipeline", {"title": "Again"})
    script = _create(
        client,
        f"/{pipeline['uuid']}/nodes",
        "node",
        {"title": "Script", "type": "asset", "asset": {"type": "text", "content": "Once."}},
    )
    url = f"{BASE}/{pipeline['uuid']}/nodes/{script['uuid']}/execute"
    first = client.post(url)
    assert first.status_code == 202, first.text
    run_id = first.json()["run_id"]
    assert run_id in {run["runId"] for run in _runs(dagster_settings.dagster_url)}

    retrying = {"dagster_run_id": run_id, "error": "429", "retryable": True}
    _set_row(sessions, script["uuid"], status="failed", metadata_=retrying)
    refused = client.post(url)
    assert refused.status_code == 409 and run_id in refused.json()["error"]["message"]

    done = {"dagster_run_id": run_id, "process_uuid": "p", "completed_at": "2026-12-01T09:00"}
    _set_row(sessions, script["uuid"], status="pending", metadata_=done)
    again = client.post(url)
    assert again.status_code == 202, again.text
    assert again.json()["run_id"] != run_id

    second = again.json()["run_id"]
    passed = {
        "dagster_run_id": run_id,
        "not_run_by": second,
        "stage": f"not run: input had not completed (run {second})",
    }
    _set_row(sessions, script["uuid"], status="pending", metadata_=passed)
    third = client.post(url)
    assert third.status_code == 202, third.text
    assert third.json()["run_id"] not in (run_id, second)
