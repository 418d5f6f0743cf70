"""Node input validation through the API: the seed's exact messages, order and scoping."""

from __future__ import annotations

import json

import pytest

from tests.api.conftest import error
from vidpipe_dagster.domain.node_types import NODE_TYPES

M1 = "11111111-1111-4111-8111-111111111111"
M2 = "22222222-2222-4222-8222-222222222222"

RULES = {
    "unknown-type": [
        ("bogus", {"x": ["A"]}, "Unknown node type: bogus"),
        ("bogus", {"segments": "nope", "y": 1}, "Unknown node type: bogus"),
        ("Merge-Videos", {"segments": ["A", "B"]}, "Unknown node type: Merge-Videos"),
    ],
    "unexpected-slots": [
        (
            "merge-videos",
            {"segments": ["A", "B"], "foo": [], "bar": ["A"]},
            "Unexpected input slot(s) for merge-videos nodes: foo, bar",
        ),
        (
            "talking-head",
            {"Script": ["A"]},
            "Unexpected input slot(s) for talking-head nodes: Script",
        ),
    ],
    "asset-with-inputs": [
        (
            "asset",
            {"source": ["A"]},
            "Unexpected input slot(s) for asset nodes: source, asset nodes should not have inputs",
        ),
    ],
    "required": [
        ("mix-audio", {"video": ["A"]}, "Input 'audio' is required for mix-audio nodes"),
        (
            "mix-audio",
            {"video": [], "audio": ["B"]},
            "Input 'video' is required for mix-audio nodes",
        ),
        ("merge-videos", {"segments": []}, "Input 'segments' is required for merge-videos nodes"),
        (
            "mix-audio",
            {"video": None, "audio": ["B"]},
            "Input 'video' is required for mix-audio nodes",
        ),
    ],
    "must-be-array": [
        (
            "mix-audio",
            {"video": "A", "audio": ["B"]},
            "Input 'video' must be an array for mix-audio nodes",
        ),
        (
            "generate-animation",
            {"prompt": {"uuid": "A"}},
            "Input 'prompt' must be an array for generate-animation nodes",
        ),
        ("render-code", {"config": 7}, "Input 'config' must be an array for render-code nodes"),
    ],
    "min-items": [
        (
            "merge-videos",
            {"segments": ["A"]},
            "Input 'segments' requires at least 2 item(s), got 1",
        ),
    ],
    "non-existent": [
        (
            "merge-videos",
            {"segments": ["A", M1, "B", M2]},
            f"Input 'segments' references non-existent nodes: {M1}, {M2}",
        ),
        (
            "merge-videos",
            {"segments": ["A", "X"]},
            "Input 'segments' references non-existent nodes: X",
        ),
        (
            "talking-head",
            {"script": ["not-a-uuid", 5, None]},
            "Input 'script' references non-existent nodes: not-a-uuid, 5, None",
        ),
        (
            "generate-animation",
            {"referenceImage": [M2], "prompt": [M1]},
            f"Input 'prompt' references non-existent nodes: {M1}, "
            f"Input 'referenceImage' references non-existent nodes: {M2}",
        ),
    ],
    "combined": [
        (
            "compose-video",
            {"zeta": ["A"], "overlay": [M1], "alpha": 1, "background": "A"},
            "Unexpected input slot(s) for compose-video nodes: zeta, alpha, "
            "Input 'background' must be an array for compose-video nodes, "
            f"Input 'overlay' references non-existent nodes: {M1}",
        ),
        (
            "merge-videos",
            {"segments": [M1], "extra": ["A"]},
            "Unexpected input slot(s) for merge-videos nodes: extra, "
            "Input 'segments' requires at least 2 item(s), got 1, "
            f"Input 'segments' references non-existent nodes: {M1}",
        ),
        (
            "mix-audio",
            {"audio": ["X"]},
            "Input 'video' is required for mix-audio nodes, "
            "Input 'audio' references non-existent nodes: X",
        ),
        (
            "compose-video",
            {"overlay": ["A"], "x": []},
            "Unexpected input slot(s) for compose-video nodes: x, "
            "Input 'background' is required for compose-video nodes",
        ),
        (
            "merge-videos",
            {"other": ["A"]},
            "Unexpected input slot(s) for merge-videos nodes: other, "
            "Input 'segments' is required for merge-videos nodes",
        ),
    ],
}
VALID = [
    ("merge-videos", {"segments": ["A", "A"]}),
    ("merge-videos", {"segments": ["A", "B", "A", "B"]}),
    ("talking-head", {"script": []}),
    ("talking-head", {}),
    ("generate-animation", {"prompt": ["A"], "referenceImage": ["B"]}),
    ("generate-animation", {"referenceImage": ["B"]}),
    ("compose-video", {"background": ["A"], "overlay": ["B"]}),
    ("generate-voiceover", {"script": ["B"]}),
    ("render-code", {"config": ["A", "B"]}),
]


@pytest.fixture
def names(api):
    """A pipeline with asset nodes A and B, and X: a node of another pipeline."""
    pipeline = api.pipeline()
    a = api.node(pipeline, title="A")
    b = api.node(pipeline, title="B")
    x = api.node(api.pipeline("other"), title="X")
    return {"pipeline": pipeline["uuid"], "A": a["uuid"], "B": b["uuid"], "X": x["uuid"]}


def _resolve(value, names):
    text = json.dumps(value)
    for key in ("A", "B", "X"):
        text = text.replace(f'"{key}"', json.dumps(names[key]))
    return json.loads(text)


def _message(message: str, names) -> str:
    return message.replace(": X", f": {names['X']}")


@pytest.mark.parametrize("rule", RULES)
def test_invalid_inputs_are_rejected_on_create_and_update(api, names, set_row, changes, rule):
    pipeline = {"uuid": names["pipeline"]}
    targets = {}
    for node_type, inputs, message in RULES[rule]:
        expected = error("validation_error", _message(message, names))
        before = changes.calls
        response = api.create_node(
            names["pipeline"], {"title": "N", "type": node_type, "inputs": _resolve(inputs, names)}
        )
        assert (response.status_code, response.json()) == (422, expected), inputs
        assert changes.calls == before
        if node_type not in NODE_TYPES:
            continue
        if node_type not in targets:
            targets[node_type] = api.node(pipeline, title="Target", type=node_type)
            set_row(targets[node_type]["uuid"], status="completed")
        target = targets[node_type]
        before = changes.calls
        response = api.patch_node(target, {"inputs": _resolve(inputs, names), "title": "New"})
        assert (response.status_code, response.json()) == (422, expected), inputs
        current = api.get_node(target)
        assert (current["title"], current["inputs"], current["status"]) == (
            "Target",
            {},
            "completed",
        )
        assert changes.calls == before
    listed = api.client.get(
        f"/v1/admin/video_production/pipelines/{names['pipeline']}/nodes", headers=api.headers
    ).json()["nodes"]
    assert [n["title"] for n in listed] == ["A", "B"] + ["Target"] * len(targets)


def test_valid_inputs_are_accepted_verbatim(api, names):
    for node_type, inputs in VALID:
        resolved = _resolve(inputs, names)
        response = api.create_node(
            names["pipeline"], {"title": "N", "type": node_type, "inputs": resolved}
        )
        assert response.status_code == 201, response.text
        assert response.json()["node"]["inputs"] == resolved
        patched = api.patch_node(response.json()["node"], {"inputs": resolved})
        assert patched.status_code == 200, patched.text
        assert patched.json()["node"]["inputs"] == resolved


def test_unknown_type_on_an_existing_row_is_rejected_on_update(api, names, set_row):
    node = api.node({"uuid": names["pipeline"]}, title="Legacy", type="talking-head")
    set_row(node["uuid"], type="retired-type")
    response = api.patch_node(node, {"inputs": {"x": ["y"]}})
    assert response.status_code == 422
    assert response.json() == error("validation_error", "Unknown node type: retired-type")
    assert api.patch_node(node, {"title": "Renamed"}).status_code == 200


def test_create_skips_validation_without_inputs(api, names):
    for node_type in ("merge-videos", "mix-audio", "compose-video"):
        for fields in ({}, {"inputs": {}}):
            response = api.create_node(
                names["pipeline"], {"title": "Later", "type": node_type, **fields}
            )
            assert response.status_code == 201, response.text
            assert response.json()["node"]["inputs"] == {}


@pytest.mark.parametrize(
    ("node_type", "message"),
    [
        ("merge-videos", "Input 'segments' is required for merge-videos nodes"),
        (
            "mix-audio",
            "Input 'video' is required for mix-audio nodes, "
            "Input 'audio' is required for mix-audio nodes",
        ),
    ],
)
def test_update_validates_even_empty_inputs(api, names, node_type, message):
    node = api.node({"uuid": names["pipeline"]}, title="Later", type=node_type)
    response = api.patch_node(node, {"inputs": {}})
    assert response.status_code == 422
    assert response.json() == error("validation_error", message)
    assert api.patch_node(node, {"title": "Still invalid, untouched"}).status_code == 200


def test_update_without_inputs_does_not_validate_stored_inputs(api, names, set_row):
    node = api.node({"uuid": names["pipeline"]}, title="Broken", type="merge-videos")
    set_row(node["uuid"], inputs={"segments": ["gone"]})
    response = api.patch_node(node, {"config": {"provider": "ffmpeg"}})
    assert response.status_code == 200
    assert response.json()["node"]["inputs"] == {"segments": ["gone"]}


def test_deleted_node_no_longer_counts_as_existing(api, names):
    doomed = api.node({"uuid": names["pipeline"]}, title="Doomed")
    assert api.delete_node(doomed).status_code == 204
    response = api.create_node(
        names["pipeline"],
        {
            "title": "M",
            "type": "merge-videos",
            "inputs": {"segments": [names["A"], doomed["uuid"]]},
        },
    )
    assert response.status_code == 422
    assert response.json() == error(
        "validation_error", f"Input 'segments' references non-existent nodes: {doomed['uuid']}"
    )


def _rotations(cycle: list[tuple[str, str]]) -> set[str]:
    texts = set()
    for start in range(len(cycle)):
        loop = cycle[start:] + cycle[:start]
        loop.append(loop[0])
        texts.add(
            "Inputs would create a cycle: "
            + " -> ".join(f"{title} ({uuid})" for title, uuid in loop)
        )
    return texts


def test_update_making_a_cycle_is_422_naming_it(api, names, set_row):
    pipeline = {"uuid": names["pipeline"]}
    first = api.node(pipeline, title="First", type="talking-head")
    second = api.node(
        pipeline, title="Second", type="talking-head", inputs={"script": [first["uuid"]]}
    )
    third = api.node(
        pipeline, title="Third", type="generate-animation", inputs={"prompt": [second["uuid"]]}
    )
    set_row(first["uuid"], status="completed")
    response = api.patch_node(first, {"inputs": {"script": [names["A"], third["uuid"]]}})
    assert response.status_code == 422
    body = response.json()
    assert body["error"]["type"] == "validation_error"
    assert body["error"]["message"] in _rotations(
        [("First", first["uuid"]), ("Third", third["uuid"]), ("Second", second["uuid"])]
    )
    current = api.get_node(first)
    assert (current["inputs"], current["status"]) == ({}, "completed")


def test_self_reference_is_a_cycle(api, names):
    node = api.node({"uuid": names["pipeline"]}, title="Loop", type="talking-head")
    response = api.patch_node(node, {"inputs": {"script": [node["uuid"]]}})
    assert response.status_code == 422
    assert response.json() == error(
        "validation_error",
        f"Inputs would create a cycle: Loop ({node['uuid']}) -> Loop ({node['uuid']})",
    )


def test_invalid_inputs_are_reported_before_a_cycle(api, names):
    pipeline = {"uuid": names["pipeline"]}
    first = api.node(pipeline, title="First", type="merge-videos")
    second = api.node(
        pipeline,
        title="Second",
        type="merge-videos",
        inputs={"segments": [first["uuid"], names["A"]]},
    )
    response = api.patch_node(first, {"inputs": {"segments": [second["uuid"]]}})
    assert response.json() == error(
        "validation_error", "Input 'segments' requires at least 2 item(s), got 1"
    )


def test_diamond_is_not_a_cycle(api, names):
    pipeline = {"uuid": names["pipeline"]}
    left = api.node(pipeline, title="L", type="talking-head", inputs={"script": [names["A"]]})
    right = api.node(pipeline, title="R", type="talking-head", inputs={"script": [names["A"]]})
    merge = api.node(pipeline, title="M", type="merge-videos")
    response = api.patch_node(merge, {"inputs": {"segments": [left["uuid"], right["uuid"]]}})
    assert response.status_code == 200, response.text
