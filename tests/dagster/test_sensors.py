"""Sensors: the run backstop on failed and cancelled runs, the database-change sensor."""

from __future__ import annotations

import uuid

import dagster as dg
from sqlalchemy import delete, select, update

from tests.dagster.builders import NodeRow, add_pipeline
from vidpipe_dagster.assets.asset_keys import key_of
from vidpipe_dagster.db.models import Node, Pipeline
from vidpipe_dagster.db.snapshot import latest_updated_at, take_snapshot
from vidpipe_dagster.definitions import build_definitions
from vidpipe_dagster.domain.lifecycle import Lifecycle
from vidpipe_dagster.orchestration.sensors import (
    build_refresh_sensor,
    canceled_run_backstop,
    failed_run_backstop,
)

NODES = [
    NodeRow("script", "asset", asset={"content": "Hi."}),
    NodeRow("clip", "render-code", config={"code": "x", "duration": 1}),
]


def node_rows(sessions, ids) -> dict[str, Node]:
    with sessions() as session:
        rows = session.scalars(select(Node).where(Node.pipeline_id == uuid.UUID(ids["pipeline"])))
        return {row.uuid: row for row in rows}


def run_that_dies(sessions, resource, instance, monkeypatch, ids):
    """A run whose worker dies inside ``clip``: the bridge never gets to record the failure."""
    from vidpipe_dagster.assets import node_execution

    def die(**kwargs):
        if kwargs["node"]["uuid"] == ids["clip"]:
            raise SystemExit("run worker killed")
        return original(**kwargs)

    original = node_execution._run_executor
    monkeypatch.setattr(node_execution, "_run_executor", die)
    monkeypatch.setattr(Lifecycle, "failed", lambda self, *args, **kwargs: False)
    with sessions() as session:
        snapshot = take_snapshot(session)
    job = build_definitions(
        snapshot=snapshot, resource=resource
    ).resolve_implicit_global_asset_job_def()
    keys = [key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids[n.name]) for n in NODES]
    result = job.execute_in_process(instance=instance, asset_selection=keys, raise_on_error=False)
    monkeypatch.undo()
    assert not result.success
    assert node_rows(sessions, ids)[ids["clip"]].status == "in_progress"
    return result


def test_failed_run_backstop_fails_nodes_left_in_progress(sessions, resource, monkeypatch) -> None:
    ids = add_pipeline(sessions, name="dies", nodes=NODES)
    with dg.instance_for_test() as instance:
        result = run_that_dies(sessions, resource, instance, monkeypatch, ids)
        failure = next(e for e in result.all_events if e.event_type_value == "PIPELINE_FAILURE")
        context = dg.build_run_status_sensor_context(
            sensor_name="vidpipe_failed_run_backstop",
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            dagster_event=failure,
            resources={"vidpipe": resource},
        ).for_run_failure()
        failed_run_backstop(context)

    rows = node_rows(sessions, ids)
    assert rows[ids["script"]].status == "completed"
    assert rows[ids["clip"]].status == "failed"
    assert result.run_id in rows[ids["clip"]].metadata_["error"]
    with sessions() as session:
        progress = session.get(Pipeline, uuid.UUID(ids["pipeline"])).metadata_["progress"]
    assert progress["failed"] == 1 and progress["in_progress"] == 0


def test_canceled_run_backstop_spares_nodes_of_newer_runs_and_provider_jobs(
    sessions, resource, monkeypatch
) -> None:
    ids = add_pipeline(sessions, name="cancelled", nodes=NODES)
    with dg.instance_for_test() as instance:
        result = run_that_dies(sessions, resource, instance, monkeypatch, ids)
        canceled = result.dagster_run.with_status(dg.DagsterRunStatus.CANCELED)
        lifecycle = resource.lifecycle()
        lifecycle.started(ids["script"], {"dagster_run_id": "a-newer-run"})
        with sessions() as session, session.begin():
            session.execute(
                update(Node).where(Node.id == uuid.UUID(ids["script"])).values(status="pending")
            )
        waiting = add_pipeline(sessions, name="waiting", nodes=[NodeRow("v", "talking-head")])
        process = lifecycle.started(waiting["v"], {"dagster_run_id": result.run_id})
        lifecycle.updated(waiting["v"], {"provider_job_id": "job-1"}, process)

        event = next(e for e in result.all_events if e.event_type_value == "PIPELINE_FAILURE")
        context = dg.build_run_status_sensor_context(
            sensor_name="vidpipe_canceled_run_backstop",
            dagster_instance=instance,
            dagster_run=canceled,
            dagster_event=event,
            resources={"vidpipe": resource},
        )
        canceled_run_backstop(context)

    rows = node_rows(sessions, ids)
    assert rows[ids["clip"]].status == "failed"
    assert "cancelled" in rows[ids["clip"]].metadata_["error"]
    assert rows[ids["script"]].status == "pending"
    assert node_rows(sessions, waiting)[waiting["v"]].status == "in_progress"


def test_database_change_sensor_requests_one_reload_per_change(
    sessions, resource, monkeypatch
) -> None:
    from vidpipe_dagster.orchestration import sensors
    from vidpipe_dagster.runs.reload import LocationView, ReloadError

    requested: list[str] = []
    monkeypatch.setattr(
        sensors, "request_reload", lambda settings, *, location: requested.append(location)
    )
    webserver = {"view": LocationView(loading=False, metadata={})}

    def view(**kwargs) -> LocationView:
        assert kwargs["location"] == "vidpipe" and kwargs["sensor"] == sensors.REFRESH_SENSOR
        if isinstance(webserver["view"], Exception):
            raise webserver["view"]
        return webserver["view"]

    monkeypatch.setattr(sensors, "location_view", view)
    ids = add_pipeline(sessions, name="watched", nodes=NODES)
    with sessions() as session:
        marker = latest_updated_at(session)
    sensor = build_refresh_sensor(compiled_from=marker, location="vidpipe")
    assert sensor.metadata[sensors.COMPILED_FROM].text == marker

    def tick(context) -> str:
        result = sensor(context)
        assert isinstance(result, dg.SkipReason)
        return result.skip_message

    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources={"vidpipe": resource})
        assert "match" in tick(context)

        with sessions() as session, session.begin():
            session.execute(
                update(Node).where(Node.id == uuid.UUID(ids["clip"])).values(title="Renamed")
            )
        with sessions() as session:
            current = latest_updated_at(session)
        # a fresh change is the API's to reload
        assert "recent" in tick(context)
        monkeypatch.setattr(sensors, "REFRESH_GRACE_SECONDS", 0)
        # the webserver is reloading, or has already loaded the change: nothing to ask
        webserver["view"] = LocationView(loading=True, metadata={})
        assert "in progress" in tick(context)
        webserver["view"] = LocationView(loading=False, metadata={"compiled_from": current})
        assert "already loaded" in tick(context)
        webserver["view"] = ReloadError("connection refused")
        assert "connection refused" in tick(context)
        assert requested == []

        webserver["view"] = LocationView(loading=False, metadata={"compiled_from": marker})
        assert "reload requested" in tick(context)
        assert requested == ["vidpipe"]
        context = dg.build_sensor_context(
            instance=instance, cursor=context.cursor, resources={"vidpipe": resource}
        )
        assert "already requested" in tick(context)
        assert requested == ["vidpipe"]


def test_change_marker_follows_only_its_shard(sessions) -> None:
    from vidpipe_dagster.db.snapshot import shard_of

    pipelines = [add_pipeline(sessions, name=f"p{i}", nodes=NODES) for i in range(6)]
    shard = shard_of(pipelines[0]["pipeline"], 2)
    mine = [p for p in pipelines if shard_of(p["pipeline"], 2) == shard]
    other = next(p for p in pipelines if shard_of(p["pipeline"], 2) != shard)
    with sessions() as session:
        before = latest_updated_at(session, shard=shard, shards=2)
        snapshot = take_snapshot(session, shard=shard, shards=2)
    assert snapshot["latest_updated_at"] == before
    assert before.endswith(f"|{len(mine)}|{2 * len(mine)}")
    assert {p["uuid"] for p in snapshot["pipelines"]} == {p["pipeline"] for p in mine}

    with sessions() as session, session.begin():
        session.execute(
            update(Node).where(Node.id == uuid.UUID(other["clip"])).values(title="Elsewhere")
        )
    with sessions() as session:
        assert latest_updated_at(session, shard=shard, shards=2) == before
        assert latest_updated_at(session) != latest_updated_at(session, shard=shard, shards=2)

    with sessions() as session, session.begin():
        session.execute(
            update(Node).where(Node.id == uuid.UUID(mine[0]["clip"])).values(title="Mine")
        )
    with sessions() as session:
        assert latest_updated_at(session, shard=shard, shards=2) != before
    # a delete moves the counts even though no updated_at moved
    with sessions() as session:
        moved = latest_updated_at(session, shard=shard, shards=2)
    with sessions() as session, session.begin():
        session.execute(delete(Node).where(Node.id == uuid.UUID(mine[-1]["script"])))
    with sessions() as session:
        after = latest_updated_at(session, shard=shard, shards=2)
    assert after != moved and after.endswith(f"|{len(mine)}|{2 * len(mine) - 1}")
