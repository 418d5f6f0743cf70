"""The number of SQL statements a read takes does not grow with the number of nodes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event

from tests.api.conftest import BASE, build_client
from vidpipe_dagster.db.models import Node, Pipeline


@contextmanager
def counted(engine) -> Iterator[list[str]]:
    """Collect every statement ``engine`` executes inside the block."""
    statements: list[str] = []

    def record(_conn, _cursor, statement, _params, _context, _many) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
def client(sessions, changes):
    """The app with its read cache off: these tests count what a read asks the database
    (a cached read asks nothing: ``tests/api/test_read_cache.py``)."""
    with build_client(sessions, changes, api_cache_seconds=0, token_cache_seconds=0) as client:
        yield client


def _event_read(statement: str) -> bool:
    """The commit's one read of the changed nodes for their live-status events."""
    return "video_production_nodes.output" in statement


def _pipeline_with_nodes(sessions, count: int) -> str:
    pipeline_id = uuid.uuid4()
    start = datetime(2024, 1, 1, tzinfo=UTC)
    with sessions() as session, session.begin():
        session.add(Pipeline(id=pipeline_id, title=f"{count} nodes"))
        session.flush()
        ids = [uuid.uuid4() for _ in range(count)]
        session.add_all(
            Node(
                id=node_id,
                pipeline_id=pipeline_id,
                title=f"N{i}",
                type="merge-videos" if i else "asset",
                inputs={"segments": [str(ids[0]), str(ids[0])]} if i else {},
                metadata_={"i": i},
                output={"s3_key": f"k{i}"} if i % 2 else None,
                created_at=start + timedelta(seconds=i),
            )
            for i, node_id in enumerate(ids)
        )
    return str(pipeline_id)


@pytest.mark.parametrize("route", ["{p}", "{p}/nodes"], ids=["show-pipeline", "list-nodes"])
def test_reads_take_the_same_statements_for_5_and_200_nodes(
    client, admin_headers, sessions, engine, route
):
    counts = {}
    for size in (5, 200):
        pipeline_uuid = _pipeline_with_nodes(sessions, size)
        url = f"{BASE}/{route.format(p=pipeline_uuid)}"
        client.get(url, headers=admin_headers)
        with counted(engine) as statements:
            response = client.get(url, headers=admin_headers)
        assert response.status_code == 200
        body = response.json()
        nodes = body["pipeline"]["nodes"] if "pipeline" in body else body["nodes"]
        assert [n["title"] for n in nodes] == [f"N{i}" for i in range(size)]
        counts[size] = len(statements)
    assert counts[5] == counts[200]
    assert counts[5] <= 4


def test_list_pipelines_takes_the_same_statements_for_5_and_60_pipelines(
    client, admin_headers, sessions, engine
):
    counts = {}
    # the token's first use in a minute records last_used_at: not part of what is counted
    client.get(BASE, headers=admin_headers)
    for total, added in ((5, 5), (60, 55)):
        for _ in range(added):
            _pipeline_with_nodes(sessions, 2)
        with counted(engine) as statements:
            response = client.get(BASE, params={"per": 100}, headers=admin_headers)
        assert len(response.json()["results"]) == total
        counts[total] = len(statements)
    assert counts[5] == counts[60]


def test_input_references_are_checked_in_one_query(client, api, sessions, engine):
    pipeline = {"uuid": _pipeline_with_nodes(sessions, 40)}
    sources = [
        n["uuid"]
        for n in client.get(f"{BASE}/{pipeline['uuid']}/nodes", headers=api.headers).json()["nodes"]
    ]
    counts = {}
    for size in (2, 40):
        body = {
            "title": "Anim",
            "type": "generate-animation",
            "inputs": {"prompt": sources[: size // 2], "referenceImage": sources[size // 2 : size]},
        }
        with counted(engine) as statements:
            response = api.create_node(pipeline["uuid"], body)
        assert response.status_code == 201, response.text
        node_queries = [
            s
            for s in statements
            if "video_production_nodes" in s and " IN " in s and not _event_read(s)
        ]
        assert len(node_queries) == 1, node_queries
        counts[size] = len(statements)
        with counted(engine) as statements:
            patched = api.patch_node(
                response.json()["node"], {"inputs": {"prompt": sources[:size]}}
            )
        assert patched.status_code == 200, patched.text
        counts[f"patch-{size}"] = len(statements)
    assert counts[2] == counts[40]
    assert counts["patch-2"] == counts["patch-40"]
