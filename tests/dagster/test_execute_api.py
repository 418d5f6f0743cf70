"""The execute endpoints against a real Dagster webserver, and a run killed mid-step.

One ``dagster-webserver`` for the module, on a temporary DAGSTER_HOME (telemetry off) and a
workspace loading ``vidpipe_dagster.definitions`` on the test database. The webserver runs
without the daemon: with ``DefaultRunCoordinator`` it launches runs itself, and no sensor or
automation tick launches runs or reloads the location behind the test's back.
"""

from __future__ import annotations

import os
import re
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.main import create_app
from tests.api.conftest import BASE, make_token
from tests.fixtures.webserver import asset_keys, vidpipe_webserver
from vidpipe_dagster.assets.asset_keys import key_of
from vidpipe_dagster.db.models import Node
from vidpipe_dagster.orchestration.sensors import failed_run_backstop
from vidpipe_dagster.resources.dagster_resources import VidpipeResource
from vidpipe_dagster.runs.launcher import DagsterLauncher
from vidpipe_dagster.settings import Settings

RUN_SECONDS = 120
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}
DAGSTER_YAML = """\
telemetry:
  enabled: false
run_coordinator:
  module: dagster._core.run_coordinator
  class: DefaultRunCoordinator
"""
RUN_STATUS = "query Run($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }"


@dataclass
class Dagster:
    """The running webserver: its URL, DAGSTER_HOME and the vidpipe settings it runs with."""

    url: str
    home: Path
    settings: Settings


def graphql(url: str, query: str, variables: dict) -> dict:
    response = httpx.post(
        f"{url}/graphql", json={"query": query, "variables": variables}, timeout=60
    )
    response.raise_for_status()
    return response.json()["data"]


@pytest.fixture(scope="module")
def dagster(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dagster]:
    """``dagster-webserver`` on a workspace of the vidpipe location over the test database."""
    root = tmp_path_factory.mktemp("execute_api")
    with vidpipe_webserver(database_url=database_url, root=root, dagster_yaml=DAGSTER_YAML) as (
        home,
        settings,
    ):
        yield Dagster(url=settings.dagster_url, home=home, settings=settings)


class CountingLauncher(DagsterLauncher):
    """The real launcher, counting the reloads it makes."""

    reloads = 0

    def reload(self, location: str | None = None, **kwargs) -> None:
        """Reload as usual and count it."""
        self.reloads += 1
        super().reload(location, **kwargs)


@pytest.fixture
def launcher(dagster: Dagster) -> CountingLauncher:
    return CountingLauncher(settings=dagster.settings)


@pytest.fixture
def client(dagster: Dagster, sessions, launcher: CountingLauncher) -> Iterator[TestClient]:
    """The API on the test database, launching through the webserver; writes notify nobody,
    so only the launcher reloads the location."""
    app = create_app(
        settings=dagster.settings,
        sessions=sessions,
        notify_change=lambda _pipeline_uuid: None,
        launcher=lambda: launcher,
    )
    token = make_token(sessions, admin=True)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as test_client:
        yield test_client


def create(client: TestClient, path: str, kind: str, body: dict) -> dict:
    response = client.post(f"{BASE}{path}", json={kind: body})
    assert response.status_code == 201, response.text
    return response.json()[kind]


def wait_for_run(url: str, run_id: str) -> str:
    deadline = time.monotonic() + RUN_SECONDS
    while time.monotonic() < deadline:
        run = graphql(url, RUN_STATUS, {"id": run_id})["runOrError"]
        if run.get("status") in FINISHED:
            return run["status"]
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} did not finish in {RUN_SECONDS} s")


def node_row(sessions, node_uuid: str) -> Node:
    with sessions() as session:
        return session.scalars(select(Node).where(Node.id == uuid.UUID(node_uuid))).one()


def test_execute_endpoints_launch_real_runs(dagster, client, sessions, launcher) -> None:
    pipeline = create(client, "", "pipeline", {"title": "Executed"})
    base = f"/{pipeline['uuid']}"
    script = create(
        client,
        f"{base}/nodes",
        "node",
        {"title": "Script", "type": "asset", "asset": {"type": "text", "content": "Hi there."}},
    )
    voiceover = create(
        client,
        f"{base}/nodes",
        "node",
        {"title": "Voice", "type": "generate-voiceover", "inputs": {"script": [script["uuid"]]}},
    )
    script_key = key_of(sessions, pipeline_uuid=pipeline["uuid"], node_uuid=script["uuid"])
    assert tuple(script_key.path) not in asset_keys(dagster.url)

    response = client.post(f"{BASE}{base}/nodes/{script['uuid']}/execute")
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    assert launcher.reloads == 1
    assert wait_for_run(dagster.url, run_id) == "SUCCESS"
    row = node_row(sessions, script["uuid"])
    assert row.status == "completed"
    assert row.metadata_["dagster_run_id"] == run_id
    storage_root = Path(dagster.settings.resolved_storage_url.removeprefix("file://"))
    assert (storage_root / row.output["s3_key"]).read_text() == "Hi there."

    response = client.post(f"{BASE}{base}/execute", json={"only": "pending"})
    assert response.status_code == 202, response.text
    assert [n["uuid"] for n in response.json()["nodes"]] == [voiceover["uuid"]]
    second = response.json()["run_id"]
    assert launcher.reloads == 1
    assert wait_for_run(dagster.url, second) == "SUCCESS"
    row = node_row(sessions, voiceover["uuid"])
    assert row.status == "completed" and row.metadata_["dagster_run_id"] == second
    assert row.output["type"] == "audio" and row.output["duration"] > 0

    voice_url = f"{BASE}{base}/nodes/{voiceover['uuid']}/execute"
    assert client.post(voice_url).status_code == 422  # completed: nothing to do
    again = client.post(f"{BASE}{base}/execute", json={"only": "all"})
    assert again.status_code == 202, again.text
    assert wait_for_run(dagster.url, again.json()["run_id"]) == "SUCCESS"
    reused = node_row(sessions, voiceover["uuid"])
    assert reused.metadata_["reused_from"]["process_uuid"] == row.metadata_["process_uuid"]
    assert reused.output["s3_key"] == row.output["s3_key"]
    forced = client.post(voice_url, json={"force": True})
    assert forced.status_code == 202, forced.text
    assert wait_for_run(dagster.url, forced.json()["run_id"]) == "SUCCESS"
    rendered = node_row(sessions, voiceover["uuid"])
    assert "reused_from" not in rendered.metadata_
    assert rendered.output["s3_key"] != row.output["s3_key"]
    assert rendered.output_signature == row.output_signature

    late = create(
        client,
        f"{base}/nodes",
        "node",
        {"title": "Late", "type": "asset", "asset": {"type": "text", "content": "Added later."}},
    )
    response = client.post(f"{BASE}{base}/nodes/{late['uuid']}/execute")
    assert response.status_code == 202, response.text
    assert launcher.reloads == 2
    assert wait_for_run(dagster.url, response.json()["run_id"]) == "SUCCESS"
    assert node_row(sessions, late["uuid"]).status == "completed"


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found += [child, *_descendants(child)]
    return found


def worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid of the run's worker process, from its "Started process for run" event."""
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        match = re.search(r"Started process for run \(pid: (\d+)\)", entry.message or "")
        if match:
            return int(match.group(1))
    return None


def test_run_killed_mid_step_is_failed_by_the_backstop(dagster, client, sessions) -> None:
    pipeline = create(client, "", "pipeline", {"title": "Killed"})
    slow = create(
        client,
        f"/{pipeline['uuid']}/nodes",
        "node",
        {
            "title": "Long animation",
            "type": "generate-animation",
            "config": {"prompt": "waves", "duration": 120},
        },
    )
    response = client.post(f"{BASE}/{pipeline['uuid']}/nodes/{slow['uuid']}/execute")
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]

    with dg.DagsterInstance.from_config(str(dagster.home)) as instance:
        deadline = time.monotonic() + RUN_SECONDS
        pid = None
        while time.monotonic() < deadline:
            row = node_row(sessions, slow["uuid"])
            pid = pid or worker_pid(instance, run_id)
            if row.status == "in_progress" and pid:
                break
            assert row.status == "pending", row.metadata_
            time.sleep(0.2)
        assert pid and row.metadata_["dagster_run_id"] == run_id
        children = _descendants(pid)
        os.kill(pid, signal.SIGKILL)
        for child in children:
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass

        assert node_row(sessions, slow["uuid"]).status == "in_progress"
        instance.report_run_failed(
            instance.get_run_by_id(run_id), f"Run worker (pid {pid}) is no longer running."
        )
        assert wait_for_run(dagster.url, run_id) == "FAILURE"

        failure = instance.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.RUN_FAILURE
        ).records[0]
        context = dg.build_run_status_sensor_context(
            sensor_name="vidpipe_failed_run_backstop",
            dagster_instance=instance,
            dagster_run=instance.get_run_by_id(run_id),
            dagster_event=failure.event_log_entry.dagster_event,
            resources={
                "vidpipe": VidpipeResource(
                    database_url=dagster.settings.database_url,
                    storage_url=dagster.settings.storage_url,
                    home=str(dagster.settings.home),
                    providers="local",
                )
            },
        ).for_run_failure()
        failed_run_backstop(context)

    row = node_row(sessions, slow["uuid"])
    assert row.status == "failed"
    assert run_id in row.metadata_["error"] and "no longer running" in row.metadata_["error"]


def test_the_editor_executes_polls_and_fetches_the_media(dagster, sessions, launcher) -> None:
    """The admin editor's calls in the editor generation: execute is 200 ``{node}``, the
    editor polls the pipeline until the node completes, and ``/output`` leads to the bytes."""
    from tests.fixtures.editor_client import ApiError, EditorClient

    settings = dagster.settings.model_copy(
        update={"api_contract": "editor", "media_signing_key": "execute-api-key"}
    )
    app = create_app(
        settings=settings,
        sessions=sessions,
        notify_change=lambda _pipeline_uuid: None,
        launcher=lambda: launcher,
    )
    token = make_token(sessions, admin=True)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as http:
        editor = EditorClient(http)
        pipeline = editor.create_pipeline({"title": "Editor run", "config": {}})["pipeline"]
        script = editor.create_node(pipeline["uuid"], "asset", asset="text")
        voice = editor.create_node(pipeline["uuid"], "generate-voiceover")
        editor.connect_nodes(pipeline["uuid"], script["uuid"], voice["uuid"], "script")
        with pytest.raises(ApiError) as early:
            editor.execute_node(pipeline["uuid"], voice["uuid"])
        assert early.value.data == {
            "error": "Node is not ready to execute: Input nodes are not all completed"
        }

        for node in (script, voice):
            executed = editor.execute_node(pipeline["uuid"], node["uuid"])
            assert executed["uuid"] == node["uuid"] and executed["is_valid"] is True
            assert editor.requests[-1][0:2] == (
                "POST",
                f"/admin/video_production/pipelines/{pipeline['uuid']}/nodes/{node['uuid']}/execute",
            )
            deadline = time.monotonic() + RUN_SECONDS
            while True:
                nodes = {n["uuid"]: n for n in editor.get_pipeline(pipeline["uuid"])["nodes"]}
                if nodes[node["uuid"]]["status"] in ("completed", "failed"):
                    break
                assert time.monotonic() < deadline, nodes[node["uuid"]]
                time.sleep(2)
            assert nodes[node["uuid"]]["status"] == "completed", nodes[node["uuid"]]["metadata"]

        output = nodes[voice["uuid"]]["output"]
        assert output["type"] == "audio" and output["s3Key"].endswith(".mp3")
        assert "s3_key" not in output
        assert nodes[voice["uuid"]]["metadata"]["process_uuid"]
        media = http.get(
            f"{BASE}/{pipeline['uuid']}/nodes/{script['uuid']}/output", follow_redirects=True
        )
        assert media.status_code == 200
        assert media.content == b"Enter your text content here..."
