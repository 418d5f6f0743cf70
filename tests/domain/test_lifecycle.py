"""The execution lifecycle under real PostgreSQL row locks and real threads."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.domain.helpers import make_node, make_pipeline, reload
from vidpipe_dagster.db.models import Node, Pipeline
from vidpipe_dagster.domain.errors import NotFoundError
from vidpipe_dagster.domain.lifecycle import Lifecycle
from vidpipe_dagster.domain.nodes import destroy_node, update_node


@pytest.fixture
def lifecycle(sessions):
    return Lifecycle(sessions)


def test_happy_path_records_timestamps_output_cost_and_progress(sessions, lifecycle):
    pipeline = make_pipeline(sessions)
    node = make_node(sessions, pipeline, node_type="generate-voiceover")
    make_node(sessions, pipeline)

    process = lifecycle.started(node.uuid, {"stage": "submitted", "job_id": "j1"})
    row = reload(sessions, Node, node.id)
    assert row.status == "in_progress"
    assert row.metadata_["process_uuid"] == process
    assert row.metadata_["stage"] == "submitted"
    assert "started_at" in row.metadata_
    progress = reload(sessions, Pipeline, pipeline.id).metadata_["progress"]
    assert progress == {"pending": 1, "in_progress": 1, "completed": 0, "failed": 0, "total": 2}

    assert lifecycle.updated(node.uuid, {"stage": "processing"}, process) is True
    assert reload(sessions, Node, node.id).metadata_["job_id"] == "j1"

    output = {"type": "audio", "s3_key": "k.mp3", "size": 10, "duration": 1.5, "cost": 0.25}
    assert lifecycle.succeeded(node.uuid, output, process) is True
    row = reload(sessions, Node, node.id)
    assert row.status == "completed"
    assert row.output == {**output, "process_uuid": process}  # the execution that rendered it
    assert row.metadata_["cost"] == 0.25
    assert "completed_at" in row.metadata_
    meta = reload(sessions, Pipeline, pipeline.id).metadata_
    assert meta["totalCost"] == 0.25
    assert meta["progress"]["completed"] == 1


def test_engine_writes_leave_updated_at_alone(sessions, lifecycle):
    pipeline = make_pipeline(sessions)
    node = make_node(sessions, pipeline)
    before_node = reload(sessions, Node, node.id).updated_at
    before_pipeline = reload(sessions, Pipeline, pipeline.id).updated_at
    process = lifecycle.started(node.uuid)
    lifecycle.succeeded(node.uuid, {"type": "text"}, process)
    assert reload(sessions, Node, node.id).updated_at == before_node
    assert reload(sessions, Pipeline, pipeline.id).updated_at == before_pipeline


def test_stale_process_uuid_changes_nothing(sessions, lifecycle):
    pipeline = make_pipeline(sessions)
    node = make_node(sessions, pipeline)
    first = lifecycle.started(node.uuid)
    second = lifecycle.started(node.uuid)
    assert first != second
    assert lifecycle.succeeded(node.uuid, {"type": "text", "s3_key": "old"}, first) is False
    assert lifecycle.failed(node.uuid, "old run broke", first) is False
    assert lifecycle.updated(node.uuid, {"stage": "old"}, first) is False
    row = reload(sessions, Node, node.id)
    assert row.status == "in_progress"
    assert row.output is None
    assert "stage" not in row.metadata_


def test_calls_after_completion_are_no_ops(sessions, lifecycle):
    pipeline = make_pipeline(sessions)
    node = make_node(sessions, pipeline)
    process = lifecycle.started(node.uuid)
    assert lifecycle.succeeded(node.uuid, {"type": "text", "s3_key": "a"}, process)
    assert lifecycle.failed(node.uuid, "late failure", process) is False
    assert lifecycle.succeeded(node.uuid, {"type": "text", "s3_key": "b"}, process) is False
    row = reload(sessions, Node, node.id)
    assert (row.status, row.output["s3_key"]) == ("completed", "a")
    assert reload(sessions, Pipeline, pipeline.id).metadata_["totalCost"] == 0.0


def test_failed_without_process_uuid_only_when_nothing_runs(sessions, lifecycle):
    pipeline = make_pipeline(sessions)
    node = make_node(sessions, pipeline)
    assert lifecycle.failed(node.uuid, "HEYGEN_API_KEY is not set", None) is True
    row = reload(sessions, Node, node.id)
    assert (row.status, row.metadata_["error"]) == ("failed", "HEYGEN_API_KEY is not set")
    lifecycle.started(node.uuid)
    assert lifecycle.failed(node.uuid, "ignored", None) is False
    row = reload(sessions, Node, node.id)
    assert row.status == "in_progress"
    assert "error" not in row.metadata_


def test_started_on_unknown_node(lifecycle, sessions):
    with pytest.raises(NotFoundError):
        lifecycle.started("00000000-0000-0000-0000-000000000000")
    with pytest.raises(NotFoundError):
        lifecycle.started("nope")


def test_racing_threads_leave_exactly_the_current_result(sessions, lifecycle):
    pipeline = make_pipeline(sessions)
    node = make_node(sessions, pipeline)
    stale = [lifecycle.started(node.uuid) for _ in range(6)]
    current = lifecycle.started(node.uuid)
    barrier = threading.Barrier(24)

    def attempt(i: int) -> tuple[str, bool]:
        process = current if i % 4 == 0 else stale[i % len(stale)]
        barrier.wait()
        if i % 2 == 0:
            output = {"type": "video", "s3_key": f"from-{process}", "cost": 1.0}
            return process, lifecycle.succeeded(node.uuid, output, process)
        return process, lifecycle.failed(node.uuid, f"failure from {process}", process)

    with ThreadPoolExecutor(max_workers=24) as pool:
        results = list(pool.map(attempt, range(24)))

    applied = [process for process, ok in results if ok]
    assert applied == [current]
    row = reload(sessions, Node, node.id)
    assert row.status == "completed"
    assert row.output["s3_key"] == f"from-{current}"
    meta = reload(sessions, Pipeline, pipeline.id).metadata_
    assert meta["totalCost"] == 1.0
    assert meta["progress"]["completed"] == 1


def test_racing_current_success_and_failure_apply_once(sessions, lifecycle):
    pipeline = make_pipeline(sessions)
    node = make_node(sessions, pipeline)
    for _ in range(5):
        process = lifecycle.started(node.uuid)
        barrier = threading.Barrier(2)

        def succeed(process=process, barrier=barrier):
            barrier.wait()
            return lifecycle.succeeded(node.uuid, {"type": "text", "cost": 0.5}, process)

        def fail(process=process, barrier=barrier):
            barrier.wait()
            return lifecycle.failed(node.uuid, "boom", process)

        with ThreadPoolExecutor(max_workers=2) as pool:
            outcomes = [f.result() for f in (pool.submit(succeed), pool.submit(fail))]
        assert sorted(outcomes) == [False, True]
        row = reload(sessions, Node, node.id)
        assert row.status == ("completed" if outcomes[0] else "failed")


def test_structure_update_during_execution_drops_the_late_success(sessions, lifecycle):
    pipeline = make_pipeline(sessions)
    node = make_node(sessions, pipeline, asset={"source": "a.txt", "type": "text"})
    process = lifecycle.started(node.uuid)
    with sessions() as session, session.begin():
        update_node(session, session.get(Node, node.id), asset={"source": "b.txt", "type": "text"})
    row = reload(sessions, Node, node.id)
    assert row.status == "pending"
    assert row.metadata_["superseded_process_uuid"] == process
    assert lifecycle.succeeded(node.uuid, {"type": "text", "s3_key": "late"}, process) is False
    row = reload(sessions, Node, node.id)
    assert (row.status, row.output) == ("pending", None)
    assert reload(sessions, Pipeline, pipeline.id).metadata_["progress"]["pending"] == 1


def test_title_change_during_execution_keeps_it_running(sessions, lifecycle):
    pipeline = make_pipeline(sessions)
    node = make_node(sessions, pipeline)
    process = lifecycle.started(node.uuid)
    with sessions() as session, session.begin():
        update_node(session, session.get(Node, node.id), title="Renamed")
    assert lifecycle.succeeded(node.uuid, {"type": "text"}, process) is True
    assert reload(sessions, Node, node.id).status == "completed"


def test_destroy_keeps_progress_current(sessions, lifecycle):
    pipeline = make_pipeline(sessions)
    a = make_node(sessions, pipeline)
    b = make_node(sessions, pipeline)
    lifecycle.succeeded(a.uuid, {"type": "text"}, lifecycle.started(a.uuid))
    with sessions() as session, session.begin():
        destroy_node(session, session.get(Node, b.id))
    progress = reload(sessions, Pipeline, pipeline.id).metadata_["progress"]
    assert progress == {"pending": 0, "in_progress": 0, "completed": 1, "failed": 0, "total": 1}
