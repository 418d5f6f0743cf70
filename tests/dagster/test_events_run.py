"""A real in-process Dagster run watched over the live-status stream."""

from __future__ import annotations

from tests.dagster.builders import NodeRow, add_pipeline
from tests.dagster.test_materialize import run_nodes
from tests.fixtures.api_server import live_app
from vidpipe_dagster.assets.asset_keys import key_of

NODES = [
    NodeRow("script", "asset", asset={"content": "Hello from vidpipe."}, title="Script"),
    NodeRow("voiceover", "generate-voiceover", inputs={"script": ["script"]}, title="Voiceover"),
    NodeRow("code", "render-code", config={"code": "print('hi')", "duration": 1}, title="Code"),
]


def test_a_client_sees_every_node_of_a_real_run_start_and_complete_in_order(sessions, resource):
    ids = add_pipeline(sessions, name="watched", nodes=NODES)
    keys = [key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids[n.name]) for n in NODES]
    with live_app(sessions) as live:
        reader = live.stream(ids["pipeline"])
        snapshot = reader.next()
        assert snapshot.kind == "snapshot"
        assert {n["status"] for n in snapshot.data["pipeline"]["nodes"]} == {"pending"}

        result, _ = run_nodes(sessions, resource, keys)
        assert result.success

        seen = reader.until(
            lambda e: e.kind == "pipeline" and e.data["pipeline"]["progress"]["completed"] == 3,
            timeout=30,
        )
        reader.stop()

    ids_seen = [event.id for event in seen]
    assert ids_seen == sorted(ids_seen) and len(set(ids_seen)) == len(ids_seen)
    statuses: dict[str, list[str]] = {}
    for event in seen:
        if event.kind == "node":
            node = event.data["node"]
            trail = statuses.setdefault(node["title"], [])
            if not trail or trail[-1] != node["status"]:
                trail.append(node["status"])
    assert statuses == {
        title: ["in_progress", "completed"] for title in ("Script", "Voiceover", "Code")
    }
    finals = {
        e.data["node"]["title"]: e.data["node"]
        for e in seen
        if e.kind == "node" and e.data["node"]["status"] == "completed"
    }
    assert finals["Voiceover"]["output"]["type"] == "audio"
    assert finals["Voiceover"]["output"]["duration"] > 0
    completed_counts = [
        e.data["pipeline"]["progress"]["completed"] for e in seen if e.kind == "pipeline"
    ]
    assert completed_counts == sorted(completed_counts) and completed_counts[-1] == 3
