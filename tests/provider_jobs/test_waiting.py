"""Nodes over a provider's limit wait for a slot, say so, and all run in the end.

Eight HeyGen nodes against a limit of 2, the fake holding each job 20 s: one run asks for
all eight, then sensor ticks (evaluated as the daemon would, each ``RunRequest`` launched
once per ``run_key``) finish jobs and start the waiting nodes as slots free.
"""

from __future__ import annotations

import re
import time

import dagster as dg

from tests.dagster.builders import NodeRow, add_pipeline
from tests.provider_jobs.conftest import all_nodes, run_in_process, sensor_tick
from vidpipe_dagster.compiler import node_asset_key
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
    talk = {"provider": "heygen", "avatarId": "a", "voiceId": "v", "script": "Hello."}
    rows = [NodeRow(f"t{i}", "talking-head", config=talk) for i in range(NODES)]
    ids = add_pipeline(sessions, name="eight", nodes=rows)
    pipeline = ids["pipeline"]
    names = {ids[row.name]: row.name for row in rows}
    keys = [node_asset_key(pipeline_uuid=pipeline, node_uuid=ids[row.name]) for row in rows]

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
