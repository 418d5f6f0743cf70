"""Live status over Server-Sent Events: the real app under uvicorn, on PostgreSQL and SQLite.

The lifecycle is driven directly (as the Dagster side and webhooks drive it) and through the
API's edits; the client is a real HTTP client reading the stream.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, sessionmaker

from tests.api.conftest import BASE, MISSING_UUID, error
from tests.fixtures.api_server import Live, live_app
from vidpipe_dagster.db.session import make_engine, make_sessionmaker
from vidpipe_dagster.domain import events
from vidpipe_dagster.domain.tokens import create_token


@pytest.fixture(params=["postgresql", "sqlite"])
def db(request) -> Iterator[sessionmaker[Session]]:
    """A session factory on the test PostgreSQL database or on a migrated SQLite file."""
    if request.param == "postgresql":
        yield request.getfixturevalue("sessions")
    else:
        engine = make_engine(request.getfixturevalue("sqlite_url"))
        yield make_sessionmaker(engine)
        engine.dispose()


def _summary(event) -> tuple:
    if event.kind == "node":
        node = event.data["node"]
        metadata = node["metadata"] or {}
        return (
            "node",
            node["title"],
            node["status"],
            metadata.get("stage"),
            metadata.get("progress"),
        )
    if event.kind == "pipeline":
        return ("pipeline", event.data["pipeline"]["progress"]["completed"])
    return (event.kind,)


def test_every_transition_arrives_in_order_and_a_reconnect_misses_nothing(db):
    with live_app(db) as live:
        pipeline = live.pipeline()
        voiceover = live.node(pipeline, "Voiceover")
        talking_head = live.node(pipeline, "Talking head")
        reader = live.stream(pipeline)
        assert reader.status == 200
        assert reader.response_headers["content-type"].startswith("text/event-stream")
        snapshot = reader.next()
        assert snapshot.kind == "snapshot"
        assert [n["title"] for n in snapshot.data["pipeline"]["nodes"]] == [
            "Voiceover",
            "Talking head",
        ]

        process = live.lifecycle.started(voiceover)
        live.lifecycle.updated(voiceover, {"stage": "synthesising", "progress": 40}, process)
        output = {"type": "audio", "s3_key": "a.mp3", "size": 1000, "duration": 2.5, "cost": 0.12}
        live.lifecycle.succeeded(voiceover, output, process)

        seen = reader.until(
            lambda e: e.kind == "pipeline" and e.data["pipeline"]["progress"]["completed"] == 1
        )
        assert [_summary(e) for e in seen] == [
            ("node", "Voiceover", "in_progress", None, None),
            ("pipeline", 0),
            ("node", "Voiceover", "in_progress", "synthesising", 40),
            ("node", "Voiceover", "completed", "synthesising", 40),
            ("pipeline", 1),
        ]
        ids = [e.id for e in seen]
        assert ids == sorted(ids) and len(set(ids)) == len(ids) and ids[0] > snapshot.id
        completed = seen[3].data["node"]
        assert completed["output"] == {**output, "process_uuid": process}
        assert completed["metadata"]["cost"] == 0.12
        assert seen[4].data["pipeline"]["totalCost"] == 0.12
        assert set(completed) >= {"uuid", "pipeline_uuid", "status", "metadata", "output"}
        reader.stop()

        second = live.lifecycle.started(talking_head)
        live.lifecycle.updated(talking_head, {"stage": "rendering"}, second)
        live.lifecycle.failed(talking_head, "HeyGen said no", second)

        resumed = live.stream(pipeline, last_event_id=ids[-1])
        missed = resumed.until(
            lambda e: e.kind == "pipeline" and e.data["pipeline"]["progress"]["failed"] == 1
        )
        assert [_summary(e) for e in missed] == [
            ("node", "Talking head", "in_progress", None, None),
            ("pipeline", 1),
            ("node", "Talking head", "in_progress", "rendering", None),
            ("node", "Talking head", "failed", "rendering", None),
            ("pipeline", 1),
        ]
        assert missed[0].id > ids[-1]
        assert missed[3].data["node"]["metadata"]["error"] == "HeyGen said no"

        live_again = live.lifecycle.started(voiceover)
        after = resumed.next()
        assert _summary(after) == ("node", "Voiceover", "in_progress", None, None)
        assert after.id > missed[-1].id
        assert live_again
        resumed.stop()


def test_a_change_arrives_within_a_second(db):
    with live_app(db) as live:
        pipeline = live.pipeline()
        node = live.node(pipeline, "Voiceover")
        reader = live.stream(pipeline)
        reader.next()
        delays = []
        process = live.lifecycle.started(node)
        reader.next()
        reader.next()
        for step in range(5):
            written = time.perf_counter()
            live.lifecycle.updated(node, {"progress": step}, process)
            event = reader.next(timeout=5)
            delays.append(event.received - written)
            assert event.data["node"]["metadata"]["progress"] == step
        assert max(delays) < 1.0, delays
        reader.stop()


def test_edits_and_deletes_through_the_api_are_streamed(db):
    import httpx

    with live_app(db) as live:
        pipeline = live.pipeline()
        keep = live.node(pipeline, "Keep")
        drop = live.node(pipeline, "Drop")
        reader = live.stream(pipeline)
        reader.next()
        with httpx.Client(base_url=live.url, headers=live.headers) as client:
            patched = client.patch(
                f"{BASE}/{pipeline}/nodes/{keep}", json={"node": {"title": "Kept"}}
            )
            assert patched.status_code == 200
            assert client.delete(f"{BASE}/{pipeline}/nodes/{drop}").status_code == 204
            first = reader.next()
            assert (first.kind, first.data["node"]["title"]) == ("node", "Kept")
            deleted = reader.until(lambda e: e.kind == "node_deleted")
            assert deleted[-1].data["node"]["uuid"] == drop
            assert [e.kind for e in deleted[:-1]] in ([], ["node"])
            progress = reader.next()
            assert (
                progress.kind == "pipeline" and progress.data["pipeline"]["progress"]["total"] == 1
            )
            assert client.delete(f"{BASE}/{pipeline}").status_code == 204
        gone = reader.next()
        assert gone.kind == "pipeline_deleted"
        assert reader.closed.wait(5), "the stream ends after pipeline_deleted"


def test_auth_and_errors_come_in_the_error_shape_before_streaming(sessions):
    import httpx

    with sessions() as session, session.begin():
        viewer = create_token(session, name="viewer", admin=False)
    with live_app(sessions) as live:
        pipeline = live.pipeline()
        url = f"{live.url}{BASE}/{pipeline}/events"
        with httpx.Client(timeout=10) as client:
            missing = client.get(url)
            assert (missing.status_code, missing.json()) == (
                401,
                error("unauthorized", "Missing bearer token"),
            )
            bad = client.get(url, headers={"Authorization": "Bearer nope"})
            assert bad.status_code == 401 and bad.json()["error"]["type"] == "unauthorized"
            forbidden = client.get(url, headers={"Authorization": f"Bearer {viewer}"})
            assert (forbidden.status_code, forbidden.json()) == (
                403,
                error("forbidden", "Admin access required"),
            )
            unknown = client.get(f"{live.url}{BASE}/{MISSING_UUID}/events", headers=live.headers)
            assert (unknown.status_code, unknown.json()) == (
                404,
                error("not_found", "Pipeline not found"),
            )
            malformed = client.get(url, headers={**live.headers, "Last-Event-ID": "abc"})
            assert malformed.status_code == 400
            assert malformed.json()["error"]["type"] == "bad_request"
            assert "Last-Event-ID" in malformed.json()["error"]["message"]
        assert (
            live.app.state.event_hub.open_streams == 0
            if hasattr(live.app.state, "event_hub")
            else True
        )


def test_streams_beyond_the_limit_get_a_503_with_retry_after(sessions):
    with live_app(sessions, max_event_streams=2) as live:
        pipeline = live.pipeline()
        first = live.stream(pipeline)
        second = live.stream(pipeline)
        assert (first.status, second.status) == (200, 200)
        third = live.stream(pipeline)
        assert third.status == 503
        assert third.response_headers["retry-after"] == "5"
        body = third.body.decode()
        assert '"service_unavailable"' in body and "VIDPIPE_MAX_EVENT_STREAMS" in body
        first.stop()
        deadline = time.monotonic() + 5
        while live.app.state.event_hub.open_streams > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert live.app.state.event_hub.open_streams == 1
        fourth = live.stream(pipeline)
        assert fourth.status == 200 and fourth.next().kind == "snapshot"
        second.stop()
        fourth.stop()


def test_idle_streams_get_heartbeats(sessions):
    with live_app(sessions, event_heartbeat_seconds=0.2) as live:
        reader = live.stream(live.pipeline())
        reader.next()
        time.sleep(1.0)
        assert reader.comments >= 3
        reader.stop()


def test_a_client_behind_the_kept_events_gets_a_fresh_snapshot(db, monkeypatch):
    monkeypatch.setattr(events, "KEEP_EVENTS", 3)
    monkeypatch.setattr(events, "PRUNE_EVERY", 2)
    with live_app(db) as live:
        pipeline = live.pipeline()
        node = live.node(pipeline, "Voiceover")
        with db() as session:
            start = events.latest_id(session)
        process = live.lifecycle.started(node)
        for step in range(6):
            live.lifecycle.updated(node, {"progress": step}, process)
        with db() as session:
            assert events.oldest_id(session) > start + 1
        reader = live.stream(pipeline, last_event_id=start)
        snapshot = reader.next()
        assert snapshot.kind == "snapshot"
        assert snapshot.data["pipeline"]["nodes"][0]["metadata"]["progress"] == 5
        reader.stop()
        ahead = live.stream(pipeline, last_event_id=10_000_000)
        assert ahead.next().kind == "snapshot"
        ahead.stop()


def test_sqlite_streams_see_writes_of_another_process(sqlite_url):
    engine = make_engine(sqlite_url)
    sessions = make_sessionmaker(engine)
    with live_app(sessions) as live:
        pipeline = live.pipeline()
        node = live.node(pipeline, "Voiceover")
        reader = live.stream(pipeline)
        reader.next()
        script = textwrap.dedent(
            f"""
            from vidpipe_dagster.db.session import make_engine, make_sessionmaker
            from vidpipe_dagster.domain.lifecycle import Lifecycle
            Lifecycle(make_sessionmaker(make_engine({sqlite_url!r}))).started({node!r})
            """
        )
        subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
        started = reader.next(timeout=5)
        assert (started.kind, started.data["node"]["status"]) == ("node", "in_progress")
        reader.stop()
    engine.dispose()


def _idle_work(live: Live, seconds: float) -> tuple[int, int]:
    """Statements the app's engine and the hub's listener sent over ``seconds`` of quiet."""
    hub = live.app.state.event_hub
    engine = live.sessions.kw["bind"]
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        seen.append(statement)

    sa_event.listen(engine, "before_cursor_execute", record)
    listener_before = hub.statements
    try:
        time.sleep(seconds)
    finally:
        sa_event.remove(engine, "before_cursor_execute", record)
    return len(seen), hub.statements - listener_before


def _listener_pids(sessions) -> set[int]:
    """Backends of event listeners on the test database (other tests' apps may linger)."""
    from sqlalchemy import text

    with sessions() as session:
        return set(
            session.execute(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = 'vidpipe-events' "
                    "AND datname = current_database()"
                )
            ).scalars()
        )


def test_a_hundred_idle_streams_cost_no_database_work_beyond_the_heartbeat(db):
    window = 2.0
    postgres = db.kw["bind"].dialect.name == "postgresql"
    earlier = _listener_pids(db) if postgres else set()
    with live_app(db, event_heartbeat_seconds=0.5) as live:
        pipeline = live.pipeline()
        one = [live.stream(pipeline)]
        one[0].next()
        time.sleep(0.5)
        base_engine, base_listener = _idle_work(live, window)
        hundred = one + [live.stream(pipeline) for _ in range(99)]
        for reader in hundred[1:]:
            assert reader.next().kind == "snapshot"
        time.sleep(0.5)
        engine_work, listener_work = _idle_work(live, window)
        assert all(reader.comments >= 2 for reader in hundred)
        assert engine_work == 0 and base_engine == 0
        if postgres:
            assert listener_work == 0
            assert len(_listener_pids(live.sessions) - earlier) == 1
        else:
            assert listener_work <= base_listener + 2
            assert listener_work <= window / live.app.state.settings.event_poll_seconds + 2
        for reader in hundred:
            reader.stop()


def test_the_editor_generation_streams_its_own_node_json(sessions):
    with live_app(sessions, api_contract="editor") as live:
        pipeline = live.pipeline()
        node = live.node(pipeline, "Voiceover")
        reader = live.stream(pipeline)
        snapshot = reader.next()
        assert snapshot.data["pipeline"]["nodes"][0]["is_valid"] is True
        process = live.lifecycle.started(node)
        live.lifecycle.succeeded(node, {"type": "audio", "s3_key": "a.mp3", "size": 3}, process)
        done = reader.until(lambda e: e.kind == "node" and e.data["node"]["status"] == "completed")
        streamed = done[-1].data["node"]
        assert streamed["output"] == {
            "type": "audio",
            "s3Key": "a.mp3",
            "size": 3,
            "processUuid": process,
        }
        assert (streamed["is_valid"], streamed["validation_errors"]) == (True, {})
        reader.stop()
