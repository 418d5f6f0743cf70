"""The launcher targets the code location that compiles the pipeline (its shard's)."""

from __future__ import annotations

import json

import httpx
import pytest

from vidpipe_dagster.db.snapshot import shard_of
from vidpipe_dagster.domain.naming import PipelineNames
from vidpipe_dagster.runs.launcher import DagsterLauncher
from vidpipe_dagster.settings import Settings

PIPELINES = [
    "00000000-0000-4000-8000-000000000000",
    "00000000-0000-4000-8000-000000000001",
    "00000000-0000-4000-8000-000000000002",
    "9f1c1f37-9a53-4a4e-9d0e-5b0f4f1d2c1f",
]


def recording_launcher(settings: Settings) -> tuple[DagsterLauncher, list[dict]]:
    """A launcher whose GraphQL endpoint records each request and accepts the run."""
    sent: list[dict] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        run = {"__typename": "LaunchRunSuccess", "run": {"runId": f"run-{len(sent)}"}}
        return httpx.Response(200, json={"data": {"launchRun": run}})

    client = httpx.Client(transport=httpx.MockTransport(answer))
    return DagsterLauncher(settings=settings, client=client), sent


@pytest.mark.parametrize("pipeline_uuid", PIPELINES)
def test_sharded_launch_targets_the_pipeline_shard(pipeline_uuid: str) -> None:
    launcher, sent = recording_launcher(Settings(dagster_location="vidpipe", dagster_shards=3))
    node = "11111111-2222-4333-8444-555555555555"

    names = PipelineNames(
        pipeline_uuid=pipeline_uuid, title="Launch", group="launch", nodes={node: "clip"}
    )
    run_id = launcher.launch(
        pipeline_uuid=pipeline_uuid, node_uuids=[node], tags={"a": "b"}, names=names
    )

    assert run_id == "run-1"
    selector = sent[0]["variables"]["executionParams"]["selector"]
    shard = int(pipeline_uuid.replace("-", ""), 16) % 3
    assert shard == shard_of(pipeline_uuid, 3)
    assert selector["repositoryLocationName"] == f"vidpipe_{shard}"
    assert selector["assetSelection"] == [{"path": ["launch", "clip"]}]


def test_unsharded_launch_targets_the_one_location() -> None:
    launcher, sent = recording_launcher(Settings(dagster_location="studio"))
    names = PipelineNames(pipeline_uuid=PIPELINES[1], title="Studio", group="studio")
    launcher.launch(pipeline_uuid=PIPELINES[1], node_uuids=[PIPELINES[0]], names=names)
    selector = sent[0]["variables"]["executionParams"]["selector"]
    assert selector["repositoryLocationName"] == "studio"


def test_shards_spread_pipelines_over_every_location() -> None:
    launcher, _ = recording_launcher(Settings(dagster_location="vidpipe", dagster_shards=3))
    assert {launcher.location_for(p) for p in PIPELINES} == {"vidpipe_0", "vidpipe_1", "vidpipe_2"}


def test_change_notification_reloads_every_shard_location(monkeypatch) -> None:
    from vidpipe_dagster.runs import reload

    reloaded: list[str] = []
    reloader = reload.Reloader(
        debounce_seconds=0.01, reload=lambda **kwargs: reloaded.append(kwargs["location"])
    )
    monkeypatch.setattr(reload, "_reloader", reloader)

    reload.request_reload(Settings(dagster_location="vidpipe", dagster_shards=3))
    assert reloader.wait_idle(timeout=10)
    assert sorted(reloaded) == ["vidpipe_0", "vidpipe_1", "vidpipe_2"]

    reloaded.clear()
    reload.request_reload(Settings(dagster_location="vidpipe"))
    assert reloader.wait_idle(timeout=10)
    assert reloaded == ["vidpipe"]


@pytest.mark.parametrize("pipeline_uuid", PIPELINES)
def test_a_pipeline_change_reloads_only_its_shard(monkeypatch, pipeline_uuid: str) -> None:
    from vidpipe_dagster.runs import reload

    reloaded: list[str] = []
    reloader = reload.Reloader(
        debounce_seconds=0.01, reload=lambda **kwargs: reloaded.append(kwargs["location"])
    )
    monkeypatch.setattr(reload, "_reloader", reloader)

    settings = Settings(dagster_location="vidpipe", dagster_shards=3)
    reload.request_reload(settings, pipeline_uuid=pipeline_uuid)
    assert reloader.wait_idle(timeout=10)
    assert reloaded == [f"vidpipe_{shard_of(pipeline_uuid, 3)}"]
    # and the launcher sends that pipeline's runs to the same location
    assert DagsterLauncher(settings=settings).location_for(pipeline_uuid) == reloaded[0]

    reloaded.clear()
    reload.request_reload(Settings(dagster_location="vidpipe"), pipeline_uuid=pipeline_uuid)
    assert reloader.wait_idle(timeout=10)
    assert reloaded == ["vidpipe"]
