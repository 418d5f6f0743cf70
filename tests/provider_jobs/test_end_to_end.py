"""End to end on PostgreSQL: ElevenLabs voiceover -> HeyGen talking head (speaking that
audio) and Veo animation -> merge -> mix, through in-process runs and sensor ticks."""

from __future__ import annotations

import dagster as dg
import pytest

from lambdas.ffmpeg import probe
from tests.dagster.builders import NodeRow, add_pipeline
from tests.provider_jobs.conftest import (
    all_nodes,
    pipeline_row,
    run_in_process,
    sensor_tick,
    stored_objects,
)
from vidpipe_dagster.assets.asset_keys import key_of

SCRIPT = "Welcome to the course. Today we build a video pipeline."
NODES = [
    NodeRow("script", "asset", asset={"type": "text", "content": SCRIPT}),
    NodeRow(
        "voiceover",
        "generate-voiceover",
        inputs={"script": ["script"]},
        config={"provider": "elevenlabs", "voiceId": "voice-1", "stability": 0.4},
    ),
    NodeRow(
        "talking",
        "talking-head",
        inputs={"script": ["voiceover"]},
        config={"provider": "heygen", "avatarId": "avatar-1", "width": 1280, "height": 720},
    ),
    NodeRow(
        "animation",
        "generate-animation",
        config={"provider": "veo3", "prompt": "a calm sea at dawn", "duration": 8},
    ),
    NodeRow("merge", "merge-videos", inputs={"segments": ["talking", "animation"]}),
    NodeRow("mix", "mix-audio", inputs={"video": ["merge"], "audio": ["voiceover"]}),
]


def test_pipeline_finishes_through_runs_and_sensor_ticks(
    sessions, resource, fake_elevenlabs, fake_heygen, fake_veo
) -> None:
    fake_heygen.jobs.steps = 1
    fake_veo.jobs.steps = 1
    ids = add_pipeline(sessions, name="e2e", nodes=NODES, config={"budget": 50})
    pipeline = ids["pipeline"]
    key = {n.name: key_of(sessions, pipeline_uuid=pipeline, node_uuid=ids[n.name]) for n in NODES}

    with dg.instance_for_test() as instance:
        first = run_in_process(sessions, resource, instance, list(key.values()))
        assert first.success
        nodes = all_nodes(sessions, pipeline)
        assert nodes[ids["voiceover"]].status == "completed"
        for name in ("talking", "animation"):
            row = nodes[ids[name]]
            assert row.status == "in_progress"
            assert row.metadata_["stage"] == "submitted"
            assert row.metadata_["provider_job_id"]
        assert nodes[ids["merge"]].status == nodes[ids["mix"]].status == "pending"

        submit = fake_heygen.requests_to("/v3/videos", method="POST")[0].json()
        assert "script" not in submit and submit["audio_url"].startswith("file://")
        assert submit["audio_url"].endswith(nodes[ids["voiceover"]].output["s3_key"])

        tick = sensor_tick(sessions, resource, instance)
        assert isinstance(tick, dg.SkipReason)
        nodes = all_nodes(sessions, pipeline)
        assert nodes[ids["talking"]].metadata_["stage"] in ("queued", "running")
        assert nodes[ids["talking"]].metadata_["poll_attempts"] == 1

        tick = sensor_tick(sessions, resource, instance)
        assert isinstance(tick, dg.SensorResult)
        assert {e.asset_key for e in tick.asset_events} == {key["talking"], key["animation"]}
        assert len(tick.run_requests) == 1
        request = tick.run_requests[0]
        assert request.asset_selection == [key["merge"], key["mix"]]

        second = run_in_process(sessions, resource, instance, request.asset_selection)
        assert second.success
        assert isinstance(sensor_tick(sessions, resource, instance), dg.SkipReason)

        nodes = all_nodes(sessions, pipeline)
        assert {row.status for row in nodes.values()} == {"completed"}
        for name in ("talking", "animation"):
            row = nodes[ids[name]]
            assert row.output["s3_key"].endswith(f"{row.metadata_['process_uuid']}.mp4")
            assert len(stored_objects(resource, pipeline, row.uuid)) == 1
            assert row.metadata_["dagster_reported"] is True
        final = resource.storage().uri_for(nodes[ids["mix"]].output["s3_key"])
        assert probe(final.removeprefix("file://")).duration > 0

        progress = pipeline_row(sessions, pipeline).metadata_
        assert progress["progress"] == {
            "completed": 6, "in_progress": 0, "pending": 0, "failed": 0, "total": 6
        }  # fmt: skip
        costs = [float((row.output or {}).get("cost") or 0) for row in nodes.values()]
        assert nodes[ids["voiceover"]].output["cost"] == pytest.approx(len(SCRIPT) * 0.0001)
        assert nodes[ids["animation"]].output["cost"] == pytest.approx(0.40 * 1.0, rel=0.2)
        assert progress["totalCost"] == pytest.approx(sum(costs))
        assert progress["totalCost"] > 0

        for name, asset_key in key.items():
            records = instance.fetch_materializations(asset_key, limit=10).records
            assert len(records) == 1, name
        talking_event = instance.get_latest_materialization_event(key["talking"])
        metadata = talking_event.asset_materialization.metadata
        assert (
            metadata["provider_job_id"].value == nodes[ids["talking"]].metadata_["provider_job_id"]
        )
        assert metadata["size (bytes)"].value == nodes[ids["talking"]].output["size"]
