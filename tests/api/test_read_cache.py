"""The read cache: cached GETs and tokens, dropped by every commit in any process."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable

import pytest
from sqlalchemy import text, update

from api.read_cache import ReadCache
from tests.api.conftest import BASE, build_client, make_token
from tests.api.test_query_counts import counted
from vidpipe_dagster.db.models import ApiToken, Pipeline
from vidpipe_dagster.db.session import make_engine, make_sessionmaker
from vidpipe_dagster.domain.tokens import create_token, revoke_tokens

BOUND_SECONDS = 2.0
"""How long a test waits for another process's commit to show (its notification)."""


def _eventually(check: Callable[[], bool], *, seconds: float = BOUND_SECONDS) -> float:
    """Seconds until ``check()`` held; fails after ``seconds``."""
    began = time.monotonic()
    while not check():
        assert time.monotonic() - began < seconds, "not seen within the bound"
        time.sleep(0.02)
    return time.monotonic() - began


def _live(client) -> None:
    cache = client.app.state.read_cache
    _eventually(lambda: cache.live, seconds=10)


def _in_other_process(database_url: str, code: str) -> None:
    """Run ``code`` (with ``sessions`` bound to the test database) in a new interpreter."""
    prelude = textwrap.dedent(
        f"""
        from vidpipe_dagster.db.session import make_engine, make_sessionmaker
        sessions = make_sessionmaker(make_engine({database_url!r}))
        """
    )
    subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], check=True, timeout=120)


@pytest.fixture
def api(client, admin_headers):
    """A pipeline with one node, its GET cached."""
    created = client.post(BASE, json={"pipeline": {"title": "Cached"}}, headers=admin_headers)
    pipeline = created.json()["pipeline"]
    node = client.post(
        f"{BASE}/{pipeline['uuid']}/nodes",
        json={"node": {"title": "Clip", "type": "asset", "asset": {"type": "video"}}},
        headers=admin_headers,
    ).json()["node"]
    client.get(f"{BASE}/{pipeline['uuid']}", headers=admin_headers)
    _live(client)
    return pipeline, node


def _show(client, headers, pipeline) -> dict:
    response = client.get(f"{BASE}/{pipeline['uuid']}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["pipeline"]


def test_a_cached_get_runs_no_statement(client, admin_headers, engine, api):
    pipeline, node = api
    first = _show(client, admin_headers, pipeline)
    with counted(engine) as statements:
        again = _show(client, admin_headers, pipeline)
    assert statements == []
    assert again == first and again["nodes"][0]["uuid"] == node["uuid"]


def test_a_lifecycle_write_in_another_process_reaches_the_cached_get(
    client, admin_headers, database_url, api
):
    pipeline, node = api
    assert _show(client, admin_headers, pipeline)["nodes"][0]["status"] == "pending"
    _in_other_process(
        database_url,
        f"""
        from vidpipe_dagster.domain.lifecycle import Lifecycle
        Lifecycle(sessions).started({node["uuid"]!r}, {{"stage": "rendering"}})
        """,
    )

    def started() -> bool:
        nodes = _show(client, admin_headers, pipeline)["nodes"]
        return nodes[0]["status"] == "in_progress" and nodes[0]["metadata"]["stage"] == "rendering"

    _eventually(started)


def test_a_title_changed_in_another_process_reaches_the_cached_get(
    client, admin_headers, database_url, api
):
    pipeline, _node = api
    _in_other_process(
        database_url,
        f"""
        from vidpipe_dagster.domain.pipelines import get_pipeline, update_pipeline
        with sessions() as session, session.begin():
            update_pipeline(session, get_pipeline(session, {pipeline["uuid"]!r}), title="Renamed")
        """,
    )
    _eventually(lambda: _show(client, admin_headers, pipeline)["title"] == "Renamed")


def test_get_after_patch_reads_the_patch_at_once(client, admin_headers, api):
    pipeline, node = api
    url = f"{BASE}/{pipeline['uuid']}"
    patched = client.patch(url, json={"pipeline": {"title": "New"}}, headers=admin_headers)
    assert patched.status_code == 200
    assert _show(client, admin_headers, pipeline)["title"] == "New"

    node_url = f"{url}/nodes/{node['uuid']}"
    body = {"node": {"title": "Renamed clip"}}
    assert client.patch(node_url, json=body, headers=admin_headers).status_code == 200
    assert _show(client, admin_headers, pipeline)["nodes"][0]["title"] == "Renamed clip"
    assert client.delete(node_url, headers=admin_headers).status_code == 204
    assert _show(client, admin_headers, pipeline)["nodes"] == []
    assert client.delete(url, headers=admin_headers).status_code == 204
    assert client.get(url, headers=admin_headers).status_code == 404


def test_a_write_by_hand_shows_within_the_cache_seconds(sessions, changes, engine):
    headers = {"Authorization": f"Bearer {make_token(sessions, admin=True)}"}
    with build_client(sessions, changes, api_cache_seconds=0.5) as client:
        pipeline = client.post(BASE, json={"pipeline": {"title": "A"}}, headers=headers).json()
        pipeline = pipeline["pipeline"]
        _show(client, headers, pipeline)
        _live(client)
        _show(client, headers, pipeline)
        with engine.begin() as connection:
            connection.execute(update(Pipeline).values(title="By hand"))
        waited = _eventually(lambda: _show(client, headers, pipeline)["title"] == "By hand")
    assert waited <= 0.5 + 1.0  # the bound, plus requests on a loaded machine


def _used_token(client, sessions, pipeline, name: str) -> dict[str, str]:
    """Headers of a new admin token that the cache has verified."""
    with sessions() as session, session.begin():
        headers = {"Authorization": f"Bearer {create_token(session, name=name, admin=True)}"}
    _show(client, headers, pipeline)
    return headers


def test_a_token_revoked_here_is_refused_at_once(client, sessions, api):
    pipeline, _node = api
    headers = _used_token(client, sessions, pipeline, "here")
    with sessions() as session, session.begin():
        assert revoke_tokens(session, name="here") == 1
    refused = client.get(f"{BASE}/{pipeline['uuid']}", headers=headers)
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == "Invalid or revoked token"


def test_a_token_revoked_in_another_process_is_refused_within_the_bound(
    client, sessions, database_url, api
):
    pipeline, _node = api
    headers = _used_token(client, sessions, pipeline, "there")
    _in_other_process(
        database_url,
        """
        from vidpipe_dagster.domain.tokens import revoke_tokens
        with sessions() as session, session.begin():
            assert revoke_tokens(session, name="there") == 1
        """,
    )
    url = f"{BASE}/{pipeline['uuid']}"
    _eventually(lambda: client.get(url, headers=headers).status_code == 401)


def test_a_token_revoked_by_hand_is_refused_within_the_token_seconds(sessions, changes):
    token = make_token(sessions, admin=True)
    headers = {"Authorization": f"Bearer {token}"}
    with build_client(sessions, changes, token_cache_seconds=0.5) as client:
        assert client.get(BASE, headers=headers).status_code == 200
        _live(client)
        assert client.get(BASE, headers=headers).status_code == 200
        with sessions() as session, session.begin():
            session.execute(update(ApiToken).values(revoked_at=text("now()")))
        waited = _eventually(lambda: client.get(BASE, headers=headers).status_code == 401)
    assert waited <= 0.5 + 1.0  # the bound, plus requests on a loaded machine


def test_sqlite_reads_through_without_a_cache(sqlite_url, changes):
    sessions = make_sessionmaker(make_engine(sqlite_url))
    headers = {"Authorization": f"Bearer {make_token(sessions, admin=True)}"}
    with build_client(sessions, changes) as client:
        assert not client.app.state.read_cache.enabled
        pipeline = client.post(BASE, json={"pipeline": {"title": "A"}}, headers=headers).json()
        pipeline = pipeline["pipeline"]
        assert _show(client, headers, pipeline)["title"] == "A"
        with sessions() as session, session.begin():
            session.execute(update(Pipeline).values(title="Elsewhere"))
        assert _show(client, headers, pipeline)["title"] == "Elsewhere"


def test_a_read_that_overlapped_a_change_is_not_kept(engine):
    cache = ReadCache(engine=engine, body_seconds=5, token_seconds=5)
    try:
        assert cache.body("p") is None
        _eventually(lambda: cache.live, seconds=10)
        before = cache.ticket()
        cache.drop({"p"})
        cache.keep("p", before, b"old")
        assert cache.body("p") is None
        cache.keep("p", cache.ticket(), b"new")
        assert cache.body("p") == b"new"
        cache.drop({"other"})
        assert cache.body("p") == b"new"
    finally:
        cache.stop()
    assert not cache.live


def test_requests_past_half_life_start_one_background_read(engine):
    """Every request served while an entry is past half its lifetime asks for its
    successor; one read is made, however many ask before it begins."""
    cache = ReadCache(engine=engine, body_seconds=5, token_seconds=5)
    reads: list[object] = []

    def read(ticket):
        reads.append(ticket)
        return b"next"

    async def burst() -> None:
        for _ in range(50):
            cache.refresh("pipeline:p", watch="p", read=read)
        while cache._tasks:
            await asyncio.sleep(0.01)
        cache.refresh("pipeline:p", watch="p", read=read)  # a later half-life: a new read
        while cache._tasks:
            await asyncio.sleep(0.01)

    try:
        asyncio.run(burst())
    finally:
        cache.stop()
    assert len(reads) == 2
