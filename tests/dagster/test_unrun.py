"""Nodes a run was asked for but never started end with a reason, not a silent ``pending``.

A real in-process run: the free step fails on ``broken``, so Dagster skips the HeyGen
step holding ``talk`` (its own pool) and the run never touches that row; ``after`` sits in
the failed step behind ``broken``. The failed-run sensor then gives both their reason.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import dagster as dg
from sqlalchemy import select

from tests.dagster.builders import NodeRow, add_pipeline
from vidpipe_dagster.assets.asset_keys import key_of
from vidpipe_dagster.db.models import Node, Pipeline
from vidpipe_dagster.db.snapshot import take_snapshot
from vidpipe_dagster.definitions import build_definitions
from vidpipe_dagster.orchestration.sensors import failed_run_backstop, planned_node_uuids
from vidpipe_dagster.orchestration.unrun import settle_unrun_nodes
from vidpipe_dagster.resources.dagster_resources import VidpipeResource

NODES = [
    NodeRow("script", "asset", asset={"content": "Hi."}),
    NodeRow("broken", "merge-videos", inputs={"segments": ["script", "script"]}),
    NodeRow(
        "talk",
        "talking-head",
        inputs={"script": "broken"},
        config={"provider": "heygen", "avatarId": "a", "voiceId": "v"},
    ),
    NodeRow("after", "mix-audio", inputs={"video": "broken", "audio": "script"}),
]


def _rows(sessions, pipeline_uuid: str) -> dict[str, Node]:
    with sessions() as session:
        rows = session.scalars(select(Node).where(Node.pipeline_id == uuid.UUID(pipeline_uuid)))
        return {row.title: row for row in rows}


def _run(sessions, resource: VidpipeResource, instance, ids, names):
    with sessions() as session:
        snapshot = take_snapshot(session)
    job = build_definitions(
        snapshot=snapshot, resource=resource
    ).resolve_implicit_global_asset_job_def()
    keys = [key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids[n]) for n in names]
    return job.execute_in_process(instance=instance, asset_selection=keys, raise_on_error=False)


def test_nodes_a_failed_run_skipped_fail_naming_the_input(
    sessions, database_url: str, tmp_path: Path
) -> None:
    resource = VidpipeResource(
        database_url=database_url,
        storage_url=(tmp_path / "storage").as_uri(),
        home=str(tmp_path / "home"),
    )
    ids = add_pipeline(sessions, name="skips", nodes=NODES)
    with dg.instance_for_test() as instance:
        result = _run(sessions, resource, instance, ids, ["script", "broken", "talk", "after"])
        assert not result.success
        steps = {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}
        assert steps == {"skips"}, steps
        assert ids["talk"] in planned_node_uuids(instance, result.run_id, resource=resource)
        rows = _rows(sessions, ids["pipeline"])
        assert rows["talk"].status == "pending" and not (rows["talk"].metadata_ or {}).get("stage")
        assert rows["broken"].status == "failed"

        failure = next(e for e in result.all_events if e.event_type_value == "PIPELINE_FAILURE")
        context = dg.build_run_status_sensor_context(
            sensor_name="vidpipe_failed_run_backstop",
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            dagster_event=failure,
            resources={"vidpipe": resource},
        ).for_run_failure()
        failed_run_backstop(context)

    rows = _rows(sessions, ids["pipeline"])
    run_id = result.run_id
    for name in ("talk", "after"):
        assert rows[name].status == "failed", (name, rows[name].metadata_)
        assert rows[name].metadata_["error"] == (
            f"Not run: input 'broken' failed in Dagster run {run_id}; fix it and execute it again"
        )
    assert rows["script"].status == "completed"
    with sessions() as session:
        progress = session.get(Pipeline, uuid.UUID(ids["pipeline"])).metadata_["progress"]
    assert progress["failed"] == 3 and progress["completed"] == 1 and progress["pending"] == 0


def test_a_completed_node_keeps_its_result_and_a_later_execution_is_left_alone(
    sessions, resource: VidpipeResource
) -> None:
    """A completed node the run skipped keeps its output (the refusal noted); a node an
    execution started after the run was created is not the run's to explain."""
    nodes = [
        NodeRow("script", "asset", asset={"content": "Hi."}),
        NodeRow("broken", "merge-videos", inputs={"segments": ["script", "script"]}),
        NodeRow("after", "mix-audio", inputs={"video": "broken", "audio": "script"}),
        NodeRow("later", "mix-audio", inputs={"video": "broken", "audio": "script"}),
    ]
    ids = add_pipeline(sessions, name="keeps", nodes=nodes)
    with dg.instance_for_test() as instance:
        result = _run(sessions, resource, instance, ids, ["script", "broken", "after", "later"])
        assert not result.success
        lifecycle = resource.lifecycle()
        process = lifecycle.started(ids["after"])
        lifecycle.succeeded(ids["after"], {"type": "text", "s3_key": "k"}, process)
        with sessions() as session, session.begin():
            row = session.get(Node, uuid.UUID(ids["after"]))
            row.metadata_ = {**row.metadata_, "started_at": "2000-01-01T00:00:00+00:00"}
        lifecycle.started(ids["later"], {"dagster_run_id": "a-newer-run"})
        written = settle_unrun_nodes(
            instance=instance,
            run_id=result.run_id,
            resource=resource,
            ended="failed",
            planned=[ids[n] for n in ("script", "broken", "after", "later")],
        )

    assert set(written) == {ids["after"]}
    rows = _rows(sessions, ids["pipeline"])
    assert rows["after"].status == "completed" and rows["after"].output["s3_key"] == "k"
    assert "failed in Dagster run" in rows["after"].metadata_["refused"]
    assert rows["later"].status == "in_progress"


def test_a_successful_run_that_skipped_a_node_says_which_input_it_waits_for(
    sessions, resource: VidpipeResource
) -> None:
    """``mix`` waits on ``voice``, whose provider job is still in flight: the run (of
    ``script``, succeeding) passed it by, so its stage says so and it stays pending."""
    nodes = [
        NodeRow("script", "asset", asset={"content": "Hi."}),
        NodeRow("voice", "generate-voiceover", inputs={"script": "script"}),
        NodeRow("mix", "mix-audio", inputs={"video": "voice", "audio": "voice"}),
    ]
    ids = add_pipeline(sessions, name="waits", nodes=nodes)
    lifecycle = resource.lifecycle()
    lifecycle.started(ids["voice"], {"provider_job_id": "job-1"})
    with dg.instance_for_test() as instance:
        result = _run(sessions, resource, instance, ids, ["script"])
        assert result.success
        written = settle_unrun_nodes(
            instance=instance,
            run_id=result.run_id,
            resource=resource,
            ended="succeeded",
            planned=[ids["script"], ids["voice"], ids["mix"]],
        )

    assert set(written) == {ids["mix"]}
    mix = _rows(sessions, ids["pipeline"])["mix"]
    assert mix.status == "pending"
    assert mix.metadata_["stage"] == (
        f"not run: input 'voice' had not completed (run {result.run_id})"
    )
    assert mix.metadata_["not_run_by"] == result.run_id
