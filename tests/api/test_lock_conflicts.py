"""A PATCH that loses a deadlock to a writer outside vidpipe is run again, not a 500.

The foreign transaction locks the node, the PATCH locks the pipeline and waits for the node,
then the foreign transaction asks for the pipeline: PostgreSQL aborts the PATCH's
transaction, which the route rolls back and runs again once the foreign one committed.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

import psycopg

from tests.api.conftest import BASE
from tests.domain.test_lock_order import waiting_locks


def test_a_patch_that_loses_a_deadlock_is_retried(api, sessions, database_url, caplog) -> None:
    caplog.set_level(logging.INFO, logger="vidpipe_dagster.db.conflicts")
    pipeline = api.pipeline()
    node = api.node(pipeline)
    plain_url = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    answer: dict[str, object] = {}

    def patch() -> None:
        answer["response"] = api.client.patch(
            f"{BASE}/{pipeline['uuid']}/nodes/{node['uuid']}",
            json={"node": {"config": {"take": 2}}},
            headers=api.headers,
        )

    with psycopg.connect(plain_url) as foreign, psycopg.connect(plain_url) as watcher:
        watcher.autocommit = True
        foreign.execute("SET deadlock_timeout = '10s'")
        foreign.execute(
            "UPDATE video_production_nodes SET title = 'Foreign' WHERE id = %s",
            (uuid.UUID(node["uuid"]),),
        )
        thread = threading.Thread(target=patch)
        thread.start()
        deadline = time.monotonic() + 10
        while waiting_locks(watcher) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert waiting_locks(watcher) > 0, "the PATCH never waited for the foreign lock"
        foreign.execute(
            "SELECT 1 FROM video_production_pipelines WHERE id = %s FOR UPDATE",
            (uuid.UUID(pipeline["uuid"]),),
        )
        time.sleep(0.2)
        foreign.commit()
    thread.join(timeout=30)

    response = answer["response"]
    assert response.status_code == 200, response.text
    body = response.json()["node"]
    assert (body["title"], body["config"]) == ("Foreign", {"take": 2})
    assert any("lost a lock conflict" in r.getMessage() for r in caplog.records)
