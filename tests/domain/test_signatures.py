"""Signatures: the same work gets the same signature anywhere, a changed input changes
everything downstream, and nothing of one execution (UUIDs, titles, times) enters it."""

from __future__ import annotations

import pytest

from vidpipe_dagster.domain.signatures import (
    node_signature,
    output_signature,
    planned_signatures,
)


def _pipeline(prefix: str, *, script: str = "Hello.", order: tuple[str, str] = ("a", "b")):
    """script -> voice; a, b -> merge -> mix(merge, voice); other (unrelated)."""

    def uuid(name: str) -> str:
        return f"{prefix}-{name}"

    return [
        {"uuid": uuid("script"), "type": "asset", "asset": {"type": "text", "content": script}},
        {"uuid": uuid("voice"), "type": "generate-voiceover",
         "inputs": {"script": [uuid("script")]}, "config": {"provider": "elevenlabs"}},
        {"uuid": uuid("a"), "type": "generate-animation", "config": {"prompt": "sea"}},
        {"uuid": uuid("b"), "type": "render-code", "config": {"code": "print(1)"}},
        {"uuid": uuid("merge"), "type": "merge-videos",
         "inputs": {"segments": [uuid(order[0]), uuid(order[1])]}},
        {"uuid": uuid("mix"), "type": "mix-audio",
         "inputs": {"video": uuid("merge"), "audio": [uuid("voice")]}},
        {"uuid": uuid("other"), "type": "asset", "asset": {"type": "text", "content": "x"}},
    ]  # fmt: skip


def _by_name(prefix: str, signatures: dict[str, str | None]) -> dict[str, str | None]:
    return {uuid.removeprefix(f"{prefix}-"): sig for uuid, sig in signatures.items()}


def test_the_same_graph_has_the_same_signatures_in_another_pipeline() -> None:
    first = _by_name("p1", planned_signatures(_pipeline("p1")))
    copy = _by_name("p2", planned_signatures(_pipeline("p2")))
    assert first == copy
    assert all(isinstance(sig, str) and len(sig) == 64 for sig in first.values())
    assert len(set(first.values())) == len(first)


def test_a_changed_upstream_changes_every_signature_downstream_and_nothing_else() -> None:
    before = _by_name("p", planned_signatures(_pipeline("p")))
    after = _by_name("p", planned_signatures(_pipeline("p", script="Hello again.")))
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"script", "voice", "mix"}


def test_input_order_matters_for_a_merge() -> None:
    before = _by_name("p", planned_signatures(_pipeline("p")))
    swapped = _by_name("p", planned_signatures(_pipeline("p", order=("b", "a"))))
    assert {name for name in before if before[name] != swapped[name]} == {"merge", "mix"}


@pytest.mark.parametrize(
    ("change", "same"),
    [
        ({"title": "Renamed", "uuid": "elsewhere"}, True),
        ({"config": {"prompt": "sea", "maxRetries": 5}}, True),
        ({"config": {"prompt": "sea", "provider": "local"}}, True),
        ({"config": {"prompt": "sky"}}, False),
        ({"config": {"prompt": "sea", "provider": "veo3"}}, False),
        ({"type": "render-code"}, False),
    ],
)
def test_what_enters_a_signature(change: dict, same: bool) -> None:
    node = {"uuid": "n", "title": "Animation", "type": "generate-animation",
            "config": {"prompt": "sea"}}  # fmt: skip
    base = node_signature(node, {})
    assert (node_signature({**node, **change}, {}) == base) is same


def test_forcing_local_renders_gives_the_local_signature() -> None:
    paid = {"uuid": "n", "type": "generate-animation", "config": {"provider": "veo3"}}
    local = {"uuid": "m", "type": "generate-animation", "config": {}}
    assert node_signature(paid, {}) != node_signature(local, {})
    assert node_signature(paid, {}, force_local=True) == node_signature(local, {})


def test_a_node_whose_input_has_no_output_cannot_be_identified() -> None:
    node = {"uuid": "m", "type": "mix-audio", "inputs": {"video": ["v"], "audio": ["a"]}}
    assert node_signature(node, {"v": "1" * 64}) is None
    assert node_signature(node, {"v": "1" * 64, "a": "2" * 64}) is not None


def test_outputs_made_before_signatures_are_identified_by_their_key() -> None:
    assert output_signature({"s3_key": "k.mp4", "signature": "s" * 64}) == "s" * 64
    assert output_signature({"s3_key": "k.mp4"}) == "key:k.mp4"
    assert output_signature({"s3_key": "k.mp4"}) != output_signature({"s3_key": "j.mp4"})
    assert output_signature(None) is None


def test_a_partial_run_keeps_the_signatures_of_the_outputs_left_alone() -> None:
    nodes = _pipeline("p")
    planned = planned_signatures(nodes)
    for node in nodes:
        node["output"] = {"s3_key": f"{node['uuid']}.out", "signature": planned[node["uuid"]]}
    only_mix = planned_signatures(nodes, running=["p-mix"])
    assert only_mix == planned
    nodes[0]["output"] = {"s3_key": "old-script.txt"}  # made before the edit, unsigned
    stale = planned_signatures(nodes, running=["p-voice", "p-mix"])
    assert stale["p-script"] == "key:old-script.txt"
    assert stale["p-voice"] != planned["p-voice"] and stale["p-mix"] != planned["p-mix"]
