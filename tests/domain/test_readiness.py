"""Readiness: pending/failed, valid inputs, completed upstream nodes."""

from __future__ import annotations

from sqlalchemy import update

from tests.domain.helpers import make_node, make_pipeline
from vidpipe_dagster.db.models import Node
from vidpipe_dagster.domain.readiness import check_readiness


def _set_status(sessions, node, status):
    with sessions() as session, session.begin():
        session.execute(update(Node).where(Node.id == node.id).values(status=status))


def _check(sessions, nodes, **kwargs):
    with sessions() as session:
        rows = [session.get(Node, n.id) for n in nodes]
        return check_readiness(session, rows, **kwargs)


def test_ready_only_when_inputs_are_completed(sessions):
    pipeline = make_pipeline(sessions)
    a = make_node(sessions, pipeline, title="Intro")
    b = make_node(sessions, pipeline, title="Outro")
    merge = make_node(
        sessions, pipeline, node_type="merge-videos", inputs={"segments": [a.uuid, b.uuid]}
    )
    _set_status(sessions, a, "completed")
    [result] = _check(sessions, [merge])
    assert not result.ready
    assert result.reasons == [f"Input node 'Outro' ({b.uuid}) is pending, not completed"]

    _set_status(sessions, b, "completed")
    assert _check(sessions, [merge])[0].ready


def test_nodes_launched_together_count_as_available(sessions):
    pipeline = make_pipeline(sessions)
    a = make_node(sessions, pipeline)
    b = make_node(sessions, pipeline)
    merge = make_node(
        sessions, pipeline, node_type="merge-videos", inputs={"segments": [a.uuid, b.uuid]}
    )
    results = _check(sessions, [a, b, merge], also_running={a.uuid, b.uuid, merge.uuid})
    assert [r.ready for r in results] == [True, True, True]


def test_running_and_completed_nodes_are_not_ready(sessions):
    pipeline = make_pipeline(sessions)
    a = make_node(sessions, pipeline, title="Script")
    _set_status(sessions, a, "in_progress")
    assert _check(sessions, [a])[0].reasons == ["Node 'Script' is in_progress"]
    _set_status(sessions, a, "failed")
    assert _check(sessions, [a])[0].ready


def test_invalid_inputs_written_straight_to_the_table_are_reasons(sessions):
    pipeline = make_pipeline(sessions)
    merge = make_node(sessions, pipeline, node_type="merge-videos")
    [result] = _check(sessions, [merge])
    assert result.reasons == ["Input 'segments' is required for merge-videos nodes"]
