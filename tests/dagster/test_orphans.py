"""Orphaned executions end: a run worker lost with its code server, and what is left alone.

The end-to-end test runs a real ``dagster-webserver`` (no daemon) on a temporary
DAGSTER_HOME with a one-second heartbeat, launches a long render through the API, SIGKILLs
the run worker and its code server together (what losing a container or host does), and
ticks the ``vidpipe_orphaned_nodes`` sensor as the daemon would, with a five-second timeout.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.test_utils import create_run_for_test
from fastapi.testclient import TestClient
from sqlalchemy import update

from api.main import create_app
from tests.api.conftest import BASE, make_token
from tests.dagster.builders import NodeRow, add_pipeline
from tests.dagster.test_execute_api import (
    DAGSTER_YAML,
    create,
    node_row,
    wait_for_run,
    worker_pid,
)
from tests.fixtures.webserver import (
    vidpipe_webserver,
)
from vidpipe_dagster.assets import heartbeat
from vidpipe_dagster.db.models import Node, utcnow
from vidpipe_dagster.domain.lifecycle import Lifecycle
from vidpipe_dagster.orchestration.sensors import orphaned_nodes
from vidpipe_dagster.resources.dagster_resources import VidpipeResource
from vidpipe_dagster.runs.launcher import DagsterLauncher
from vidpipe_dagster.settings import Settings, get_settings

TIMEOUT_SECONDS = 5
SENSOR_EVERY_SECONDS = 1.0


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped counts as dead)."""
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def parent_of(pid: int) -> int:
    fields = _stat(pid)
    assert fields is not None, f"process {pid} is gone"
    return int(fields[1])


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found += [child, *descendants(child)]
    return found


def ffmpeg_processes(pid: int) -> list[int]:
    """The ffmpeg processes below ``pid``."""
    found = []
    for child in descendants(pid):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if b"ffmpeg" in Path(command.decode(errors="replace")).name.encode():
            found.append(child)
    return found


@pytest.fixture(scope="module")
def dagster_home(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A webserver whose run workers beat every second."""
    root = tmp_path_factory.mktemp("orphans")
    with vidpipe_webserver(
        database_url=database_url,
        root=root,
        dagster_yaml=DAGSTER_YAML,
        env={"VIDPIPE_HEARTBEAT_INTERVAL_SECONDS": "1"},
    ) as (home, settings):
        yield {"home": home, "settings": settings}


@pytest.fixture
def short_timeout(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The sensor's process reads a five-second heartbeat timeout."""
    monkeypatch.setenv("VIDPIPE_HEARTBEAT_TIMEOUT_SECONDS", str(TIMEOUT_SECONDS))
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def tick(instance: dg.DagsterInstance, resource: VidpipeResource):
    """One evaluation of the orphan sensor, as the daemon makes it."""
    context = dg.build_sensor_context(instance=instance, resources={"vidpipe": resource})
    return orphaned_nodes(context)


def test_worker_and_code_server_killed_together_fail_the_node_in_time(
    dagster_home, sessions, short_timeout
) -> None:
    settings: Settings = dagster_home["settings"]
    launcher = DagsterLauncher(settings=settings)
    app = create_app(
        settings=settings,
        sessions=sessions,
        notify_change=lambda _pipeline_uuid: None,
        launcher=lambda: launcher,
    )
    token = make_token(sessions, admin=True)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        pipeline = create(client, "", "pipeline", {"title": "Host lost"})
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
    resource = VidpipeResource(
        database_url=settings.database_url,
        storage_url=settings.storage_url,
        home=str(settings.home),
        providers="local",
    )

    with dg.DagsterInstance.from_config(str(dagster_home["home"])) as instance:
        deadline = time.monotonic() + 120
        worker, renders = None, []
        while time.monotonic() < deadline:
            worker = worker or worker_pid(instance, run_id)
            renders = ffmpeg_processes(worker) if worker else []
            status = node_row(sessions, slow["uuid"]).status
            assert status in ("pending", "in_progress"), node_row(sessions, slow["uuid"]).metadata_
            if renders and status == "in_progress":
                break
            time.sleep(0.2)
        assert worker and renders, "the render never started"
        first_beat = node_row(sessions, slow["uuid"]).metadata_[heartbeat.HEARTBEAT_KEY]
        while node_row(sessions, slow["uuid"]).metadata_[heartbeat.HEARTBEAT_KEY] == first_beat:
            assert time.monotonic() < deadline, "the heartbeat did not advance"
            time.sleep(0.2)
        assert tick(instance, resource).skip_message.startswith("No running node")

        code_server = parent_of(worker)
        assert b"dagster" in Path(f"/proc/{code_server}/cmdline").read_bytes()
        os.kill(worker, signal.SIGKILL)
        os.kill(code_server, signal.SIGKILL)
        killed = time.monotonic()

        while any(alive(pid) for pid in renders):
            assert time.monotonic() - killed < 5, "ffmpeg outlived its run worker"
            time.sleep(0.1)

        assert node_row(sessions, slow["uuid"]).status == "in_progress"
        while node_row(sessions, slow["uuid"]).status == "in_progress":
            assert time.monotonic() - killed < TIMEOUT_SECONDS + 15, "the orphan was not failed"
            tick(instance, resource)
            time.sleep(SENSOR_EVERY_SECONDS)
        elapsed = time.monotonic() - killed

        row = node_row(sessions, slow["uuid"])
        assert row.status == "failed"
        assert elapsed >= TIMEOUT_SECONDS - 1
        assert "no heartbeat" in row.metadata_["error"] and run_id in row.metadata_["error"]
        run = instance.get_run_by_id(run_id)
        assert run.status == dg.DagsterRunStatus.FAILURE
        assert wait_for_run(settings.dagster_url, run_id) == "FAILURE"
        assert tick(instance, resource).skip_message.startswith("No running node")


def _running(sessions, node_uuid: str, *, run_id: str | None, **metadata) -> str:
    process_uuid = Lifecycle(sessions).started(
        node_uuid, {"dagster_run_id": run_id, **metadata} if run_id else metadata
    )
    stale = (utcnow() - timedelta(seconds=TIMEOUT_SECONDS * 4)).isoformat()
    with sessions() as session, session.begin():
        row = session.get(Node, uuid.UUID(node_uuid))
        session.execute(
            update(Node)
            .where(Node.id == row.id)
            .values(metadata_={**row.metadata_, heartbeat.HEARTBEAT_KEY: stale})
        )
    return process_uuid


def test_only_silent_nodes_of_unfinished_runs_are_failed(sessions, resource, short_timeout):
    ids = add_pipeline(
        sessions,
        name="orphans-left-alone",
        nodes=[
            NodeRow("lost", "render-code", config={"code": "x"}),
            NodeRow("waiting", "talking-head", config={"provider": "heygen"}),
            NodeRow("done-run", "render-code", config={"code": "y"}),
            NodeRow("never-beat", "render-code", config={"code": "z"}),
            NodeRow("beating", "render-code", config={"code": "w"}),
        ],
    )

    @dg.asset
    def trivial() -> None:
        return None

    with dg.instance_for_test() as instance:
        succeeded = dg.materialize([trivial], instance=instance).run_id
        lost_run = create_run_for_test(
            instance, job_name="lost", status=dg.DagsterRunStatus.STARTED
        ).run_id

        _running(sessions, ids["lost"], run_id=lost_run)
        _running(sessions, ids["waiting"], run_id=succeeded, provider_job_id="job-1")
        _running(sessions, ids["done-run"], run_id=succeeded)
        Lifecycle(sessions).started(ids["never-beat"], {"dagster_run_id": lost_run})
        Lifecycle(sessions).started(ids["beating"], heartbeat.stamp())

        result = tick(instance, resource)
        statuses = {
            name: node_row(sessions, ids[name]).status for name in ids if name != "pipeline"
        }
        assert statuses == {
            "lost": "failed",
            "waiting": "in_progress",
            "done-run": "in_progress",
            "never-beat": "in_progress",
            "beating": "in_progress",
        }
        assert result.skip_message == "Failed 1 node(s) whose run worker stopped."
        assert instance.get_run_by_id(lost_run).status == dg.DagsterRunStatus.FAILURE
        assert (
            "lost"
            in instance.get_records_for_run(lost_run, of_type=dg.DagsterEventType.RUN_FAILURE)
            .records[-1]
            .event_log_entry.dagster_event.message
        )
