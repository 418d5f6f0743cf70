"""Materializing nodes in-process: rows, outputs, progress and cost written back."""

from __future__ import annotations

import uuid

import dagster as dg
import pytest
from sqlalchemy import select, update

from lambdas.ffmpeg import probe
from tests.dagster.builders import NodeRow, add_pipeline
from tests.fixtures.media_links import assert_signed_link
from vidpipe_dagster.assets.asset_keys import key_of
from vidpipe_dagster.db.models import Node, Pipeline
from vidpipe_dagster.db.snapshot import take_snapshot
from vidpipe_dagster.definitions import build_definitions
from vidpipe_dagster.resources.dagster_resources import VidpipeResource


def run_nodes(sessions, resource: VidpipeResource, keys: list[dg.AssetKey]):
    """Compile the current rows and materialize ``keys`` in one in-process run."""
    with sessions() as session:
        snapshot = take_snapshot(session)
    defs = build_definitions(snapshot=snapshot, resource=resource)
    job = defs.resolve_implicit_global_asset_job_def()
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(
            instance=instance, asset_selection=keys, raise_on_error=False
        )
        events = result.get_asset_materialization_events()
    return result, events


def rows(sessions, pipeline_uuid: str) -> tuple[Pipeline, dict[str, Node]]:
    with sessions() as session:
        pipeline = session.get(Pipeline, uuid.UUID(pipeline_uuid))
        nodes = session.scalars(select(Node).where(Node.pipeline_id == pipeline.id)).all()
        return pipeline, {node.uuid: node for node in nodes}


SHORT_DEMO = [
    NodeRow("script", "asset", asset={"content": "Hello from vidpipe. Two short lines."}),
    NodeRow("voiceover", "generate-voiceover", inputs={"script": ["script"]}),
    NodeRow("talking", "talking-head", inputs={"script": ["script"]}),
    NodeRow("code", "render-code", config={"code": "print('hi')", "duration": 1}),
    NodeRow("animation", "generate-animation", config={"prompt": "sea", "duration": 1}),
    NodeRow("merge", "merge-videos", inputs={"segments": ["code", "animation"]}),
    NodeRow("mix", "mix-audio", inputs={"video": "merge", "audio": ["voiceover"]}),
    NodeRow("compose", "compose-video", inputs={"background": ["mix"], "overlay": ["talking"]}),
]


def test_whole_pipeline_materializes_and_writes_rows(sessions, resource) -> None:
    ids = add_pipeline(sessions, name="whole", nodes=SHORT_DEMO)
    keys = [
        key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids[n.name]) for n in SHORT_DEMO
    ]

    result, events = run_nodes(sessions, resource, keys)

    assert result.success
    assert {event.asset_key for event in events} == set(keys)
    pipeline, nodes = rows(sessions, ids["pipeline"])
    run_id = result.run_id
    for node in nodes.values():
        assert node.status == "completed", (node.title, node.metadata_)
        assert node.metadata_["dagster_run_id"] == run_id
        assert node.output["s3_key"].startswith(
            f"pipelines/{ids['pipeline']}/nodes/{node.uuid}/{node.metadata_['process_uuid']}"
        )
    progress = pipeline.metadata_["progress"]
    assert progress == {"completed": 8, "in_progress": 0, "pending": 0, "failed": 0, "total": 8}
    expected_cost = sum(float((n.output or {}).get("cost") or 0) for n in nodes.values())
    assert pipeline.metadata_["totalCost"] == pytest.approx(expected_cost)

    final = nodes[ids["compose"]]
    media = resource.storage().uri_for(final.output["s3_key"]).removeprefix("file://")
    info = probe(media)
    assert info.duration and info.duration > 0
    by_key = {event.asset_key: event.materialization for event in events}
    metadata = by_key[
        key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids["compose"])
    ].metadata
    assert metadata["process_uuid"].value == final.metadata_["process_uuid"]
    assert_signed_link(metadata["link"].value, final.output["s3_key"], resource.settings())
    assert metadata["duration (s)"].value == pytest.approx(final.output["duration"])
    assert metadata["size (bytes)"].value == final.output["size"]


def test_failing_node_is_failed_and_its_dependents_not_attempted(sessions, resource) -> None:
    nodes = [
        NodeRow("script", "asset", asset={"content": "Hi."}),
        NodeRow("clip", "render-code", config={"code": "x", "duration": 1}),
        NodeRow("broken", "merge-videos", inputs={"segments": ["clip", "script"]}),
        NodeRow("after", "mix-audio", inputs={"video": ["broken"], "audio": ["clip"]}),
    ]
    ids = add_pipeline(sessions, name="failing", nodes=nodes)
    keys = [key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids[n.name]) for n in nodes]

    result, events = run_nodes(sessions, resource, keys)

    assert not result.success
    done = {event.asset_key for event in events}
    assert done == {keys[0], keys[1]}
    pipeline, rows_by_uuid = rows(sessions, ids["pipeline"])
    broken = rows_by_uuid[ids["broken"]]
    assert broken.status == "failed"
    assert "script" in broken.metadata_["error"].lower() or "text" in broken.metadata_["error"]
    assert broken.metadata_["dagster_run_id"] == result.run_id
    after = rows_by_uuid[ids["after"]]
    assert after.status == "pending"
    assert after.metadata_["stage"] == (
        f"not run: input 'broken' had not completed (run {result.run_id})"
    )
    assert pipeline.metadata_["progress"]["failed"] == 1
    assert pipeline.metadata_["progress"]["completed"] == 2


def test_result_of_a_superseded_execution_is_dropped(sessions, resource, monkeypatch) -> None:
    """An edit while the node runs restarts it: the late output must not land."""
    from vidpipe_dagster.assets import node_execution

    ids = add_pipeline(
        sessions, name="superseded", nodes=[NodeRow("script", "asset", asset={"content": "a"})]
    )
    original = node_execution._run_executor

    def edit_then_run(**kwargs):
        with sessions() as session, session.begin():
            session.execute(
                update(Node).where(Node.id == uuid.UUID(ids["script"])).values(status="pending")
            )
        return original(**kwargs)

    monkeypatch.setattr(node_execution, "_run_executor", edit_then_run)
    key = key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids["script"])
    result, events = run_nodes(sessions, resource, [key])
    assert result.success
    assert events == []
    _, nodes = rows(sessions, ids["pipeline"])
    assert nodes[ids["script"]].status == "pending"
    assert nodes[ids["script"]].output is None
