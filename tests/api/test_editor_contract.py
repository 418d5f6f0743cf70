"""The admin editor's own call sequences against both generations of the contract.

``tests.fixtures.editor_client`` replays the editor's REST client (bodies, paths, the
fields it reads). Under ``VIDPIPE_API_CONTRACT=editor`` every node it creates is stored (a
draft when incomplete), single slots hold UUID strings, and execute answers as the later
Rails did; under ``seed`` the same calls get the seed's answers.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from tests.api.conftest import NODE_KEYS, make_token
from tests.fixtures.editor_client import DEFAULT_CONFIG, DEFAULT_INPUTS, ApiError, EditorClient
from vidpipe_dagster.resources.storage import LocalStorage
from vidpipe_dagster.settings import Settings

EDITOR_TYPES = list(DEFAULT_INPUTS)
DRAFT_ERRORS = {
    "asset": {},
    "generate-talking-head": {
        "config": {"voiceId": ["is required for generate-talking-head nodes"]}
    },
    "generate-animation": {},
    "generate-voiceover": {},
    "render-code": {},
    "mix-audio": {
        "inputs": {
            "video": ["is required for mix-audio nodes"],
            "audio": ["is required for mix-audio nodes"],
        }
    },
    "merge-videos": {"inputs": {"segments": ["is required for merge-videos nodes"]}},
    "compose-video": {
        "inputs": {
            "background": ["is required for compose-video nodes"],
            "overlay": ["is required for compose-video nodes"],
        }
    },
}


@pytest.fixture
def storage(tmp_path) -> LocalStorage:
    return LocalStorage(tmp_path / "media")


def _client(sessions, storage, contract: str) -> Iterator[TestClient]:
    settings = Settings(api_contract=contract, media_signing_key="test-media-key")
    app = create_app(
        settings=settings,
        sessions=sessions,
        notify_change=lambda _uuid: None,
        storage=lambda: storage,
    )
    token = make_token(sessions, admin=True)
    with TestClient(
        app, headers={"Authorization": f"Bearer {token}"}, raise_server_exceptions=False
    ) as client:
        yield client


@pytest.fixture
def editor_http(sessions, storage) -> Iterator[TestClient]:
    yield from _client(sessions, storage, "editor")


@pytest.fixture
def seed_http(sessions, storage) -> Iterator[TestClient]:
    yield from _client(sessions, storage, "seed")


@pytest.fixture
def editor(editor_http) -> EditorClient:
    return EditorClient(editor_http)


@pytest.fixture
def seed(seed_http) -> EditorClient:
    return EditorClient(seed_http)


def _pipeline(client: EditorClient, title: str = "Lesson 1") -> str:
    body = client.create_pipeline({"title": title, "config": {}})
    return body["pipeline"]["uuid"]


def test_editor_creates_every_node_type_with_its_defaults(editor) -> None:
    pipeline = _pipeline(editor)
    created = []
    for node_type in EDITOR_TYPES:
        node = editor.create_node(
            pipeline, node_type, existing=created, asset="text" if node_type == "asset" else None
        )
        created.append(node)
        assert set(node) == NODE_KEYS
        assert node["type"] == node_type
        assert node["inputs"] == DEFAULT_INPUTS[node_type]
        assert node["config"] == DEFAULT_CONFIG[node_type]
        assert node["status"] == "pending"
        assert node["validation_errors"] == DRAFT_ERRORS[node_type], node_type
        assert node["is_valid"] is (DRAFT_ERRORS[node_type] == {})
    second = editor.create_node(pipeline, "merge-videos", existing=created)
    assert second["title"] == "Video Merge 2"

    listed = editor.get_pipeline(pipeline)
    assert [n["type"] for n in listed["nodes"]] == [*EDITOR_TYPES, "merge-videos"]
    assert listed["pipeline"]["uuid"] == pipeline
    assert [n["validation_errors"] for n in listed["nodes"][:-1]] == [
        DRAFT_ERRORS[t] for t in EDITOR_TYPES
    ]
    page = editor.get_pipelines(page=1, per=25)
    assert page["meta"] == {"current_page": 1, "total_count": 1, "total_pages": 1}
    assert page["results"][0]["uuid"] == pipeline


def test_connect_reorder_and_disconnect_single_and_multiple_slots(editor) -> None:
    pipeline = _pipeline(editor)
    clips = [editor.create_node(pipeline, "asset", asset="video") for _ in range(3)]
    a, b, c = (clip["uuid"] for clip in clips)
    script = editor.create_node(pipeline, "asset", asset="text")
    voice = editor.create_node(pipeline, "generate-voiceover")
    mix = editor.create_node(pipeline, "mix-audio")
    merge = editor.create_node(pipeline, "merge-videos")

    editor.connect_nodes(pipeline, script["uuid"], voice["uuid"], "script")
    voiced = editor.get_node(pipeline, voice["uuid"])
    assert voiced["inputs"] == {"script": script["uuid"]}
    assert (voiced["is_valid"], voiced["validation_errors"]) == (True, {})

    editor.connect_nodes(pipeline, a, merge["uuid"], "segments")
    one = editor.get_node(pipeline, merge["uuid"])
    assert one["inputs"] == {"segments": [a]}
    assert one["validation_errors"] == {
        "inputs": {"segments": ["requires at least 2 items, got 1"]}
    }
    editor.connect_nodes(pipeline, b, merge["uuid"], "segments")
    editor.connect_nodes(pipeline, c, merge["uuid"], "segments")
    editor.connect_nodes(pipeline, c, merge["uuid"], "segments")
    assert editor.get_node(pipeline, merge["uuid"])["inputs"] == {"segments": [a, b, c]}
    editor.reorder_node_inputs(pipeline, merge["uuid"], "segments", [c, a, b])
    reordered = editor.get_node(pipeline, merge["uuid"])
    assert (reordered["inputs"], reordered["is_valid"]) == ({"segments": [c, a, b]}, True)
    editor.disconnect_nodes(pipeline, a, merge["uuid"], "segments")
    assert editor.get_node(pipeline, merge["uuid"])["inputs"] == {"segments": [c, b]}

    editor.connect_nodes(pipeline, a, mix["uuid"], "video")
    editor.connect_nodes(pipeline, voice["uuid"], mix["uuid"], "audio")
    wired = editor.get_node(pipeline, mix["uuid"])
    assert wired["inputs"] == {"video": a, "audio": voice["uuid"]}
    assert (wired["is_valid"], wired["validation_errors"]) == (True, {})
    editor.disconnect_nodes(pipeline, voice["uuid"], mix["uuid"], "audio")
    unwired = editor.get_node(pipeline, mix["uuid"])
    assert unwired["inputs"] == {"video": a}
    assert unwired["validation_errors"] == {
        "inputs": {"audio": ["is required for mix-audio nodes"]}
    }


def test_drafts_store_whatever_the_editor_sends(editor) -> None:
    pipeline = _pipeline(editor)
    clip = editor.create_node(pipeline, "asset", asset="video")
    mix = editor.create_node(pipeline, "mix-audio")
    missing = "00000000-0000-4000-8000-000000000001"
    draft = editor.update_node(
        pipeline,
        mix["uuid"],
        {
            "inputs": {"video": [clip["uuid"]], "audio": missing, "extra": ""},
            "config": {"provider": "sox", "audioVolume": 0.5},
        },
    )
    assert draft["inputs"] == {"video": [clip["uuid"]], "audio": missing, "extra": ""}
    assert draft["is_valid"] is False
    assert draft["validation_errors"] == {
        "inputs": {
            "unexpected_inputs": ["Unexpected input slot(s): extra"],
            "video": ["must be a single node UUID (string), not an array"],
            "audio": [f"references non-existent nodes: {missing}"],
        },
        "config": {"provider": ["must be one of: ffmpeg"]},
    }

    head = editor.create_node(pipeline, "generate-talking-head")
    full = {**head, "config": {**head["config"], "voiceId": 7}, "status": "completed"}
    updated = editor.update_node(pipeline, head["uuid"], full)
    assert updated["status"] == "pending" and updated["type"] == "generate-talking-head"
    assert updated["validation_errors"] == {"config": {"voiceId": ["must be a string"]}}
    fixed = editor.update_node(
        pipeline, head["uuid"], {"config": {**head["config"], "voiceId": "v1"}}
    )
    assert (fixed["is_valid"], fixed["validation_errors"]) == (True, {})

    with pytest.raises(ApiError) as refused:
        editor._call(
            "POST",
            f"/admin/video_production/pipelines/{pipeline}/nodes",
            {"node": {"type": "generate-hologram", "title": "H", "inputs": {}, "config": {}}},
        )
    assert refused.value.status == 422
    assert refused.value.data["error"]["message"] == "Unknown node type: generate-hologram"


def test_delete_cleans_string_and_array_references(editor) -> None:
    pipeline = _pipeline(editor)
    a, b = (editor.create_node(pipeline, "asset", asset="video")["uuid"] for _ in range(2))
    mix = editor.create_node(pipeline, "mix-audio")["uuid"]
    merge = editor.create_node(pipeline, "merge-videos")["uuid"]
    editor.connect_nodes(pipeline, a, mix, "video")
    editor.connect_nodes(pipeline, b, mix, "audio")
    editor.connect_nodes(pipeline, a, merge, "segments")
    editor.connect_nodes(pipeline, b, merge, "segments")

    editor.delete_node(pipeline, a)

    nodes = {n["uuid"]: n for n in editor.get_pipeline(pipeline)["nodes"]}
    assert a not in nodes
    assert nodes[mix]["inputs"] == {"audio": b}
    assert nodes[merge]["inputs"] == {"segments": [b]}
    assert nodes[merge]["validation_errors"] == {
        "inputs": {"segments": ["requires at least 2 items, got 1"]}
    }


def test_execute_refuses_what_is_not_ready_in_the_editors_words(editor, set_row) -> None:
    pipeline = _pipeline(editor)
    clip = editor.create_node(pipeline, "asset", asset="video")["uuid"]
    mix = editor.create_node(pipeline, "mix-audio")["uuid"]
    with pytest.raises(ApiError) as draft:
        editor.execute_node(pipeline, mix)
    assert draft.value.status == 422
    assert draft.value.data == {
        "error": "Node is not ready to execute: Node has validation errors: "
        "video: is required for mix-audio nodes; audio: is required for mix-audio nodes"
    }

    editor.connect_nodes(pipeline, clip, mix, "video")
    editor.connect_nodes(pipeline, clip, mix, "audio")
    with pytest.raises(ApiError) as waiting:
        editor.execute_node(pipeline, mix)
    assert waiting.value.data == {
        "error": "Node is not ready to execute: Input nodes are not all completed"
    }

    set_row(mix, status="completed")
    with pytest.raises(ApiError) as done:
        editor.execute_node(pipeline, mix)
    assert done.value.data == {
        "error": "Node is not ready to execute: Node must be in 'pending' or 'failed' status, "
        "Input nodes are not all completed"
    }

    set_row(mix, status="in_progress")
    with pytest.raises(ApiError) as running:
        editor.execute_node(pipeline, mix)
    assert running.value.status == 409
    assert running.value.data["error"]["message"].startswith("Node 'Audio Mix' is already running")


def test_output_keys_are_camel_case_and_the_media_is_fetchable(
    editor, editor_http, storage, set_row
) -> None:
    pipeline = _pipeline(editor)
    node = editor.create_node(pipeline, "asset", asset="text")["uuid"]
    url = f"/v1/admin/video_production/pipelines/{pipeline}/nodes/{node}/output"
    empty = editor_http.get(url, follow_redirects=False)
    assert (empty.status_code, empty.json()) == (422, {"error": "Node has no output available"})

    key = f"pipelines/{pipeline}/nodes/{node}/p1.txt"
    storage.put_bytes(key, b"Hello", content_type="text/plain")
    set_row(
        node,
        status="completed",
        output={"type": "text", "s3_key": key, "size": 5, "content_type": "text/plain"},
        metadata_={"process_uuid": "p1", "started_at": "2026-12-01T08:00:00Z"},
    )
    read = editor.get_node(pipeline, node)
    assert read["output"] == {"type": "text", "s3Key": key, "size": 5, "contentType": "text/plain"}
    assert read["metadata"] == {"process_uuid": "p1", "started_at": "2026-12-01T08:00:00Z"}

    redirect = editor_http.get(url, follow_redirects=False)
    assert redirect.status_code == 302
    location = redirect.headers["location"]
    assert location.startswith("http://testserver/v1/media/")
    media = editor_http.get(location, headers={"Authorization": ""})
    assert (media.status_code, media.content) == (200, b"Hello")


def test_a_row_of_unknown_type_reports_invalid_type(editor, set_row) -> None:
    pipeline = _pipeline(editor)
    node = editor.create_node(pipeline, "asset", asset="text")["uuid"]
    set_row(node, type="generate-hologram")
    read = editor.get_node(pipeline, node)
    assert (read["is_valid"], read["validation_errors"]) == (
        False,
        {"invalid_type": "Unknown node type: generate-hologram"},
    )


def test_the_seed_generation_answers_the_editors_calls_as_the_seed_did(seed, set_row) -> None:
    pipeline = _pipeline(seed)
    text = seed.create_node(pipeline, "asset", asset="text")
    assert (text["is_valid"], text["validation_errors"]) == (True, {})
    answers = {}
    for node_type in ("generate-talking-head", "generate-voiceover", "merge-videos", "mix-audio"):
        with pytest.raises(ApiError) as refused:
            seed.create_node(pipeline, node_type)
        answers[node_type] = (refused.value.status, refused.value.data["error"]["message"])
    assert answers == {
        "generate-talking-head": (422, "Unknown node type: generate-talking-head"),
        "generate-voiceover": (422, "Input 'script' must be an array for generate-voiceover nodes"),
        "merge-videos": (422, "Input 'segments' is required for merge-videos nodes"),
        "mix-audio": (
            422,
            "Input 'video' must be an array for mix-audio nodes, "
            "Input 'audio' must be an array for mix-audio nodes",
        ),
    }

    clips = [seed.create_node(pipeline, "asset", asset="video")["uuid"] for _ in range(3)]
    merge = seed._call(
        "POST",
        f"/admin/video_production/pipelines/{pipeline}/nodes",
        {"node": {"type": "merge-videos", "title": "Merge", "inputs": {}, "config": {}}},
    )["node"]
    assert merge["validation_errors"] == {
        "inputs": {"segments": ["Input 'segments' is required for merge-videos nodes"]}
    }
    assert merge["is_valid"] is False
    with pytest.raises(ApiError) as single:
        seed.connect_nodes(pipeline, clips[0], merge["uuid"], "segments")
    assert single.value.data["error"]["message"] == (
        "Input 'segments' must be an array for merge-videos nodes"
    )
    seed.update_node(pipeline, merge["uuid"], {"inputs": {"segments": clips[:2]}})
    seed.connect_nodes(pipeline, clips[2], merge["uuid"], "segments")
    seed.reorder_node_inputs(pipeline, merge["uuid"], "segments", clips[::-1])
    seed.disconnect_nodes(pipeline, clips[1], merge["uuid"], "segments")
    ordered = seed.get_node(pipeline, merge["uuid"])
    assert (ordered["inputs"], ordered["is_valid"]) == ({"segments": [clips[2], clips[0]]}, True)

    voice = seed._call(
        "POST",
        f"/admin/video_production/pipelines/{pipeline}/nodes",
        {"node": {"type": "generate-voiceover", "title": "Voice", "inputs": {}, "config": {}}},
    )["node"]
    set_row(voice["uuid"], inputs={"script": text["uuid"]})
    stored = seed.get_node(pipeline, voice["uuid"])
    assert (stored["inputs"], stored["is_valid"]) == ({"script": text["uuid"]}, True)
    seed.delete_node(pipeline, text["uuid"])
    assert seed.get_node(pipeline, voice["uuid"])["inputs"] == {}
