"""Paid work is admitted at submission: the pipeline's budget and per-provider limits."""

from __future__ import annotations

import threading
import uuid

import dagster as dg

from tests.dagster.builders import NodeRow, add_pipeline
from tests.provider_jobs.conftest import node_row, run_in_process, sensor_tick
from vidpipe_dagster.assets.asset_keys import key_of
from vidpipe_dagster.db.models import Node
from vidpipe_dagster.domain.lifecycle import Lifecycle
from vidpipe_dagster.orchestration.provider_sensor import grant_waiting
from vidpipe_dagster.settings import get_settings

SCHEDULE_TAGS = {"dagster/schedule_name": "pipeline_x_schedule"}


def test_over_budget_fails_the_node_in_a_scheduled_run(sessions, resource, fake_veo) -> None:
    nodes = [
        NodeRow("anim", "generate-animation", config={"provider": "veo3", "prompt": "sea"}),
    ]
    ids = add_pipeline(sessions, name="budget", nodes=nodes, config={"budget": 1.0})
    key = key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids["anim"])

    with dg.instance_for_test() as instance:
        result = run_in_process(sessions, resource, instance, [key], tags=SCHEDULE_TAGS)

    assert not result.success
    row = node_row(sessions, ids["anim"])
    assert row.status == "failed"
    assert row.metadata_["error"].startswith("Over budget: running 1 node(s) is estimated at $3.20")
    assert fake_veo.requests_to(":predictLongRunning") == []


def test_jobs_in_flight_count_against_the_budget(sessions, resource, in_flight, fake_veo):
    nodes = [
        NodeRow("one", "generate-animation", config={"provider": "veo3", "prompt": "a"}),
        NodeRow("two", "generate-animation", config={"provider": "veo3", "prompt": "b"}),
    ]
    ids = add_pipeline(sessions, name="reserved", nodes=nodes, config={"budget": 5.0})
    in_flight(ids["one"], provider="veo3", job_id="models/m/operations/x", estimated_cost=3.2)
    key = key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids["two"])

    with dg.instance_for_test() as instance:
        run_in_process(sessions, resource, instance, [key])

    assert node_row(sessions, ids["two"]).metadata_["error"].startswith("Over budget")
    assert fake_veo.requests_to(":predictLongRunning") == []


def test_provider_at_its_limit_waits_for_a_slot_and_starts_once_it_frees(
    sessions, resource, in_flight, fake_heygen, monkeypatch
) -> None:
    monkeypatch.setenv("VIDPIPE_PROVIDER_LIMITS", '{"heygen": 1}')
    get_settings.cache_clear()
    talk = {"provider": "heygen", "avatarId": "a", "voiceId": "v", "script": "Hello."}
    busy = add_pipeline(sessions, name="busy", nodes=[NodeRow("talk", "talking-head", config=talk)])
    ids = add_pipeline(
        sessions, name="queued", nodes=[NodeRow("talk", "talking-head", config=talk)]
    )
    process = in_flight(busy["talk"], provider="heygen", job_id="0" * 32)
    key = key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids["talk"])

    with dg.instance_for_test() as instance:
        held = run_in_process(sessions, resource, instance, [key])
        assert held.success
        row = node_row(sessions, ids["talk"])
        assert row.status == "pending"
        assert row.metadata_["stage"] == "waiting for a heygen slot, next in line"
        assert row.metadata_["waiting"]["run_id"] == held.run_id
        assert fake_heygen.requests_to("/v3/videos", method="POST") == []
        assert grant_waiting(resource).run_requests == []

        Lifecycle(sessions).failed(busy["talk"], "cancelled", process)
        requests = grant_waiting(resource).run_requests
        assert [r.asset_selection for r in requests] == [[key]]
        assert (
            node_row(sessions, ids["talk"]).metadata_["stage"] == "starting: a heygen slot is free"
        )
        assert grant_waiting(resource).run_requests == []
        admitted = run_in_process(sessions, resource, instance, [key], tags=requests[0].tags)
        again = run_in_process(sessions, resource, instance, [key], tags=requests[0].tags)

    assert admitted.success and again.success
    row = node_row(sessions, ids["talk"])
    assert row.status == "in_progress" and row.metadata_["provider"] == "heygen"
    assert row.metadata_["dagster_run_id"] == admitted.run_id
    assert "waiting" not in row.metadata_
    assert len(fake_heygen.requests_to("/v3/videos", method="POST")) == 1


def test_transient_failure_retries_the_step_without_redoing_finished_nodes(
    sessions, resource, fake_elevenlabs, fake_heygen, monkeypatch
) -> None:
    monkeypatch.setenv("VIDPIPE_PROVIDER_STEP_RETRIES", "1")
    get_settings.cache_clear()
    nodes = [
        NodeRow("voice", "generate-voiceover", config={"provider": "elevenlabs", "script": "Hi."}),
        NodeRow(
            "talk",
            "talking-head",
            inputs={"script": ["voice"]},
            config={"provider": "heygen", "avatarId": "a"},
        ),
    ]
    ids = add_pipeline(sessions, name="retry", nodes=nodes)
    keys = [
        key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids[n]) for n in ("voice", "talk")
    ]
    fake_heygen.server_error(503, times=1, path="/v3/videos")

    with dg.instance_for_test() as instance:
        result = run_in_process(sessions, resource, instance, keys)
        retried = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]

    assert result.success and len(retried) == 1
    assert len(fake_elevenlabs.requests_to("/v1/text-to-speech")) == 1
    assert len(fake_heygen.requests_to("/v3/videos", method="POST")) == 2
    assert node_row(sessions, ids["voice"]).status == "completed"
    assert node_row(sessions, ids["talk"]).metadata_["stage"] == "submitted"


def test_a_providers_dagster_pool_holds_its_steps_until_a_slot_is_free(
    sessions, resource, fake_veo
) -> None:
    nodes = [NodeRow("anim", "generate-animation", config={"provider": "veo3", "prompt": "sea"})]
    ids = add_pipeline(sessions, name="pooled", nodes=nodes)
    key = key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids["anim"])

    with dg.instance_for_test() as instance:
        instance.event_log_storage.set_concurrency_slots("veo3", 0)
        results: list[dg.ExecuteInProcessResult] = []
        worker = threading.Thread(
            target=lambda: results.append(run_in_process(sessions, resource, instance, [key])),
            daemon=True,
        )
        worker.start()
        worker.join(4)
        assert worker.is_alive()
        assert node_row(sessions, ids["anim"]).status == "pending"
        assert fake_veo.requests_to(":predictLongRunning") == []

        instance.event_log_storage.set_concurrency_slots("veo3", 1)
        worker.join(120)
        assert not worker.is_alive()

    assert results[0].success
    row = node_row(sessions, ids["anim"])
    assert (row.status, row.metadata_["provider"]) == ("in_progress", "veo3")
    assert len(fake_veo.requests_to(":predictLongRunning")) == 1


def test_the_last_provider_slot_goes_to_exactly_one_of_two_racing_starts(
    sessions, monkeypatch
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from vidpipe_dagster.assets.provider_jobs import ProviderLimitReached, provider_slot

    monkeypatch.setenv("VIDPIPE_PROVIDER_LIMITS", '{"heygen": 2}')
    get_settings.cache_clear()
    talk = {"provider": "heygen", "avatarId": "a", "voiceId": "v", "script": "Hi."}
    rows = [NodeRow(f"t{i}", "talking-head", config=talk) for i in range(4)]
    ids = add_pipeline(sessions, name="race", nodes=rows)
    lifecycle = Lifecycle(sessions)
    lifecycle.started(ids["t0"], {"provider": "heygen"})
    barrier = threading.Barrier(3)

    def start(name: str) -> str:
        admit = provider_slot("heygen", node_uuid=ids[name], settings=get_settings())
        barrier.wait()
        try:
            lifecycle.started(ids[name], {"provider": "heygen"}, admit=admit)
            return "started"
        except ProviderLimitReached:
            return "refused"

    try:
        for _ in range(3):
            with ThreadPoolExecutor(max_workers=3) as pool:
                outcomes = list(pool.map(start, ["t1", "t2", "t3"]))
            assert sorted(outcomes) == ["refused", "refused", "started"]
            statuses = [node_row(sessions, ids[f"t{i}"]).status for i in range(1, 4)]
            assert statuses.count("in_progress") == 1
            for i in range(1, 4):
                lifecycle.failed(ids[f"t{i}"], "reset", None)
                row = node_row(sessions, ids[f"t{i}"])
                if row.status == "in_progress":
                    lifecycle.failed(ids[f"t{i}"], "reset", row.metadata_["process_uuid"])
    finally:
        get_settings.cache_clear()


def _complete(sessions, node_uuid: str) -> dict:
    output = {"type": "video", "s3_key": f"pipelines/p/nodes/{node_uuid}/done.mp4", "size": 10}
    with sessions() as session, session.begin():
        row = session.get(Node, uuid.UUID(node_uuid))
        row.status, row.output = "completed", output
        row.metadata_ = {"process_uuid": "earlier", "completed_at": "2026-12-01T08:00:00+00:00"}
    return output


def test_a_budget_refusal_leaves_a_completed_node_completed(sessions, resource, fake_veo) -> None:
    nodes = [NodeRow("anim", "generate-animation", config={"provider": "veo3", "prompt": "sea"})]
    ids = add_pipeline(sessions, name="kept", nodes=nodes, config={"budget": 1.0})
    output = _complete(sessions, ids["anim"])
    key = key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids["anim"])

    with dg.instance_for_test() as instance:
        result = run_in_process(sessions, resource, instance, [key], tags=SCHEDULE_TAGS)

    assert not result.success
    row = node_row(sessions, ids["anim"])
    assert (row.status, row.output) == ("completed", output)
    assert row.metadata_["refused"].startswith("Over budget: running 1 node(s)")
    assert "error" not in row.metadata_
    assert fake_veo.requests_to(":predictLongRunning") == []


def test_an_admission_refusal_leaves_a_completed_node_completed(
    sessions, resource, in_flight, fake_heygen, monkeypatch
) -> None:
    monkeypatch.setenv("VIDPIPE_PROVIDER_LIMITS", '{"heygen": 1}')
    get_settings.cache_clear()
    talk = {"provider": "heygen", "avatarId": "a", "voiceId": "v", "script": "Hello."}
    busy = add_pipeline(sessions, name="full", nodes=[NodeRow("talk", "talking-head", config=talk)])
    ids = add_pipeline(sessions, name="rerun", nodes=[NodeRow("talk", "talking-head", config=talk)])
    in_flight(busy["talk"], provider="heygen", job_id="1" * 32)
    output = _complete(sessions, ids["talk"])
    key = key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids["talk"])

    with dg.instance_for_test() as instance:
        assert run_in_process(sessions, resource, instance, [key]).success

    row = node_row(sessions, ids["talk"])
    assert (row.status, row.output) == ("completed", output)
    assert row.metadata_["stage"] == "waiting for a heygen slot, next in line"
    assert fake_heygen.requests_to("/v3/videos", method="POST") == []


def test_a_transient_failure_beside_a_permanent_one_is_retried_and_completes(
    sessions, resource, fake_heygen, monkeypatch
) -> None:
    monkeypatch.setenv("VIDPIPE_PROVIDER_STEP_RETRIES", "2")
    get_settings.cache_clear()
    fake_heygen.jobs.steps = 0
    talk = {"provider": "heygen", "avatarId": "a", "voiceId": "v"}
    nodes = [
        NodeRow("doomed", "talking-head", config={**talk, "script": "Doomed."}),
        NodeRow("limited", "talking-head", config={**talk, "script": "Limited."}),
        NodeRow("fine", "talking-head", config={**talk, "script": "Fine."}),
    ]
    ids = add_pipeline(sessions, name="siblings", nodes=nodes)
    keys = [key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids[n.name]) for n in nodes]
    invalid = {"error": {"code": "invalid_parameter", "message": "avatar_id is not allowed"}}
    fake_heygen.fail(400, invalid, times=1, path="/v3/videos")
    fake_heygen.rate_limit(retry_after=0, times=1, path="/v3/videos")

    with dg.instance_for_test() as instance:
        result = run_in_process(sessions, resource, instance, keys)
        retried = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
        assert len(retried) == 1
        assert not result.success
        failure = result.get_step_failure_events()[0].step_failure_data.error
        assert "failed in an earlier attempt" in failure.to_string()
        tick = sensor_tick(sessions, resource, instance)
        assert isinstance(tick, dg.SensorResult)

    scripts = [r.json()["script"] for r in fake_heygen.requests_to("/v3/videos", method="POST")]
    assert scripts == ["Doomed.", "Limited.", "Fine.", "Limited."]
    doomed = node_row(sessions, ids["doomed"])
    assert doomed.status == "failed" and "avatar_id is not allowed" in doomed.metadata_["error"]
    assert node_row(sessions, ids["limited"]).status == "completed"
    assert node_row(sessions, ids["fine"]).status == "completed"


def test_a_paid_node_another_run_holds_in_flight_is_not_submitted_again(
    sessions, resource, in_flight, fake_heygen
) -> None:
    talk = {"provider": "heygen", "avatarId": "a", "voiceId": "v", "script": "Hello."}
    ids = add_pipeline(sessions, name="held", nodes=[NodeRow("talk", "talking-head", config=talk)])
    process = in_flight(ids["talk"], provider="heygen", job_id="2" * 32)
    key = key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids["talk"])

    with dg.instance_for_test() as instance:
        assert run_in_process(sessions, resource, instance, [key]).success

    row = node_row(sessions, ids["talk"])
    assert (row.status, row.metadata_["process_uuid"]) == ("in_progress", process)
    assert row.metadata_["provider_job_id"] == "2" * 32
    assert fake_heygen.requests_to("/v3/videos", method="POST") == []
