"""The embedded SQLite database under concurrent readers and writers, through the real app.

Readers (API GETs, ``/healthz``, the code location's snapshot read) never wait for the
write lock, even while a writer holds it; writers wait for each other and all succeed;
nobody ever sees ``database is locked``.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.main import create_app
from tests.api.conftest import BASE
from vidpipe_dagster.db.models import Pipeline
from vidpipe_dagster.db.session import make_engine, make_sessionmaker
from vidpipe_dagster.domain.lifecycle import Lifecycle
from vidpipe_dagster.domain.progress import count_statuses
from vidpipe_dagster.domain.tokens import create_token
from vidpipe_dagster.orchestration.components import read_state
from vidpipe_dagster.settings import Settings

HOLD_SECONDS = 3.0
READ_BOUND_SECONDS = 1.0
MIXED_SECONDS = 4.0
MIXED_CAP_SECONDS = 60.0
MIXED_EACH = 10


@pytest.fixture
def embedded(sqlite_url) -> Iterator[tuple[TestClient, object, str]]:
    """``(client, sessions, sqlite path)``: the app on a migrated SQLite file, as an admin."""
    engine = make_engine(sqlite_url)
    sessions = make_sessionmaker(engine)
    with sessions() as session, session.begin():
        token = create_token(session, name="admin", admin=True)
    app = create_app(settings=Settings(), sessions=sessions, notify_change=lambda _p: None)
    with TestClient(
        app, raise_server_exceptions=False, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        yield client, sessions, sqlite_url.split("///", 1)[1]
    engine.dispose()


def hold_write_lock(path: str, seconds: float, started: threading.Event) -> threading.Thread:
    """Another process's writer: a transaction holding SQLite's write lock for ``seconds``."""

    def hold() -> None:
        connection = sqlite3.connect(path, isolation_level=None, timeout=30)
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("UPDATE video_production_pipelines SET version = version")
        started.set()
        time.sleep(seconds)
        connection.execute("COMMIT")
        connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    return thread


def timed(call) -> tuple[float, object]:
    started = time.monotonic()
    result = call()
    return time.monotonic() - started, result


def test_readers_never_wait_and_nobody_sees_database_is_locked(embedded, sqlite_url) -> None:
    client, sessions, path = embedded
    pipeline = client.post(BASE, json={"pipeline": {"title": "Embedded"}}).json()["pipeline"]
    url = f"{BASE}/{pipeline['uuid']}"
    node = client.post(f"{url}/nodes", json={"node": {"title": "Clip", "type": "asset"}})
    node = node.json()["node"]

    held = threading.Event()
    holder = hold_write_lock(path, HOLD_SECONDS, held)
    assert held.wait(10)
    lock_taken = time.monotonic()
    reads = [
        timed(lambda: client.get(url)),
        timed(lambda: client.get(BASE)),
        timed(lambda: client.get(f"{url}/nodes/{node['uuid']}")),
        timed(lambda: client.get("/healthz")),
    ]
    snapshot_seconds, snapshot = timed(lambda: read_state(sqlite_url))
    write_seconds, patch = timed(
        lambda: client.patch(f"{url}/nodes/{node['uuid']}", json={"node": {"title": "Renamed"}})
    )
    holder.join()

    for seconds, response in reads:
        assert response.status_code == 200, response.text
        assert seconds < READ_BOUND_SECONDS, f"{response.url} waited {seconds:.2f} s"
    assert snapshot_seconds < READ_BOUND_SECONDS, f"the snapshot waited {snapshot_seconds:.2f} s"
    assert [p["uuid"] for p in snapshot["pipelines"]] == [pipeline["uuid"]]
    assert patch.status_code == 200, patch.text
    assert patch.json()["node"]["title"] == "Renamed"
    waited = time.monotonic() - lock_taken
    assert waited >= HOLD_SECONDS - 0.1 and write_seconds > 0.1

    mixed_traffic(client, sessions)


def mixed_traffic(client: TestClient, sessions) -> None:
    """Readers, API writers and lifecycle transitions at once for ``MIXED_SECONDS`` (longer
    on a slow disk, until each made ``MIXED_EACH`` calls): no 5xx, no "locked" anywhere,
    progress consistent."""
    lifecycle = Lifecycle(sessions)
    pipelines = [
        client.post(BASE, json={"pipeline": {"title": f"P{i}"}}).json()["pipeline"]
        for i in range(3)
    ]
    nodes = {
        p["uuid"]: [
            client.post(
                f"{BASE}/{p['uuid']}/nodes", json={"node": {"title": f"N{j}", "type": "asset"}}
            ).json()["node"]["uuid"]
            for j in range(3)
        ]
        for p in pipelines
    }
    problems: list[str] = []
    counts = {"reads": 0, "writes": 0, "transitions": 0}
    lock = threading.Lock()
    started = time.monotonic()

    def running() -> bool:
        elapsed = time.monotonic() - started
        if elapsed > MIXED_CAP_SECONDS:
            return False
        with lock:
            return elapsed < MIXED_SECONDS or min(counts.values()) < MIXED_EACH

    def note(kind: str, response) -> None:
        with lock:
            counts[kind] += 1
            if response.status_code >= 500 or "locked" in response.text:
                problems.append(f"{response.request.method} {response.url}: {response.text}")

    def reader(seed: int) -> None:
        rng = random.Random(seed)
        while running():
            p = rng.choice(pipelines)["uuid"]
            note("reads", client.get(rng.choice([BASE, f"{BASE}/{p}", f"{BASE}/{p}/nodes"])))

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        while running():
            p = rng.choice(pipelines)["uuid"]
            n = rng.choice(nodes[p])
            body = {"node": {"config": {"take": rng.randint(0, 9)}}}
            note("writes", client.patch(f"{BASE}/{p}/nodes/{n}", json=body))

    def engine(seed: int) -> None:
        rng = random.Random(seed)
        while running():
            n = rng.choice(nodes[rng.choice(pipelines)["uuid"]])
            try:
                process = lifecycle.started(n)
                lifecycle.succeeded(n, {"type": "text", "s3_key": "k", "size": 1}, process)
            except Exception as error:
                with lock:
                    problems.append(f"lifecycle: {type(error).__name__}: {error}")
            with lock:
                counts["transitions"] += 1

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(4)]
    threads += [threading.Thread(target=writer, args=(10 + i,)) for i in range(3)]
    threads += [threading.Thread(target=engine, args=(20 + i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert problems == []
    assert min(counts.values()) >= MIXED_EACH, counts
    with sessions() as session:
        for row in session.scalars(select(Pipeline)):
            assert row.metadata_["progress"] == count_statuses(session, row.id)
