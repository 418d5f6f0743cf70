"""Rows as the admin editor writes them run, and invalid rows never do, whatever wrote them.

The editor generation (``VIDPIPE_API_CONTRACT=editor``) stores drafts and single slots as
UUID strings, and the editor may also write the tables directly. The compiled graph keeps
automation off drafts, and materializing a draft fails it with its problems instead of
running it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lambdas.ffmpeg import probe
from tests.dagster.builders import NodeRow, add_pipeline
from tests.dagster.test_materialize import rows, run_nodes
from tests.fixtures.editor_client import DEFAULT_CONFIG, default_asset
from vidpipe_dagster.assets.asset_keys import key_of
from vidpipe_dagster.db.snapshot import take_snapshot
from vidpipe_dagster.orchestration.compiler import compile_snapshot
from vidpipe_dagster.settings import get_settings


@pytest.fixture
def editor_contract(monkeypatch) -> Iterator[None]:
    """The process settings with ``VIDPIPE_API_CONTRACT=editor``."""
    monkeypatch.setenv("VIDPIPE_API_CONTRACT", "editor")
    get_settings.cache_clear()
    yield
    monkeypatch.delenv("VIDPIPE_API_CONTRACT")
    get_settings.cache_clear()


def _config(node_type: str, **extra) -> dict:
    return {**DEFAULT_CONFIG[node_type], **extra}


EDITOR_DEMO = [
    NodeRow("script", "asset", asset={"type": "text", "content": "Hello from the editor."}),
    NodeRow("voiceover", "generate-voiceover", {"script": "script"}, _config("generate-voiceover")),
    NodeRow(
        "talking",
        "generate-talking-head",
        {"script": "script"},
        _config("generate-talking-head", voiceId="v1"),
    ),
    NodeRow("snippet", "asset", asset=default_asset("json")),
    NodeRow("code", "render-code", {"config": "snippet"}, _config("render-code", duration=1)),
    NodeRow(
        "animation",
        "generate-animation",
        {"prompt": "script", "referenceImage": ""},
        _config("generate-animation", duration=1),
    ),
    NodeRow("merge", "merge-videos", {"segments": ["code", "animation"]}, _config("merge-videos")),
    NodeRow("mix", "mix-audio", {"video": "merge", "audio": "voiceover"}, _config("mix-audio")),
    NodeRow(
        "compose",
        "compose-video",
        {"background": "mix", "overlay": "talking"},
        _config("compose-video"),
    ),
]


def test_the_editors_demo_rows_materialize_end_to_end(sessions, resource, editor_contract):
    ids = add_pipeline(sessions, name="editor-demo", nodes=EDITOR_DEMO)
    keys = [
        key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids[n.name]) for n in EDITOR_DEMO
    ]

    result, events = run_nodes(sessions, resource, keys)

    assert result.success
    assert {event.asset_key for event in events} == set(keys)
    _, nodes = rows(sessions, ids["pipeline"])
    assert {node.title: node.status for node in nodes.values()} == {
        n.name: "completed" for n in EDITOR_DEMO
    }
    assert nodes[ids["talking"]].type == "generate-talking-head"
    final = nodes[ids["compose"]].output
    media = resource.storage().uri_for(final["s3_key"]).removeprefix("file://")
    assert probe(media).duration > 0


def test_a_draft_is_never_run_and_automation_leaves_it_alone(sessions, resource, editor_contract):
    ids = add_pipeline(
        sessions,
        name="drafts",
        nodes=[
            NodeRow("clip", "asset", asset={"type": "text", "content": "ok"}),
            NodeRow("mix", "mix-audio", {"video": "clip", "audio": ""}, _config("mix-audio")),
        ],
    )
    with sessions() as session:
        snapshot = take_snapshot(session)
    compiled = compile_snapshot(snapshot, only=[ids["pipeline"]], automation=True)
    specs = {spec.key: spec for assets in compiled.assets for spec in assets.specs}
    clip_key = key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids["clip"])
    mix_key = key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids["mix"])
    assert specs[clip_key].automation_condition is not None
    assert specs[mix_key].automation_condition is None

    result, events = run_nodes(sessions, resource, [clip_key, mix_key])

    assert not result.success
    assert [event.asset_key for event in events] == [clip_key]
    _, nodes = rows(sessions, ids["pipeline"])
    mix = nodes[ids["mix"]]
    assert mix.status == "failed"
    assert mix.metadata_["error"] == (
        f"Node 'mix' ({ids['mix']}) is not valid, so it was not run: "
        "audio: is required for mix-audio nodes; fix the node in the editor and run it again."
    )
    assert mix.output is None


def test_a_seed_row_written_directly_is_checked_too(sessions, resource) -> None:
    ids = add_pipeline(
        sessions,
        name="seed-direct",
        nodes=[NodeRow("merge", "merge-videos", {"segments": ["merge-missing"]})],
    )
    key = key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids["merge"])
    with sessions() as session:
        snapshot = take_snapshot(session)
    assert ids["pipeline"] in compile_snapshot(snapshot, only=[ids["pipeline"]]).errors

    ids = add_pipeline(
        sessions,
        name="seed-short",
        nodes=[NodeRow("one", "asset"), NodeRow("merge", "merge-videos", {"segments": ["one"]})],
    )
    key = key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids["merge"])
    result, _ = run_nodes(sessions, resource, [key])
    assert not result.success
    _, nodes = rows(sessions, ids["pipeline"])
    assert nodes[ids["merge"]].status == "failed"
    assert (
        "Input 'segments' requires at least 2 item(s), got 1"
        in nodes[ids["merge"]].metadata_["error"]
    )


def test_a_draft_naming_a_missing_node_does_not_stop_its_pipeline(
    sessions, resource, editor_contract
) -> None:
    missing = "00000000-0000-4000-8000-00000000abcd"
    ids = add_pipeline(
        sessions,
        name="dangling-draft",
        nodes=[
            NodeRow("clip", "asset", asset={"type": "text", "content": "ok"}),
            NodeRow("mix", "mix-audio", {"video": "clip", "audio": missing}, _config("mix-audio")),
        ],
    )
    with sessions() as session:
        snapshot = take_snapshot(session)
    compiled = compile_snapshot(snapshot, only=[ids["pipeline"]])
    assert compiled.errors == {}
    clip_key = key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids["clip"])
    mix_key = key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids["mix"])
    specs = {spec.key: spec for assets in compiled.assets for spec in assets.specs}
    assert [dep.asset_key for dep in specs[mix_key].deps] == [clip_key]

    result, events = run_nodes(sessions, resource, [clip_key, mix_key])

    assert [event.asset_key for event in events] == [clip_key]
    _, nodes = rows(sessions, ids["pipeline"])
    assert nodes[ids["clip"]].status == "completed"
    assert nodes[ids["mix"]].status == "failed"
    assert (
        f"audio: references non-existent nodes: {missing}" in nodes[ids["mix"]].metadata_["error"]
    )
