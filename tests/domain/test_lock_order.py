"""The lock order under a writer from outside vidpipe, on real PostgreSQL.

The editor shares the database, so a foreign transaction may lock a pipeline and its node
in either order while a lifecycle transition runs. In vidpipe's own order (pipeline, then
node) the transition just waits; in the other a deadlock happens, PostgreSQL aborts the
transition, and it is run again inside the same call: the caller sees no error either way.
"""

from __future__ import annotations

import logging
import threading
import time

import psycopg
import pytest

from tests.domain.helpers import make_node, make_pipeline, reload
from vidpipe_dagster.db.models import Node
from vidpipe_dagster.domain.lifecycle import Lifecycle

PIPELINE_FIRST = ("video_production_pipelines", "video_production_nodes")
NODE_FIRST = ("video_production_nodes", "video_production_pipelines")


def waiting_locks(connection: psycopg.Connection) -> int:
    """Sessions of this database waiting for a lock right now."""
    return connection.execute(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND datname = current_database()"
    ).fetchone()[0]


@pytest.mark.parametrize(
    "order", [PIPELINE_FIRST, NODE_FIRST], ids=["pipeline-first", "node-first"]
)
def test_a_foreign_writer_in_either_order_never_fails_a_transition(
    sessions, database_url, order, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="vidpipe_dagster.db.conflicts")
    lifecycle = Lifecycle(sessions)
    pipeline = make_pipeline(sessions)
    node = make_node(sessions, pipeline)
    process = lifecycle.started(node.uuid)
    ids = {"video_production_pipelines": pipeline.id, "video_production_nodes": node.id}
    plain_url = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    outcome: dict[str, object] = {}

    def transition() -> None:
        try:
            outcome["result"] = lifecycle.succeeded(node.uuid, {"type": "text"}, process)
        except Exception as error:
            outcome["error"] = error

    with psycopg.connect(plain_url) as foreign, psycopg.connect(plain_url) as watcher:
        watcher.autocommit = True
        foreign.execute("SET deadlock_timeout = '10s'")
        first, second = order
        foreign.execute(f"SELECT 1 FROM {first} WHERE id = %s FOR UPDATE", (ids[first],))
        thread = threading.Thread(target=transition)
        thread.start()
        deadline = time.monotonic() + 10
        while waiting_locks(watcher) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert waiting_locks(watcher) > 0, "the transition never waited for the foreign lock"
        foreign.execute(f"SELECT 1 FROM {second} WHERE id = %s FOR UPDATE", (ids[second],))
        time.sleep(0.2)
        foreign.commit()
    thread.join(timeout=30)

    assert "error" not in outcome, outcome.get("error")
    assert outcome["result"] is True
    assert reload(sessions, Node, node.id).status == "completed"
    retried = [r for r in caplog.records if "lost a lock conflict" in r.getMessage()]
    if order == PIPELINE_FIRST:
        assert retried == [], "vidpipe's own order should only wait"
    else:
        assert retried, "the deadlock should have been retried"
