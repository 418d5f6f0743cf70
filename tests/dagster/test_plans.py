"""A run executes its nodes' rows as they are when each starts, or refuses a stale shape.

In-process runs of definitions compiled from a snapshot taken *before* the rows were edited,
as a run launched from a location not yet reloaded is; the relaunch through a real
webserver is in ``test_plans_api.py``.
"""

from __future__ import annotations

import socket
import uuid

import dagster as dg
import pytest
from sqlalchemy import select, update

from tests.dagster.builders import NodeRow, add_pipeline
from vidpipe_dagster.assets.asset_keys import key_of
from vidpipe_dagster.db.models import Node
from vidpipe_dagster.db.snapshot import take_snapshot
from vidpipe_dagster.definitions import build_definitions
from vidpipe_dagster.domain.lifecycle import Lifecycle
from vidpipe_dagster.runs.plans import (
    StalePlanError,
    fields_hash,
    node_shape,
    plan_check,
    row_fields,
)
from vidpipe_dagster.settings import get_settings

NODE = {
    "type": "generate-voiceover",
    "title": "Narrator",
    "inputs": {"script": ["a"]},
    "config": {"voiceId": "x"},
    "asset": None,
}


@pytest.mark.parametrize(
    ("edit", "same"),
    [
        ({"title": "Renamed"}, True),
        ({"config": {"voiceId": "y", "stability": 0.3}}, True),
        ({"asset": {"content": "new"}}, True),
        ({"config": {"provider": "local"}}, True),
        ({"inputs": {"script": ["b"]}}, False),
        ({"inputs": {"script": ["a", "b"]}}, False),
        ({"type": "talking-head"}, False),
        ({"config": {"provider": "elevenlabs"}}, False),
    ],
)
def test_shape_is_type_upstream_nodes_and_pool(edit, same) -> None:
    assert (node_shape({**NODE, **edit}) == node_shape(NODE)) is same


def test_inputs_naming_the_same_nodes_keep_the_shape() -> None:
    merge = {"type": "merge-videos", "inputs": {"segments": ["a", "b"]}}
    assert node_shape({**merge, "inputs": {"segments": ["b", "a"]}}) == node_shape(merge)


@pytest.fixture
def no_webserver(monkeypatch):
    """``VIDPIPE_DAGSTER_URL`` at a closed port: a relaunch finds no webserver."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("VIDPIPE_DAGSTER_URL", f"http://127.0.0.1:{port}")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def planned_run(sessions, resource, keys: list[dg.AssetKey], *, edit) -> dg.ExecuteJobResult:
    """Compile the rows, apply ``edit`` to them, then run ``keys`` on the older plan."""
    with sessions() as session:
        snapshot = take_snapshot(session)
    defs = build_definitions(snapshot=snapshot, resource=resource)
    with sessions() as session, session.begin():
        edit(session)
    job = defs.resolve_implicit_global_asset_job_def()
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(
            instance=instance, asset_selection=keys, raise_on_error=False
        )
        result.messages = [e.message or "" for e in instance.all_logs(result.run_id)]
        return result


def node(sessions, node_uuid: str) -> Node:
    with sessions() as session:
        return session.scalars(select(Node).where(Node.id == uuid.UUID(node_uuid))).one()


def test_a_config_edit_after_planning_runs_the_edited_fields(sessions, resource) -> None:
    ids = add_pipeline(
        sessions, name="fields", nodes=[NodeRow("script", "asset", asset={"content": "Old."})]
    )
    key = key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids["script"])

    def edit(session) -> None:
        session.execute(
            update(Node)
            .where(Node.id == uuid.UUID(ids["script"]))
            .values(asset={"type": "text", "content": "New."}, title="Edited script")
        )

    result = planned_run(sessions, resource, [key], edit=edit)

    assert result.success
    row = node(sessions, ids["script"])
    stored = resource.storage().uri_for(row.output["s3_key"]).removeprefix("file://")
    assert open(stored).read() == "New."
    (event,) = result.get_asset_materialization_events()
    recorded = event.materialization
    assert recorded.tags["dagster/data_version"] == fields_hash(row_fields(row))
    assert recorded.metadata["structure_hash"].value == fields_hash(row_fields(row))


def test_a_shape_edit_after_planning_refuses_the_node(sessions, resource, no_webserver) -> None:
    ids = add_pipeline(
        sessions,
        name="shape",
        nodes=[
            NodeRow("first", "asset", asset={"content": "One."}),
            NodeRow("second", "asset", asset={"content": "Two."}),
            NodeRow("clip", "render-code", config={"code": "x", "duration": 1}),
            NodeRow("voice", "generate-voiceover", inputs={"script": ["first"]}),
            NodeRow("mix", "mix-audio", inputs={"video": ["clip"], "audio": ["voice"]}),
        ],
    )
    key = {n: key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids[n]) for n in ids}
    lifecycle = Lifecycle(sessions)
    for name in ("first", "second", "clip"):
        process = lifecycle.started(ids[name])
        lifecycle.succeeded(ids[name], {"type": "text", "s3_key": f"{name}.txt"}, process)
    before = node(sessions, ids["voice"])

    def edit(session) -> None:
        session.execute(
            update(Node)
            .where(Node.id == uuid.UUID(ids["voice"]))
            .values(inputs={"script": [ids["second"]]})
        )

    result = planned_run(sessions, resource, [key["voice"], key["mix"]], edit=edit)

    assert result.success
    assert result.get_asset_materialization_events() == []
    after = node(sessions, ids["voice"])
    assert (after.status, after.output) == (before.status, before.output)
    run_id = result.run_id
    assert after.metadata_ == {
        **(before.metadata_ or {}),
        "stage": f"not run: edited after Dagster run {run_id} was planned; execute it again",
        "not_run_by": run_id,
    }
    assert node(sessions, ids["mix"]).status == "pending"
    storage_root = resource.storage().uri_for("pipelines").removeprefix("file://")
    assert not any(ids["voice"] in path for path in _files(storage_root))
    refusal = [m for m in result.messages if "was edited after this run was planned" in m]
    assert refusal and "'voice'" in refusal[0] and "the nodes its inputs name" in refusal[0]
    relaunch = [m for m in result.messages if "Could not relaunch" in m]
    assert relaunch and "'voice', 'mix'" in relaunch[0] and "unreachable" in relaunch[0]


def _files(root: str) -> list[str]:
    import os

    return [os.path.join(d, f) for d, _, files in os.walk(root) for f in files]


def test_started_refuses_under_the_row_lock_and_changes_nothing(sessions) -> None:
    ids = add_pipeline(
        sessions,
        name="lock",
        nodes=[
            NodeRow("a", "asset", asset={"content": "a"}),
            NodeRow("b", "asset", asset={"content": "b"}),
            NodeRow("voice", "generate-voiceover", inputs={"script": ["a"]}),
        ],
    )
    lifecycle = Lifecycle(sessions)
    planned = row_fields(node(sessions, ids["voice"]))
    with sessions() as session, session.begin():
        session.execute(
            update(Node).where(Node.id == uuid.UUID(ids["voice"])).values(config={"x": 1})
        )
    ran: dict = {}
    process = lifecycle.started(
        ids["voice"], check=plan_check(planned, force_local=False, into=ran)
    )
    assert ran["config"] == {"x": 1} and node(sessions, ids["voice"]).status == "in_progress"
    lifecycle.failed(ids["voice"], "stop", process)

    with sessions() as session, session.begin():
        session.execute(
            update(Node)
            .where(Node.id == uuid.UUID(ids["voice"]))
            .values(inputs={"script": [ids["b"]]})
        )
    before = node(sessions, ids["voice"])
    with pytest.raises(StalePlanError, match="the nodes its inputs name changed"):
        lifecycle.started(ids["voice"], check=plan_check(planned, force_local=False, into={}))
    after = node(sessions, ids["voice"])
    assert (
        (after.status, after.metadata_)
        == (before.status, before.metadata_)
        == (
            "failed",
            before.metadata_,
        )
    )
