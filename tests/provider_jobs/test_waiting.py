"""Nodes over a provider's limit wait for a slot, say so, and all run in the end.

Eight HeyGen nodes against a limit of 2, the fake holding each job 20 s: one run asks for
all eight, then sensor ticks (evaluated as the daemon would, each ``RunRequest`` launched
once per ``run_key``) finish jobs and start the waiting nodes as slots free.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime, timedelta

import dagster as dg

from tests.dagster.builders import NodeRow, add_pipeline
from tests.provider_jobs.conftest import all_nodes, node_row, run_in_process, sensor_tick
from vidpipe_dagster.assets.asset_keys import key_of
from vidpipe_dagster.assets.provider_queue import GRANT_TIMEOUT_SECONDS
from vidpipe_dagster.db.models import Node
from vidpipe_dagster.domain.lifecycle import Lifecycle
from vidpipe_dagster.orchestration.provider_sensor import grant_waiting
from vidpipe_dagster.settings import get_settings

HOLD_SECONDS = 20.0
LIMIT = 2
NODES = 8
DEADLINE_SECONDS = 300.0
WAITING = re.compile(r"^waiting for a heygen slot, (next in line|(\d+) ahead)$")


def _ahead(stage: str) -> int:
    match = WAITING.match(stage)
    assert match, stage
    return int(match.group(2) or 0)


def test_eight_heygen_nodes_against_a_limit_of_two_all_complete(
    sessions, resource, fake_heygen, monkeypatch
) -> None:
    monkeypatch.setenv("VIDPIPE_PROVIDER_LIMITS", f'{{"heygen": {LIMIT}}}')
    get_settings.cache_clear()
    fake_heygen.jobs.steps = 0
    fake_heygen.jobs.hold_seconds = HOLD_SECONDS
    talk = {"provider": "heygen", "avatarId": "a", "voiceId": "v"}
    rows = [  # eight different scripts: eight jobs (identical nodes would reuse one result)
        NodeRow(f"t{i}", "talking-head", config={**talk, "script": f"Hello number {i}."})
        for i in range(NODES)
    ]
    ids = add_pipeline(sessions, name="eight", nodes=rows)
    pipeline = ids["pipeline"]
    names = {ids[row.name]: row.name for row in rows}
    keys = [key_of(sessions, pipeline_uuid=pipeline, node_uuid=ids[row.name]) for row in rows]

    with dg.instance_for_test() as instance:
        first = run_in_process(sessions, resource, instance, keys)
        assert first.success
        nodes = all_nodes(sessions, pipeline)
        running = sorted(names[u] for u, row in nodes.items() if row.status == "in_progress")
        assert running == ["t0", "t1"]
        stages = {names[u]: row.metadata_.get("stage") for u, row in nodes.items()}
        assert [_ahead(stages[f"t{i}"]) for i in range(2, NODES)] == [0, 1, 2, 3, 4, 5]
        assert stages["t7"] == "waiting for a heygen slot, 5 ahead"
        assert len(fake_heygen.requests_to("/v3/videos", method="POST")) == LIMIT

        launched: set[str] = set()
        seen_ahead: dict[str, list[int]] = {name: [] for name in names.values()}
        begun = time.monotonic()
        while time.monotonic() - begun < DEADLINE_SECONDS:
            tick = sensor_tick(sessions, resource, instance)
            requests = tick.run_requests if isinstance(tick, dg.SensorResult) else []
            for request in requests:
                if request.run_key in launched:
                    continue
                launched.add(request.run_key)
                run = run_in_process(
                    sessions, resource, instance, request.asset_selection, tags=request.tags
                )
                assert run.success
            nodes = all_nodes(sessions, pipeline)
            in_flight = [row for row in nodes.values() if row.status == "in_progress"]
            assert len(in_flight) <= LIMIT
            for uuid, row in nodes.items():
                if row.status == "completed":
                    continue
                stage = row.metadata_.get("stage") or ""
                assert row.status == "in_progress" or WAITING.match(stage), (names[uuid], stage)
                if WAITING.match(stage):
                    seen_ahead[names[uuid]].append(_ahead(stage))
            if all(row.status == "completed" for row in nodes.values()):
                break
            time.sleep(1.0)
        elapsed = time.monotonic() - begun

    nodes = all_nodes(sessions, pipeline)
    assert {names[u]: row.status for u, row in nodes.items()} == {
        name: "completed" for name in names.values()
    }
    assert len(fake_heygen.requests_to("/v3/videos", method="POST")) == NODES
    job_ids = {row.output["provider_job_id"] for row in nodes.values()}
    assert len(job_ids) == NODES
    for name in ("t6", "t7"):
        assert seen_ahead[name] and seen_ahead[name] == sorted(seen_ahead[name], reverse=True)
        assert seen_ahead[name][-1] < seen_ahead[name][0]
    assert elapsed >= HOLD_SECONDS * (NODES // LIMIT - 1)


def _waiting_pipeline(sessions, resource, instance, *, name: str, count: int) -> dict[str, str]:
    talk = {"provider": "heygen", "avatarId": "a", "voiceId": "v", "script": "Hi."}
    rows = [NodeRow(f"t{i}", "talking-head", config=talk) for i in range(count)]
    ids = add_pipeline(sessions, name=name, nodes=rows)
    keys = [key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids[r.name]) for r in rows]
    assert run_in_process(sessions, resource, instance, keys).success
    return ids


def test_a_node_edited_while_waiting_stops_waiting(sessions, resource, fake_heygen, monkeypatch):
    monkeypatch.setenv("VIDPIPE_PROVIDER_LIMITS", '{"heygen": 1}')
    get_settings.cache_clear()
    fake_heygen.jobs.outcome = "never"

    with dg.instance_for_test() as instance:
        ids = _waiting_pipeline(sessions, resource, instance, name="edited", count=3)
        with sessions() as session, session.begin():
            row = session.get(Node, uuid.UUID(ids["t1"]))
            row.config = {**row.config, "script": "Changed."}
        Lifecycle(sessions).failed(
            ids["t0"], "cancelled", node_row(sessions, ids["t0"]).metadata_["process_uuid"]
        )
        requests = grant_waiting(resource).run_requests

    assert [r.asset_selection[0].path[-1] for r in requests] == [
        key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids["t2"]).path[-1]
    ]
    edited = node_row(sessions, ids["t1"])
    assert "waiting" not in edited.metadata_ and "stage" not in edited.metadata_
    assert node_row(sessions, ids["t2"]).metadata_["stage"] == "starting: a heygen slot is free"


def test_a_grant_whose_run_never_started_is_granted_again_and_served_once(
    sessions, resource, fake_heygen, monkeypatch
) -> None:
    monkeypatch.setenv("VIDPIPE_PROVIDER_LIMITS", '{"heygen": 1}')
    get_settings.cache_clear()
    fake_heygen.jobs.outcome = "never"

    with dg.instance_for_test() as instance:
        ids = _waiting_pipeline(sessions, resource, instance, name="lost", count=2)
        Lifecycle(sessions).failed(
            ids["t0"], "cancelled", node_row(sessions, ids["t0"]).metadata_["process_uuid"]
        )
        now = datetime.now(UTC)
        lost = grant_waiting(resource, now=now).run_requests
        assert len(lost) == 1
        assert grant_waiting(resource, now=now + timedelta(seconds=60)).run_requests == []
        later = now + timedelta(seconds=GRANT_TIMEOUT_SECONDS + 1)
        again = grant_waiting(resource, now=later).run_requests
        assert len(again) == 1 and again[0].run_key != lost[0].run_key
        key = again[0].asset_selection
        assert run_in_process(sessions, resource, instance, key, tags=again[0].tags).success
        assert run_in_process(sessions, resource, instance, key, tags=lost[0].tags).success

    row = node_row(sessions, ids["t1"])
    assert row.status == "in_progress" and "waiting" not in row.metadata_
    scripts = fake_heygen.requests_to("/v3/videos", method="POST")
    assert len(scripts) == 2
