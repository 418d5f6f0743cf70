"""The embedded SQLite path: migrations, edits and the lifecycle race."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.domain.helpers import make_node, make_pipeline, reload
from vidpipe_dagster.db.models import Node, Pipeline
from vidpipe_dagster.db.session import make_engine, make_sessionmaker
from vidpipe_dagster.domain.lifecycle import Lifecycle
from vidpipe_dagster.domain.nodes import destroy_node


@pytest.fixture
def sqlite_sessions(sqlite_url):
    engine = make_engine(sqlite_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def test_edit_and_clean_up_on_sqlite(sqlite_sessions):
    sessions = sqlite_sessions
    pipeline = make_pipeline(sessions)
    a = make_node(sessions, pipeline)
    b = make_node(sessions, pipeline)
    merge = make_node(
        sessions, pipeline, node_type="merge-videos", inputs={"segments": [a.uuid, b.uuid]}
    )
    with sessions() as session, session.begin():
        destroy_node(session, session.get(Node, a.id))
    assert reload(sessions, Node, merge.id).inputs == {"segments": [b.uuid]}
    with sessions() as session, session.begin():
        session.delete(session.get(Pipeline, pipeline.id))
    with sessions() as session:
        assert session.query(Node).count() == 0


def test_lifecycle_race_on_sqlite(sqlite_sessions):
    sessions = sqlite_sessions
    lifecycle = Lifecycle(sessions)
    pipeline = make_pipeline(sessions)
    node = make_node(sessions, pipeline)
    stale = lifecycle.started(node.uuid)
    current = lifecycle.started(node.uuid)
    barrier = threading.Barrier(8)

    def attempt(i):
        process = current if i == 5 else stale
        barrier.wait()
        return lifecycle.succeeded(node.uuid, {"type": "text", "s3_key": process}, process)

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, range(8)))
    assert outcomes.count(True) == 1 and outcomes[5] is True
    assert reload(sessions, Node, node.id).output["s3_key"] == current
