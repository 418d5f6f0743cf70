"""The same app over the embedded SQLite database: a full CRUD round trip with clean-up."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from api.main import create_app
from tests.api.conftest import BASE, NODE_KEYS, PIPELINE_KEYS, Api, ChangeRecorder, error
from vidpipe_dagster.db.models import Node
from vidpipe_dagster.db.session import make_engine, make_sessionmaker
from vidpipe_dagster.domain.tokens import create_token
from vidpipe_dagster.settings import Settings


@pytest.fixture
def sqlite_sessions(sqlite_url):
    """A session factory on a migrated SQLite file."""
    engine = make_engine(sqlite_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def sqlite_api(sqlite_sessions) -> Iterator[tuple[Api, dict[str, str], ChangeRecorder]]:
    """Admin shorthands over an app on SQLite, non-admin headers, and its change recorder."""
    with sqlite_sessions() as session, session.begin():
        token = create_token(session, name="admin", admin=True)
        viewer = create_token(session, name="viewer", admin=False)
    recorder = ChangeRecorder()
    app = create_app(settings=Settings(), sessions=sqlite_sessions, notify_change=recorder)
    with TestClient(app, raise_server_exceptions=False) as client:
        api = Api(client, {"Authorization": f"Bearer {token}"})
        yield api, {"Authorization": f"Bearer {viewer}"}, recorder


def test_crud_round_trip_on_sqlite(sqlite_api, sqlite_sessions):
    api, viewer_headers, recorder = sqlite_api
    client, h = api.client, api.headers

    assert client.get(BASE).status_code == 401
    forbidden = client.get(BASE, headers=viewer_headers)
    assert forbidden.json() == error("forbidden", "Admin access required")

    pipeline = api.pipeline("Embedded", config={"storage": {"dir": "x"}})
    assert set(pipeline) == PIPELINE_KEYS
    second = api.pipeline("Second")
    listed = client.get(BASE, params={"per": 1}, headers=h).json()
    assert [p["uuid"] for p in listed["results"]] == [second["uuid"]]
    assert listed["meta"] == {"current_page": 1, "total_count": 2, "total_pages": 2}

    a = api.node(pipeline, title="A")
    b = api.node(pipeline, title="B")
    merge = api.node(
        pipeline, title="Merge", type="merge-videos", inputs={"segments": [a["uuid"], b["uuid"]]}
    )
    assert set(merge) == NODE_KEYS
    assert merge["created_at"].endswith("Z")
    legacy = api.node(pipeline, title="Legacy", type="talking-head")
    with sqlite_sessions() as session, session.begin():
        session.execute(
            update(Node)
            .where(Node.id == uuid.UUID(legacy["uuid"]))
            .values(inputs={"script": a["uuid"]}, status="completed")
        )
        session.execute(
            update(Node).where(Node.id == uuid.UUID(merge["uuid"])).values(status="completed")
        )

    foreign = api.node(second, title="Foreign")
    rejected = api.create_node(
        pipeline["uuid"],
        {"title": "Bad", "type": "merge-videos", "inputs": {"segments": [foreign["uuid"]]}},
    )
    assert rejected.json() == error(
        "validation_error",
        "Input 'segments' requires at least 2 item(s), got 1, "
        f"Input 'segments' references non-existent nodes: {foreign['uuid']}",
    )
    looped = api.node(pipeline, title="Loop", type="talking-head")
    self_loop = api.patch_node(looped, {"inputs": {"script": [looped["uuid"]]}})
    assert self_loop.json() == error(
        "validation_error",
        f"Inputs would create a cycle: Loop ({looped['uuid']}) -> Loop ({looped['uuid']})",
    )

    shown = client.get(f"{BASE}/{pipeline['uuid']}", headers=h).json()["pipeline"]
    assert [n["title"] for n in shown["nodes"]] == ["A", "B", "Merge", "Legacy", "Loop"]
    assert shown["metadata"]["progress"]["total"] == 5

    title_only = api.patch_node(merge, {"title": "Merged"}).json()["node"]
    assert title_only["status"] == "completed"
    assert (
        api.patch_node(merge, {"inputs": {"segments": [a["uuid"], b["uuid"]]}}).json()["node"][
            "status"
        ]
        == "completed"
    )

    assert api.delete_node(a).status_code == 204
    merge_now = api.get_node(merge)
    assert (merge_now["inputs"], merge_now["status"]) == ({"segments": [b["uuid"]]}, "completed")
    legacy_now = api.get_node(legacy)
    assert (legacy_now["inputs"], legacy_now["status"]) == ({}, "completed")

    changed = api.patch_node(merge, {"config": {"provider": "ffmpeg"}}).json()["node"]
    assert changed["status"] == "pending"

    assert client.delete(f"{BASE}/{pipeline['uuid']}", headers=h).status_code == 204
    assert client.get(f"{BASE}/{pipeline['uuid']}", headers=h).json() == error(
        "not_found", "Pipeline not found"
    )
    with sqlite_sessions() as session:
        titles = session.scalars(select(Node.title)).all()
        assert titles == ["Foreign"]
        assert session.scalar(select(func.count(Node.id))) == 1
    assert recorder.calls == 13


def test_malformed_input_on_sqlite_is_4xx(sqlite_api):
    api, _viewer_headers, _recorder = sqlite_api
    pipeline = api.pipeline()
    headers = {**api.headers, "Content-Type": "application/json"}
    for raw, status in [
        (b"{nope", 400),
        (b'{"node": {"title": "T\\u0000", "type": "asset"}}', 422),
        (b'{"node": {"title": "T", "type": "asset", "config": {"x": 1e999}}}', 422),
        (b'{"node": []}', 400),
    ]:
        response = api.client.post(f"{BASE}/{pipeline['uuid']}/nodes", content=raw, headers=headers)
        assert response.status_code == status, response.text
        assert set(response.json()["error"]) == {"type", "message"}
    huge_page = api.client.get(BASE, params={"page": "9" * 30}, headers=api.headers)
    assert (huge_page.status_code, huge_page.json()["results"]) == (200, [])
