"""Node routes: bodies, 404s, update rules (replacement, status reset) and delete clean-up."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.api.conftest import BASE, MISSING_UUID, NODE_KEYS, error
from vidpipe_dagster.db.models import Node
from vidpipe_dagster.domain.lifecycle import Lifecycle

NODE_NOT_FOUND = error("not_found", "Node not found")
PIPELINE_NOT_FOUND = error("not_found", "Pipeline not found")


def test_create_returns_201_with_every_field(api, changes):
    pipeline = api.pipeline()
    script = api.node(pipeline, title="Script", asset={"source": "scripts/intro.txt"})
    fields = {
        "title": "Talking Head",
        "type": "talking-head",
        "inputs": {"script": [script["uuid"]]},
        "config": {"provider": "heygen", "avatarId": "avatar-1", "nested": {"k": [1, 2]}},
        "asset": {"source": "x.mp4", "type": "video"},
    }
    response = api.create_node(pipeline["uuid"], fields)
    assert response.status_code == 201
    assert set(response.json()) == {"node"}
    node = response.json()["node"]
    assert set(node) == NODE_KEYS
    uuid.UUID(node["uuid"])
    assert node["pipeline_uuid"] == pipeline["uuid"]
    assert {key: node[key] for key in fields} == fields
    assert node["status"] == "pending"
    assert node["metadata"] is None
    assert node["output"] is None
    created = datetime.fromisoformat(node["created_at"])
    assert created.tzinfo is not None
    assert abs(created - datetime.now(UTC)) < timedelta(minutes=5)
    assert datetime.fromisoformat(node["updated_at"]) >= created
    assert api.get_node(node) == node


def test_create_defaults(api):
    pipeline = api.pipeline()
    node = api.node(pipeline, title="Bare", type="merge-videos")
    assert (node["inputs"], node["config"], node["asset"]) == ({}, {}, None)
    nulls = api.node(
        pipeline, title="Nulls", type="merge-videos", inputs=None, config=None, asset=None
    )
    assert (nulls["inputs"], nulls["config"], nulls["asset"]) == ({}, {}, None)


def test_create_ignores_engine_columns_and_unknown_keys(api):
    pipeline = api.pipeline()
    response = api.create_node(
        pipeline["uuid"],
        {
            "title": "Sneaky",
            "type": "asset",
            "status": "completed",
            "metadata": {"process_uuid": "x"},
            "output": {"s3_key": "k"},
            "uuid": MISSING_UUID,
            "pipeline_uuid": MISSING_UUID,
        },
    )
    assert response.status_code == 201
    node = response.json()["node"]
    assert (node["status"], node["metadata"], node["output"]) == ("pending", None, None)
    assert node["uuid"] != MISSING_UUID
    assert node["pipeline_uuid"] == pipeline["uuid"]


def test_create_rejects_missing_fields(api, sessions, changes):
    pipeline = api.pipeline()
    before = changes.calls
    cases = [
        ({"type": "asset"}, "title: Field required"),
        ({"title": "T"}, "type: Field required"),
        ({}, "title: Field required, type: Field required"),
        ({"title": "", "type": "asset"}, "Title can't be blank"),
        ({"title": "  ", "type": "asset"}, "Title can't be blank"),
        ({"title": "T", "type": ""}, "Type can't be blank"),
        ({"title": "T", "type": "bogus"}, "Unknown node type: bogus"),
    ]
    for fields, message in cases:
        response = api.create_node(pipeline["uuid"], fields)
        assert response.status_code == 422, fields
        assert response.json() == error("validation_error", message)
    with sessions() as session:
        assert session.scalars(select(Node.id)).all() == []
    assert changes.calls == before


def test_list_nodes_in_creation_order(client, admin_headers, api):
    pipeline = api.pipeline()
    created = [api.node(pipeline, title=f"N{i}") for i in range(6)]
    api.node(api.pipeline("other"))
    response = client.get(f"{BASE}/{pipeline['uuid']}/nodes", headers=admin_headers)
    assert response.status_code == 200
    assert set(response.json()) == {"nodes"}
    nodes = response.json()["nodes"]
    assert [n["uuid"] for n in nodes] == [n["uuid"] for n in created]
    assert all(set(n) == NODE_KEYS for n in nodes)
    assert nodes == [api.get_node(n) for n in created]


def test_list_nodes_of_empty_pipeline(client, admin_headers, api):
    pipeline = api.pipeline()
    response = client.get(f"{BASE}/{pipeline['uuid']}/nodes", headers=admin_headers)
    assert (response.status_code, response.json()) == (200, {"nodes": []})


def test_unknown_pipeline_on_node_routes_is_404(client, admin_headers, api):
    node = api.node(api.pipeline())
    body = {"node": {"title": "T", "type": "asset"}}
    for value in (MISSING_UUID, "not-a-uuid", "%00", "1" * 40):
        calls = [
            ("GET", f"{BASE}/{value}/nodes", None),
            ("POST", f"{BASE}/{value}/nodes", body),
            ("GET", f"{BASE}/{value}/nodes/{node['uuid']}", None),
            ("PATCH", f"{BASE}/{value}/nodes/{node['uuid']}", body),
            ("DELETE", f"{BASE}/{value}/nodes/{node['uuid']}", None),
        ]
        for method, url, json in calls:
            response = client.request(method, url, json=json, headers=admin_headers)
            assert (response.status_code, response.json()) == (404, PIPELINE_NOT_FOUND), url
    assert api.get_node(node)["title"] == node["title"]


def test_unknown_node_is_404(client, admin_headers, api):
    pipeline = api.pipeline()
    other_pipeline = api.pipeline("other")
    foreign = api.node(other_pipeline, title="Foreign")
    values = [MISSING_UUID, "not-a-uuid", "%00", foreign["uuid"], pipeline["uuid"]]
    for value in values:
        url = f"{BASE}/{pipeline['uuid']}/nodes/{value}"
        for method, json in (("GET", None), ("PATCH", {"node": {"title": "X"}}), ("DELETE", None)):
            response = client.request(method, url, json=json, headers=admin_headers)
            assert (response.status_code, response.json()) == (404, NODE_NOT_FOUND), (
                method,
                value,
            )
    assert api.get_node(foreign)["title"] == "Foreign"


def test_update_returns_node_and_replaces_structure(api, changes):
    pipeline = api.pipeline()
    a = api.node(pipeline, title="A")
    b = api.node(pipeline, title="B")
    node = api.node(
        pipeline,
        title="Anim",
        type="generate-animation",
        inputs={"prompt": [a["uuid"]], "referenceImage": [b["uuid"]]},
        config={"provider": "veo3", "duration": 8},
        asset={"keep": True},
    )
    response = api.patch_node(
        node, {"inputs": {"prompt": [b["uuid"]]}, "config": {"duration": 4}, "asset": None}
    )
    assert response.status_code == 200
    assert set(response.json()) == {"node"}
    updated = response.json()["node"]
    assert set(updated) == NODE_KEYS
    assert updated["inputs"] == {"prompt": [b["uuid"]]}
    assert updated["config"] == {"duration": 4}
    assert updated["asset"] is None
    assert (updated["uuid"], updated["title"], updated["type"]) == (
        node["uuid"],
        "Anim",
        "generate-animation",
    )
    assert updated["created_at"] == node["created_at"]
    assert api.get_node(node) == updated


@pytest.fixture
def completed(api, set_row):
    """A completed mix-audio node with engine columns filled in, plus its two sources."""
    pipeline = api.pipeline()
    video = api.node(pipeline, title="Video")
    audio = api.node(pipeline, title="Audio")
    node = api.node(
        pipeline,
        title="Mix",
        type="mix-audio",
        inputs={"video": [video["uuid"]], "audio": [audio["uuid"]]},
        config={"provider": "ffmpeg", "gain": 1},
        asset={"hint": "a"},
    )
    set_row(
        node["uuid"],
        status="completed",
        metadata_={"completed_at": "2024-01-01T00:00:00Z", "cost": 0.5},
        output={"type": "video", "s3_key": "k.mp4", "size": 10, "duration": 1.5},
    )
    return {"node": node, "video": video, "audio": audio}


@pytest.mark.parametrize(
    "change",
    [
        lambda n: {"inputs": {"video": [n["audio"]["uuid"]], "audio": [n["video"]["uuid"]]}},
        lambda n: {"config": {"provider": "ffmpeg", "gain": 2}},
        lambda n: {"config": {}},
        lambda n: {"asset": {"hint": "b"}},
        lambda n: {"asset": None},
        lambda n: {"title": "Renamed", "config": {"provider": "ffmpeg"}},
    ],
    ids=[
        "inputs",
        "config",
        "config-empty",
        "asset",
        "asset-null",
        "title+config",
    ],
)
def test_structure_change_resets_to_pending(api, completed, change):
    node = completed["node"]
    fields = change(completed)
    response = api.patch_node(node, fields)
    assert response.status_code == 200, response.text
    updated = response.json()["node"]
    assert updated["status"] == "pending"
    for key, value in fields.items():
        assert updated[key] == value
    assert updated["output"] == {"type": "video", "s3_key": "k.mp4", "size": 10, "duration": 1.5}


@pytest.mark.parametrize(
    "fields",
    [
        lambda n: {"title": "Renamed only"},
        lambda n: {},
        lambda n: {"inputs": {"audio": [n["audio"]["uuid"]], "video": [n["video"]["uuid"]]}},
        lambda n: {"config": {"gain": 1, "provider": "ffmpeg"}},
        lambda n: {"asset": {"hint": "a"}},
        lambda n: {
            "title": "Same structure",
            "inputs": {"video": [n["video"]["uuid"]], "audio": [n["audio"]["uuid"]]},
            "config": {"provider": "ffmpeg", "gain": 1},
            "asset": {"hint": "a"},
        },
        lambda n: {"type": "merge-videos"},
        lambda n: {"status": "pending", "metadata": {}, "output": None},
    ],
    ids=[
        "title",
        "empty",
        "same-inputs",
        "same-config",
        "same-asset",
        "same-all",
        "type",
        "engine",
    ],
)
def test_unchanged_structure_keeps_status(api, completed, fields):
    node = completed["node"]
    sent = fields(completed)
    response = api.patch_node(node, sent)
    assert response.status_code == 200, response.text
    updated = response.json()["node"]
    assert updated["status"] == "completed"
    assert updated["type"] == "mix-audio"
    assert updated["metadata"] == {"completed_at": "2024-01-01T00:00:00Z", "cost": 0.5}
    assert updated["output"] == {"type": "video", "s3_key": "k.mp4", "size": 10, "duration": 1.5}
    assert updated["title"] == sent.get("title", "Mix")
    assert updated["inputs"] == {
        "video": [completed["video"]["uuid"]],
        "audio": [completed["audio"]["uuid"]],
    }
    assert api.get_node(node) == updated


def test_type_and_engine_columns_are_ignored_alongside_a_change(api, completed):
    node = completed["node"]
    response = api.patch_node(
        node,
        {
            "type": "asset",
            "title": "T2",
            "status": "completed",
            "metadata": {"x": 1},
            "output": {"s3_key": "other"},
        },
    )
    assert response.status_code == 200
    updated = response.json()["node"]
    assert (updated["type"], updated["title"], updated["status"]) == (
        "mix-audio",
        "T2",
        "completed",
    )
    assert updated["metadata"] == {"completed_at": "2024-01-01T00:00:00Z", "cost": 0.5}
    assert updated["output"]["s3_key"] == "k.mp4"


def test_update_rejects_nulls_and_blanks(api, completed, changes):
    before = changes.calls
    cases = [
        ({"title": None}, "Title can't be null"),
        ({"title": ""}, "Title can't be blank"),
        ({"inputs": None}, "Inputs can't be null"),
        ({"config": None}, "Config can't be null"),
        ({"title": "New", "config": None}, "Config can't be null"),
    ]
    for fields, message in cases:
        response = api.patch_node(completed["node"], fields)
        assert response.status_code == 422, fields
        assert response.json() == error("validation_error", message)
    current = api.get_node(completed["node"])
    assert (current["title"], current["status"], current["config"]) == (
        "Mix",
        "completed",
        {"provider": "ffmpeg", "gain": 1},
    )
    assert changes.calls == before


def test_structure_update_supersedes_running_execution(api, sessions):
    pipeline = api.pipeline()
    node = api.node(pipeline, title="Voice", type="generate-voiceover", config={"voice": "a"})
    lifecycle = Lifecycle(sessions)
    process_uuid = lifecycle.started(node["uuid"], {"stage": "submitted"})
    assert api.get_node(node)["status"] == "in_progress"

    response = api.patch_node(node, {"config": {"voice": "b"}})
    assert response.status_code == 200
    updated = response.json()["node"]
    assert updated["status"] == "pending"
    assert updated["metadata"].get("process_uuid") != process_uuid

    output = {"type": "audio", "s3_key": "late.mp3", "size": 1, "duration": 1.0}
    assert lifecycle.succeeded(node["uuid"], output, process_uuid) is False
    after = api.get_node(node)
    assert (after["status"], after["output"]) == ("pending", None)


def test_title_update_keeps_running_execution(api, sessions):
    pipeline = api.pipeline()
    node = api.node(pipeline, title="Voice", type="generate-voiceover")
    lifecycle = Lifecycle(sessions)
    process_uuid = lifecycle.started(node["uuid"])
    response = api.patch_node(node, {"title": "Voice 2"})
    assert response.status_code == 200
    assert response.json()["node"]["status"] == "in_progress"
    output = {"type": "audio", "s3_key": "on-time.mp3", "size": 1, "duration": 1.0}
    assert lifecycle.succeeded(node["uuid"], output, process_uuid) is True
    assert api.get_node(node)["status"] == "completed"


@pytest.fixture
def graph(api, set_row):
    """Three assets, a merge and a mix over them, and a row with string-valued slots."""
    pipeline = api.pipeline()
    a, b, c = (api.node(pipeline, title=name) for name in "ABC")
    merge = api.node(
        pipeline,
        title="Merge",
        type="merge-videos",
        inputs={"segments": [a["uuid"], b["uuid"], a["uuid"], c["uuid"]]},
    )
    mix = api.node(
        pipeline,
        title="Mix",
        type="mix-audio",
        inputs={"video": [a["uuid"]], "audio": [b["uuid"]]},
    )
    legacy = api.node(pipeline, title="Legacy", type="generate-animation")
    set_row(merge["uuid"], status="completed")
    set_row(mix["uuid"], status="failed")
    set_row(
        legacy["uuid"],
        status="completed",
        inputs={"prompt": a["uuid"], "referenceImage": [c["uuid"], a["uuid"]], "note": "keep"},
    )
    return {
        "pipeline": pipeline,
        "a": a,
        "b": b,
        "c": c,
        "merge": merge,
        "mix": mix,
        "legacy": legacy,
    }


def test_delete_node_cleans_references(api, graph, changes):
    before = changes.calls
    response = api.delete_node(graph["a"])
    assert response.status_code == 204
    assert response.content == b""
    assert changes.calls == before + 1

    merge = api.get_node(graph["merge"])
    assert merge["inputs"] == {"segments": [graph["b"]["uuid"], graph["c"]["uuid"]]}
    assert merge["status"] == "completed"
    mix = api.get_node(graph["mix"])
    assert mix["inputs"] == {"video": [], "audio": [graph["b"]["uuid"]]}
    assert mix["status"] == "failed"
    legacy = api.get_node(graph["legacy"])
    assert legacy["inputs"] == {"referenceImage": [graph["c"]["uuid"]], "note": "keep"}
    assert legacy["status"] == "completed"
    untouched = api.get_node(graph["b"])
    assert untouched["inputs"] == {}

    missing = api.client.get(
        f"{BASE}/{graph['pipeline']['uuid']}/nodes/{graph['a']['uuid']}", headers=api.headers
    )
    assert (missing.status_code, missing.json()) == (404, NODE_NOT_FOUND)
    again = api.delete_node(graph["a"])
    assert (again.status_code, again.json()) == (404, NODE_NOT_FOUND)
    assert changes.calls == before + 1


def test_delete_node_leaves_other_pipelines_alone(api, graph, set_row):
    other = api.pipeline("other")
    stranger = api.node(other, title="Stranger", type="merge-videos")
    foreign_inputs = {"segments": [graph["a"]["uuid"], graph["b"]["uuid"]]}
    set_row(stranger["uuid"], inputs=foreign_inputs, status="completed")
    odd = api.node(other, title="Odd", type="talking-head")
    set_row(odd["uuid"], inputs={"script": graph["a"]["uuid"]})

    assert api.delete_node(graph["a"]).status_code == 204
    assert api.get_node(stranger)["inputs"] == foreign_inputs
    assert api.get_node(stranger)["status"] == "completed"
    assert api.get_node(odd)["inputs"] == {"script": graph["a"]["uuid"]}


def test_delete_unreferenced_node_changes_no_other_node(api, graph):
    before = {key: api.get_node(graph[key]) for key in ("merge", "mix", "legacy", "a")}
    extra = api.node(graph["pipeline"], title="Lonely")
    assert api.delete_node(extra).status_code == 204
    assert {key: api.get_node(graph[key]) for key in before} == before


def test_deleting_node_in_another_pipeline_path_is_404(api, graph):
    other = api.pipeline("other")
    response = api.client.delete(
        f"{BASE}/{other['uuid']}/nodes/{graph['a']['uuid']}", headers=api.headers
    )
    assert (response.status_code, response.json()) == (404, NODE_NOT_FOUND)
    assert api.get_node(graph["a"])["uuid"] == graph["a"]["uuid"]
    assert api.get_node(graph["merge"])["inputs"]["segments"][0] == graph["a"]["uuid"]
