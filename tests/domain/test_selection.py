"""Which nodes an execute request runs."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from tests.domain.helpers import make_node, make_pipeline
from vidpipe_dagster.db.models import Node, Pipeline
from vidpipe_dagster.domain.errors import ConflictError, ValidationError
from vidpipe_dagster.domain.selection import select_nodes


@pytest.fixture
def graph(sessions):
    """script -> voice -> mix <- merge <- (a, b); statuses set per test."""
    pipeline = make_pipeline(sessions)
    a = make_node(sessions, pipeline, title="A")
    b = make_node(sessions, pipeline, title="B")
    merge = make_node(
        sessions,
        pipeline,
        node_type="merge-videos",
        title="Merge",
        inputs={"segments": [a.uuid, b.uuid]},
    )
    script = make_node(sessions, pipeline, title="Script")
    voice = make_node(
        sessions,
        pipeline,
        node_type="generate-voiceover",
        title="Voice",
        inputs={"script": [script.uuid]},
    )
    mix = make_node(
        sessions,
        pipeline,
        node_type="mix-audio",
        title="Mix",
        inputs={"video": [merge.uuid], "audio": [voice.uuid]},
    )
    return pipeline, {"a": a, "b": b, "merge": merge, "script": script, "voice": voice, "mix": mix}


def _status(sessions, node, status):
    with sessions() as session, session.begin():
        session.execute(update(Node).where(Node.id == node.id).values(status=status))


def _select(sessions, pipeline, **kwargs):
    with sessions() as session:
        return [
            n.title for n in select_nodes(session, session.get(Pipeline, pipeline.id), **kwargs)
        ]


def test_default_runs_every_unfinished_node_and_its_downstream_in_order(sessions, graph):
    pipeline, n = graph
    titles = _select(sessions, pipeline)
    assert set(titles) == {"A", "B", "Merge", "Script", "Voice", "Mix"}
    assert titles.index("Merge") > max(titles.index("A"), titles.index("B"))
    assert titles.index("Mix") > max(titles.index("Merge"), titles.index("Voice"))


def test_stale_skips_completed_branches(sessions, graph):
    pipeline, n = graph
    for key in ("a", "b", "merge", "script", "voice", "mix"):
        _status(sessions, n[key], "completed")
    _status(sessions, n["voice"], "failed")
    assert _select(sessions, pipeline, only="stale") == ["Voice", "Mix"]


def test_failed_only_and_readiness_reasons(sessions, graph):
    pipeline, n = graph
    _status(sessions, n["mix"], "failed")
    with pytest.raises(ValidationError) as caught:
        _select(sessions, pipeline, only="failed")
    assert (
        f"Input node 'Merge' ({n['merge'].uuid}) is pending, not completed" in caught.value.message
    )
    for key in ("merge", "voice"):
        _status(sessions, n[key], "completed")
    assert _select(sessions, pipeline, only="failed") == ["Mix"]


def test_named_nodes_and_bad_requests(sessions, graph):
    pipeline, n = graph
    assert _select(sessions, pipeline, node_uuids=[n["a"].uuid, n["b"].uuid]) == ["A", "B"]
    with pytest.raises(ValidationError, match="Nodes not in this pipeline: nope"):
        _select(sessions, pipeline, node_uuids=["nope"])
    with pytest.raises(ValidationError, match="only must be one of"):
        _select(sessions, pipeline, only="everything")
    with pytest.raises(ValidationError, match="No nodes to run"):
        _select(sessions, pipeline, only="failed")


def test_completed_nodes_rerun_only_with_all(sessions, graph):
    pipeline, n = graph
    _status(sessions, n["a"], "completed")
    with pytest.raises(ValidationError, match="Node 'A' is completed"):
        _select(sessions, pipeline, node_uuids=[n["a"].uuid])
    assert "A" in _select(sessions, pipeline, only="all")
    _status(sessions, n["b"], "in_progress")
    with pytest.raises(ConflictError, match="Node 'B' is already running"):
        _select(sessions, pipeline, only="all")
