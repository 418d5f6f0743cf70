"""Input validation: the seed's messages, in the seed's order, against a real database."""

from __future__ import annotations

import uuid

import pytest

from tests.domain.helpers import make_node, make_pipeline
from vidpipe_dagster.domain.errors import ValidationError
from vidpipe_dagster.domain.node_types import INPUT_SCHEMAS, NODE_TYPES
from vidpipe_dagster.domain.validation import input_errors, validate_inputs

A, B, C = (str(uuid.UUID(int=i)) for i in (1, 2, 3))


def everything_exists(refs):
    return set(refs)


def nothing_exists(refs):
    return set()


def test_the_eight_node_types_and_their_slots_match_the_seed():
    assert NODE_TYPES == (
        "asset",
        "merge-videos",
        "mix-audio",
        "compose-video",
        "talking-head",
        "generate-animation",
        "generate-voiceover",
        "render-code",
    )
    shape = {
        t: [(s.name, s.required, s.min_items) for s in slots] for t, slots in INPUT_SCHEMAS.items()
    }
    assert shape == {
        "asset": [],
        "merge-videos": [("segments", True, 2)],
        "mix-audio": [("video", True, None), ("audio", True, None)],
        "compose-video": [("background", True, None), ("overlay", True, None)],
        "talking-head": [("script", False, None)],
        "generate-animation": [("prompt", False, None), ("referenceImage", False, None)],
        "generate-voiceover": [("script", False, None)],
        "render-code": [("config", False, None)],
    }


@pytest.mark.parametrize(
    ("node_type", "inputs", "expected"),
    [
        ("bogus", {"segments": [A]}, ["Unknown node type: bogus"]),
        ("asset", {}, []),
        (
            "asset",
            {"foo": [A]},
            ["Unexpected input slot(s) for asset nodes: foo", "asset nodes should not have inputs"],
        ),
        (
            "merge-videos",
            {"clips": [A], "extra": []},
            [
                "Unexpected input slot(s) for merge-videos nodes: clips, extra",
                "Input 'segments' is required for merge-videos nodes",
            ],
        ),
        ("merge-videos", {}, ["Input 'segments' is required for merge-videos nodes"]),
        (
            "merge-videos",
            {"segments": A},
            ["Input 'segments' must be an array for merge-videos nodes"],
        ),
        (
            "merge-videos",
            {"segments": [A]},
            ["Input 'segments' requires at least 2 item(s), got 1"],
        ),
        ("merge-videos", {"segments": []}, ["Input 'segments' is required for merge-videos nodes"]),
        ("merge-videos", {"segments": [A, B]}, []),
        (
            "mix-audio",
            {},
            [
                "Input 'video' is required for mix-audio nodes",
                "Input 'audio' is required for mix-audio nodes",
            ],
        ),
        (
            "compose-video",
            {"background": {"x": 1}, "overlay": [A]},
            ["Input 'background' must be an array for compose-video nodes"],
        ),
        ("talking-head", {}, []),
        ("talking-head", {"script": []}, []),
        ("generate-animation", {"prompt": [A], "referenceImage": [B]}, []),
        ("render-code", {"config": "x"}, ["Input 'config' must be an array for render-code nodes"]),
    ],
)
def test_shape_errors_in_seed_order(node_type, inputs, expected):
    assert input_errors(node_type, inputs, exists=everything_exists) == expected


def test_unknown_type_is_reported_alone():
    assert input_errors("nope", {"x": 1, "y": [A]}, exists=nothing_exists) == [
        "Unknown node type: nope"
    ]


def test_missing_references_listed_per_slot_after_shape_errors():
    errors = input_errors(
        "mix-audio", {"video": [A, B], "audio": [C], "zzz": []}, exists=lambda refs: {B}
    )
    assert errors == [
        "Unexpected input slot(s) for mix-audio nodes: zzz",
        f"Input 'video' references non-existent nodes: {A}",
        f"Input 'audio' references non-existent nodes: {C}",
    ]


def test_references_are_checked_with_one_lookup():
    calls = []

    def exists(refs):
        calls.append(list(refs))
        return set()

    input_errors("compose-video", {"background": [A], "overlay": [B, C]}, exists=exists)
    assert calls == [[A, B, C]]


def test_references_are_scoped_to_the_pipeline(sessions):
    mine = make_pipeline(sessions, "mine")
    other = make_pipeline(sessions, "other")
    a = make_node(sessions, mine)
    b = make_node(sessions, mine)
    foreign = make_node(sessions, other)
    with sessions() as session:
        validate_inputs(
            session,
            node_type="merge-videos",
            inputs={"segments": [a.uuid, b.uuid]},
            pipeline_id=mine.id,
        )
        with pytest.raises(ValidationError) as caught:
            validate_inputs(
                session,
                node_type="merge-videos",
                inputs={"segments": [a.uuid, foreign.uuid, "not-a-uuid"]},
                pipeline_id=mine.id,
            )
    assert caught.value.message == (
        f"Input 'segments' references non-existent nodes: {foreign.uuid}, not-a-uuid"
    )
    assert caught.value.status_code == 422
