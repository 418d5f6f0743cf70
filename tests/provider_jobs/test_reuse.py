"""Reuse of finished work on PostgreSQL, with the fake providers and real FFmpeg.

A second run of a pipeline makes no provider call and renders nothing; a copy of the
pipeline with one changed merge renders only that merge; ``force`` renders again; a changed
upstream changes the signature of everything downstream.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import update

from tests.dagster.builders import NodeRow, add_pipeline
from tests.provider_jobs.conftest import all_nodes, pipeline_row, run_in_process, sensor_tick
from vidpipe_dagster.assets.asset_keys import key_of
from vidpipe_dagster.db.models import Node
from vidpipe_dagster.domain.signatures import FORCE_TAG

SCRIPT = "Welcome to the course. Today we reuse what is already made."
NODES = [
    NodeRow("script", "asset", asset={"type": "text", "content": SCRIPT}),
    NodeRow(
        "voiceover",
        "generate-voiceover",
        inputs={"script": ["script"]},
        config={"provider": "elevenlabs", "voiceId": "voice-1"},
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
    NodeRow("mix", "mix-audio", inputs={"video": ["talking"], "audio": ["voiceover"]}),
    NodeRow("merge", "merge-videos", inputs={"segments": ["mix", "animation"]}),
]
NAMES = [node.name for node in NODES]


def _provider_calls(*fakes) -> int:
    return sum(len(fake.requests) for fake in fakes)


def _stored(resource) -> list[Path]:
    root = Path(resource.storage().uri_for("")[len("file://") :])
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def _keys(sessions, ids: dict[str, str]) -> dict[str, dg.AssetKey]:
    return {n: key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids[n]) for n in NAMES}


def _run_to_completion(sessions, resource, instance, keys, *, tags=None) -> None:
    """A run of ``keys``, then the provider sensor's ticks and the runs they request."""
    assert run_in_process(sessions, resource, instance, keys, tags=tags).success
    for _ in range(6):
        tick = sensor_tick(sessions, resource, instance)
        if isinstance(tick, dg.SensorResult):
            for request in tick.run_requests:
                run_tags = {**(tags or {}), **(request.tags or {})}
                run = run_in_process(
                    sessions, resource, instance, request.asset_selection, tags=run_tags
                )
                assert run.success


@pytest.fixture
def rendered(sessions, resource, fake_elevenlabs, fake_heygen, fake_veo):
    """The pipeline rendered once: its ids, and a Dagster instance that saw it."""
    fake_heygen.jobs.steps = 1
    fake_veo.jobs.steps = 1
    ids = add_pipeline(sessions, name="reuse", nodes=NODES, config={"budget": 50})
    with dg.instance_for_test() as instance:
        _run_to_completion(sessions, resource, instance, list(_keys(sessions, ids).values()))
        nodes = all_nodes(sessions, ids["pipeline"])
        assert {row.status for row in nodes.values()} == {"completed"}
        assert pipeline_row(sessions, ids["pipeline"]).metadata_["totalCost"] > 0
        yield ids, instance


def test_a_second_run_calls_no_provider_renders_nothing_and_costs_nothing(
    sessions, resource, rendered, fake_elevenlabs, fake_heygen, fake_veo
) -> None:
    ids, instance = rendered
    fakes = (fake_elevenlabs, fake_heygen, fake_veo)
    before = all_nodes(sessions, ids["pipeline"])
    calls, stored = _provider_calls(*fakes), _stored(resource)
    spent = pipeline_row(sessions, ids["pipeline"]).metadata_["totalCost"]

    result = run_in_process(sessions, resource, instance, list(_keys(sessions, ids).values()))
    assert result.success

    assert _provider_calls(*fakes) == calls
    assert _stored(resource) == stored  # no render wrote a file: no FFmpeg, no provider
    after = all_nodes(sessions, ids["pipeline"])
    assert pipeline_row(sessions, ids["pipeline"]).metadata_["totalCost"] == pytest.approx(spent)
    for name in NAMES:
        row, old = after[ids[name]], before[ids[name]]
        assert row.status == "completed", name
        assert row.metadata_["dagster_run_id"] == result.run_id
        assert row.metadata_["reused_from"] == {
            "node_uuid": row.uuid,
            "pipeline_uuid": ids["pipeline"],
            "title": name,
            "process_uuid": old.metadata_["process_uuid"],
            "saved_usd": pytest.approx(float(old.output.get("cost") or 0.0)),
        }
        assert row.output["s3_key"] == old.output["s3_key"]
        assert row.output["cost"] == 0
        assert row.output_signature == old.output_signature == row.output["signature"]
    events = {e.asset_key: e for e in result.get_asset_materialization_events()}
    assert set(events) == set(_keys(sessions, ids).values())  # reported to Dagster as usual
    talking = events[_keys(sessions, ids)["talking"]].materialization.metadata
    assert talking["cost (USD)"].value == 0
    assert talking["reused_from"].value["node_uuid"] == ids["talking"]


def test_a_copy_with_one_changed_merge_renders_only_that_merge(
    sessions, resource, rendered, fake_elevenlabs, fake_heygen, fake_veo
) -> None:
    ids, instance = rendered
    fakes = (fake_elevenlabs, fake_heygen, fake_veo)
    calls, stored = _provider_calls(*fakes), _stored(resource)
    changed = [
        NodeRow("merge", "merge-videos", inputs={"segments": ["animation", "mix"]})
        if node.name == "merge"
        else node
        for node in NODES
    ]
    copy = add_pipeline(sessions, name="reuse copy", nodes=changed)

    result = run_in_process(sessions, resource, instance, list(_keys(sessions, copy).values()))
    assert result.success

    assert _provider_calls(*fakes) == calls
    new_files = sorted(set(_stored(resource)) - set(stored))
    assert [p.parent.name for p in new_files] == [copy["merge"]]
    nodes = all_nodes(sessions, copy["pipeline"])
    for name in NAMES:
        row = nodes[copy[name]]
        assert row.status == "completed", name
        source = row.metadata_.get("reused_from")
        if name == "merge":
            assert source is None
            assert row.output["duration"] > 0
        else:
            assert source["pipeline_uuid"] == ids["pipeline"], name
            assert source["node_uuid"] == ids[name]
    assert pipeline_row(sessions, copy["pipeline"]).metadata_["totalCost"] == 0


def test_force_renders_again(
    sessions, resource, rendered, fake_elevenlabs, fake_heygen, fake_veo
) -> None:
    ids, instance = rendered
    before = all_nodes(sessions, ids["pipeline"])[ids["voiceover"]]
    tts = len(fake_elevenlabs.requests)
    key = _keys(sessions, ids)["voiceover"]

    result = run_in_process(sessions, resource, instance, [key], tags={FORCE_TAG: "true"})
    assert result.success

    assert len(fake_elevenlabs.requests) == tts + 1
    row = all_nodes(sessions, ids["pipeline"])[ids["voiceover"]]
    assert "reused_from" not in row.metadata_
    assert row.output["s3_key"] != before.output["s3_key"]
    assert row.output["cost"] > 0
    # the signature comes from the inputs, not the bytes: the same work, the same signature
    assert row.output_signature == before.output_signature


def test_a_changed_upstream_changes_the_signature_of_everything_downstream(
    sessions, resource, rendered, fake_elevenlabs, fake_heygen, fake_veo
) -> None:
    ids, instance = rendered
    before = all_nodes(sessions, ids["pipeline"])
    with sessions() as session, session.begin():
        session.execute(
            update(Node)
            .where(Node.id == uuid.UUID(ids["script"]))
            .values(asset={"type": "text", "content": SCRIPT + " Now with one more line."})
        )
    veo_calls = len(fake_veo.requests)

    _run_to_completion(sessions, resource, instance, list(_keys(sessions, ids).values()))

    after = all_nodes(sessions, ids["pipeline"])
    changed = {
        name
        for name in NAMES
        if after[ids[name]].output_signature != before[ids[name]].output_signature
    }
    assert changed == {"script", "voiceover", "talking", "mix", "merge"}
    assert after[ids["animation"]].metadata_["reused_from"]["node_uuid"] == ids["animation"]
    assert len(fake_veo.requests) == veo_calls
    for name in changed:
        assert "reused_from" not in after[ids[name]].metadata_, name
        assert after[ids[name]].output["s3_key"] != before[ids[name]].output["s3_key"]
