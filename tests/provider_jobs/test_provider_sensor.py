"""The provider polling sensor against the fake providers, on PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import dagster as dg
import pytest

from tests.dagster.builders import NodeRow, add_pipeline
from tests.fixtures.media_links import assert_signed_link
from tests.provider_jobs.conftest import (
    lifecycle_now,
    node_row,
    sensor_tick,
    stored_objects,
)
from vidpipe_dagster.assets.asset_keys import key_of
from vidpipe_dagster.assets.provider_jobs import find_job, finish_job
from vidpipe_dagster.db.models import Node
from vidpipe_dagster.domain.graph import downstream_selection
from vidpipe_dagster.domain.lifecycle import Lifecycle
from vidpipe_dagster.orchestration.provider_sensor import poll_provider_jobs
from vidpipe_dagster.resources.providers.heygen import HeyGenClient

NODES = [
    NodeRow("voice", "asset", asset={"type": "text", "content": "hi"}),
    NodeRow("talk", "talking-head", config={"provider": "heygen", "avatarId": "a"}),
    NodeRow("mix", "mix-audio", inputs={"video": ["talk"], "audio": ["voice"]}),
    NodeRow("after", "merge-videos", inputs={"segments": ["mix", "talk"]}),
]


@pytest.fixture
def pipeline(sessions, in_flight, fake_heygen):
    """A pipeline whose talking head waits on a HeyGen job (``ids["job"]``)."""
    ids = add_pipeline(sessions, name="sensor", nodes=NODES)
    lifecycle = Lifecycle(sessions)
    process = lifecycle.started(ids["voice"])
    lifecycle.succeeded(ids["voice"], {"type": "text", "s3_key": "x.txt", "size": 2}, process)
    ids["job"] = fake_heygen.jobs.create(steps=0).id
    ids["process"] = in_flight(ids["talk"], provider="heygen", job_id=ids["job"])
    return ids


def test_completed_job_is_stored_reported_once_and_runs_downstream(
    sessions, resource, pipeline
) -> None:
    with dg.instance_for_test() as instance:
        result = sensor_tick(sessions, resource, instance)
        again = sensor_tick(sessions, resource, instance)

    assert isinstance(result, dg.SensorResult) and isinstance(again, dg.SkipReason)
    row = node_row(sessions, pipeline["talk"])
    assert row.status == "completed"
    assert row.output["s3_key"].endswith(f"/{pipeline['process']}.mp4")
    assert row.output["provider_job_id"] == pipeline["job"]
    assert row.output["duration"] == pytest.approx(1.0, abs=0.1) and row.output["cost"] > 0
    assert len(stored_objects(resource, pipeline["pipeline"], pipeline["talk"])) == 1
    (event,) = result.asset_events
    assert event.asset_key == key_of(
        sessions, pipeline_uuid=pipeline["pipeline"], node_uuid=pipeline["talk"]
    )
    assert event.metadata["process_uuid"].value == pipeline["process"]
    assert event.metadata["size (bytes)"].value == row.output["size"]
    assert_signed_link(event.metadata["link"].value, row.output["s3_key"], resource.settings())
    (request,) = result.run_requests
    assert request.run_key == f"{pipeline['talk']}:{pipeline['process']}"
    assert request.asset_selection == [
        key_of(sessions, pipeline_uuid=pipeline["pipeline"], node_uuid=pipeline[name])
        for name in ("mix", "after")
    ]


def test_failed_job_fails_the_node_with_the_providers_reason(
    sessions, resource, pipeline, fake_heygen
) -> None:
    fake_heygen.jobs.get(pipeline["job"]).outcome = "fail"
    with dg.instance_for_test() as instance:
        assert isinstance(sensor_tick(sessions, resource, instance), dg.SkipReason)
    row = node_row(sessions, pipeline["talk"])
    assert row.status == "failed"
    assert "Avatar rendering failed" in row.metadata_["error"]
    assert pipeline["job"] in row.metadata_["error"]


def test_running_job_is_kept_with_its_stage(sessions, resource, pipeline, fake_heygen) -> None:
    fake_heygen.jobs.get(pipeline["job"]).steps = 5
    poll_provider_jobs(resource)
    poll_provider_jobs(resource)
    row = node_row(sessions, pipeline["talk"])
    assert row.status == "in_progress"
    assert row.metadata_["stage"] == "running"
    assert row.metadata_["poll_attempts"] == 2
    assert row.metadata_["process_uuid"] == pipeline["process"]


def test_transient_errors_keep_the_job(sessions, resource, pipeline, fake_heygen) -> None:
    fake_heygen.server_error(503, times=1)
    tick = poll_provider_jobs(resource)
    row = node_row(sessions, pipeline["talk"])
    assert tick.counts["transient"] == 1
    assert row.status == "in_progress" and "503" in row.metadata_["last_poll_error"]
    assert poll_provider_jobs(resource).counts["reported"] == 1
    assert node_row(sessions, pipeline["talk"]).status == "completed"


def test_job_past_the_maximum_wait_times_out(sessions, resource, in_flight, fake_heygen) -> None:
    ids = add_pipeline(sessions, name="slow", nodes=NODES[:2])
    job = fake_heygen.jobs.create(outcome="never")
    long_ago = lifecycle_now() - timedelta(hours=2)
    in_flight(ids["talk"], provider="heygen", job_id=job.id, submitted_at=long_ago.isoformat())
    Lifecycle(sessions).updated_many(
        {
            ids["talk"]: (
                node_row(sessions, ids["talk"]).metadata_["process_uuid"],
                {"poll_attempts": 4},
            )
        }
    )
    poll_provider_jobs(resource)
    row = node_row(sessions, ids["talk"])
    assert row.status == "failed"
    assert row.metadata_["error"].startswith("Polling timeout after 5 attempts")


def test_edited_or_restarted_nodes_drop_their_jobs(
    sessions, resource, pipeline, fake_heygen, provider_settings
) -> None:
    job = find_job(sessions, provider="heygen", job_id=pipeline["job"])
    restarted = Lifecycle(sessions).started(pipeline["talk"])

    tick = poll_provider_jobs(resource)
    with HeyGenClient.from_settings(provider_settings) as client:
        late = finish_job(
            job,
            client.poll(pipeline["job"]),
            lifecycle=Lifecycle(sessions),
            storage=resource.storage(),
            client=client,
            settings=provider_settings,
            source="test",
        )

    assert tick.counts["polled"] == 0 and late == "dropped"
    row = node_row(sessions, pipeline["talk"])
    assert row.status == "in_progress" and row.metadata_["process_uuid"] == restarted
    assert row.output is None
    assert stored_objects(resource, pipeline["pipeline"], pipeline["talk"]) == []


def test_overlapping_ticks_complete_and_report_once(sessions, resource, pipeline) -> None:
    results = []
    barrier = threading.Barrier(3)

    def tick() -> None:
        barrier.wait()
        results.append(poll_provider_jobs(resource))

    threads = [threading.Thread(target=tick) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(len(r.asset_events) for r in results) == 1
    assert sum(len(r.run_requests) for r in results) == 1
    assert sum(r.counts["completed"] for r in results) == 1
    assert len(stored_objects(resource, pipeline["pipeline"], pipeline["talk"])) == 1
    assert node_row(sessions, pipeline["talk"]).status == "completed"


@pytest.mark.parametrize(
    ("statuses", "completed", "expected"),
    [
        ({"a": "completed", "b": "in_progress"}, ["a"], []),
        ({"a": "completed", "b": "completed"}, ["a"], ["c", "d"]),
        ({"a": "completed", "b": "completed", "d": "in_progress"}, ["a", "b"], ["c"]),
        ({"a": "completed", "b": "completed", "c": "completed"}, ["a", "c"], ["d"]),
        ({"a": "completed", "b": "completed"}, iter(["b", "a"]), ["c", "d"]),
    ],
)
def test_downstream_selection_waits_for_every_input(statuses, completed, expected) -> None:
    inputs = {
        "a": {},
        "b": {},
        "c": {"segments": ["a", "b"]},
        "d": {"video": "c", "audio": ["a"]},
    }
    nodes = {uuid: (statuses.get(uuid, "pending"), inputs[uuid]) for uuid in inputs}
    assert downstream_selection(nodes, completed) == expected


def test_a_job_submitted_by_a_cancelled_run_still_finishes(sessions, resource, fake_heygen) -> None:
    from tests.provider_jobs.conftest import run_in_process
    from vidpipe_dagster.orchestration.sensors import canceled_run_backstop

    fake_heygen.jobs.steps = 0
    talk = {"provider": "heygen", "avatarId": "a", "voiceId": "v", "script": "Hello there."}
    ids = add_pipeline(
        sessions, name="cancelled", nodes=[NodeRow("talk", "talking-head", config=talk)]
    )
    key = key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids["talk"])
    with dg.instance_for_test() as instance:
        result = run_in_process(sessions, resource, instance, [key])
        assert node_row(sessions, ids["talk"]).status == "in_progress"
        event = next(e for e in result.all_events if e.event_type_value == "PIPELINE_SUCCESS")
        context = dg.build_run_status_sensor_context(
            sensor_name="vidpipe_canceled_run_backstop",
            dagster_instance=instance,
            dagster_run=result.dagster_run.with_status(dg.DagsterRunStatus.CANCELED),
            dagster_event=event,
            resources={"vidpipe": resource},
        )
        canceled_run_backstop(context)
        assert node_row(sessions, ids["talk"]).status == "in_progress"

        tick = sensor_tick(sessions, resource, instance)

    assert isinstance(tick, dg.SensorResult) and len(tick.asset_events) == 1
    row = node_row(sessions, ids["talk"])
    assert row.status == "completed"
    assert len(fake_heygen.requests_to("/v3/videos", method="POST")) == 1


def test_with_shards_only_the_pipelines_shard_reports_its_completion(
    sessions, resource, pipeline, monkeypatch
) -> None:
    from vidpipe_dagster.db.snapshot import shard_of
    from vidpipe_dagster.orchestration.provider_sensor import report_completions
    from vidpipe_dagster.settings import get_settings

    own = shard_of(pipeline["pipeline"], 2)
    with dg.instance_for_test() as instance:
        sensor_tick(sessions, resource, instance)  # finishes the job; reports it unsharded
    with sessions() as session, session.begin():
        row = session.get(Node, uuid.UUID(pipeline["talk"]))
        row.metadata_ = {**row.metadata_, "dagster_reported": False}

    monkeypatch.setenv("VIDPIPE_DAGSTER_SHARDS", "2")
    monkeypatch.setenv("VIDPIPE_DAGSTER_SHARD", str(1 - own))
    get_settings.cache_clear()
    other = report_completions(resource)
    assert other.asset_events == [] and other.run_requests == []
    assert node_row(sessions, pipeline["talk"]).metadata_["dagster_reported"] is False

    monkeypatch.setenv("VIDPIPE_DAGSTER_SHARD", str(own))
    get_settings.cache_clear()
    mine = report_completions(resource)
    get_settings.cache_clear()
    assert len(mine.asset_events) == 1
    (request,) = mine.run_requests
    assert request.asset_selection == [
        key_of(sessions, pipeline_uuid=pipeline["pipeline"], node_uuid=pipeline[name])
        for name in ("mix", "after")
    ]
    assert node_row(sessions, pipeline["talk"]).metadata_["dagster_reported"] is True
