"""Pipeline routes: exact bodies for create, show, list (with pagination), update and delete."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from tests.api.conftest import BASE, MISSING_UUID, NODE_KEYS, PIPELINE_KEYS, error
from vidpipe_dagster.db.models import Node, Pipeline

PIPELINE_NOT_FOUND = error("not_found", "Pipeline not found")


def _timestamp(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None
    return parsed


def _insert_pipelines(sessions, count: int, *, first: int = 0) -> list[str]:
    """Insert ``count`` pipelines updated a minute apart from minute ``first``; newest first."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [
        Pipeline(
            id=uuid.uuid4(),
            title=f"P{i:03d}",
            created_at=start,
            updated_at=start + timedelta(minutes=i),
        )
        for i in range(first, first + count)
    ]
    with sessions() as session, session.begin():
        session.add_all(rows)
    return [str(row.id) for row in reversed(rows)]


def test_create_returns_201_with_every_field(client, admin_headers, changes):
    body = {
        "pipeline": {
            "title": "Ruby Course",
            "version": "2.1",
            "config": {"storage": {"bucket": "jiki-videos"}, "camelCase": [1, None, True]},
            "metadata": {"totalCost": 0, "owner": {"name": "ana"}},
        }
    }
    response = client.post(BASE, json=body, headers=admin_headers)
    assert response.status_code == 201
    assert set(response.json()) == {"pipeline"}
    pipeline = response.json()["pipeline"]
    assert set(pipeline) == PIPELINE_KEYS
    uuid.UUID(pipeline["uuid"])
    assert pipeline["title"] == "Ruby Course"
    assert pipeline["version"] == "2.1"
    assert pipeline["config"] == body["pipeline"]["config"]
    assert pipeline["metadata"] == body["pipeline"]["metadata"]
    created = _timestamp(pipeline["created_at"])
    assert abs(created - datetime.now(UTC)) < timedelta(minutes=5)
    assert _timestamp(pipeline["updated_at"]) >= created


def test_create_defaults(client, admin_headers):
    response = client.post(BASE, json={"pipeline": {"title": "Bare"}}, headers=admin_headers)
    assert response.status_code == 201
    pipeline = response.json()["pipeline"]
    assert (pipeline["version"], pipeline["config"], pipeline["metadata"]) == ("1.0", {}, {})


def test_create_ignores_unknown_keys_and_null_optionals(client, admin_headers):
    body = {"pipeline": {"title": "T", "version": None, "config": None, "uuid": MISSING_UUID}}
    response = client.post(BASE, json=body, headers=admin_headers)
    assert response.status_code == 201
    pipeline = response.json()["pipeline"]
    assert pipeline["uuid"] != MISSING_UUID
    assert (pipeline["version"], pipeline["config"]) == ("1.0", {})


def test_a_numeric_version_is_stored_as_text(client, admin_headers):
    created = client.post(
        BASE, json={"pipeline": {"title": "T", "version": 1}}, headers=admin_headers
    )
    assert created.status_code == 201, created.text
    pipeline = created.json()["pipeline"]
    assert pipeline["version"] == "1"

    patched = client.patch(
        f"{BASE}/{pipeline['uuid']}", json={"pipeline": {"version": 2.5}}, headers=admin_headers
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["pipeline"]["version"] == "2.5"
    flag = client.post(
        BASE, json={"pipeline": {"title": "T", "version": True}}, headers=admin_headers
    )
    assert flag.status_code == 422


def test_create_rejects_blank_fields(client, admin_headers, sessions, changes):
    cases = [
        ({}, "title: Field required"),
        ({"title": ""}, "Title can't be blank"),
        ({"title": "   "}, "Title can't be blank"),
        ({"title": "T", "version": ""}, "Version can't be blank"),
    ]
    for fields, message in cases:
        response = client.post(BASE, json={"pipeline": fields}, headers=admin_headers)
        assert response.status_code == 422
        assert response.json() == error("validation_error", message)
    with sessions() as session:
        assert session.scalar(select(func.count(Pipeline.id))) == 0
    assert changes.calls == 0


def test_show_includes_nodes_in_creation_order(client, admin_headers, api):
    pipeline = api.pipeline("With nodes")
    created = [api.node(pipeline, title=f"N{i}") for i in range(5)]
    other = api.pipeline("Other")
    api.node(other, title="Elsewhere")

    response = client.get(f"{BASE}/{pipeline['uuid']}", headers=admin_headers)
    assert response.status_code == 200
    shown = response.json()["pipeline"]
    assert set(shown) == PIPELINE_KEYS | {"nodes"}
    assert [node["uuid"] for node in shown["nodes"]] == [node["uuid"] for node in created]
    for node in shown["nodes"]:
        assert set(node) == NODE_KEYS
        assert node == api.get_node(node)
    assert {key: shown[key] for key in ("uuid", "title", "version", "config")} == {
        key: pipeline[key] for key in ("uuid", "title", "version", "config")
    }


def test_show_empty_pipeline_has_empty_nodes(client, admin_headers, api):
    pipeline = api.pipeline()
    response = client.get(f"{BASE}/{pipeline['uuid']}", headers=admin_headers)
    assert response.status_code == 200
    assert response.json()["pipeline"]["nodes"] == []


def test_metadata_progress_counts_nodes(client, admin_headers, api, set_row):
    pipeline = api.pipeline(metadata={"totalCost": 0, "note": "kept"})
    first = api.node(pipeline)
    api.node(pipeline)
    set_row(first["uuid"], status="completed")
    api.node(pipeline)
    metadata = client.get(f"{BASE}/{pipeline['uuid']}", headers=admin_headers).json()["pipeline"][
        "metadata"
    ]
    assert metadata["note"] == "kept"
    assert metadata["totalCost"] == 0
    assert metadata["progress"] == {
        "completed": 1,
        "in_progress": 0,
        "pending": 2,
        "failed": 0,
        "total": 3,
    }
    assert api.delete_node(first).status_code == 204
    metadata = client.get(f"{BASE}/{pipeline['uuid']}", headers=admin_headers).json()["pipeline"][
        "metadata"
    ]
    assert metadata["progress"]["total"] == 2
    assert metadata["progress"]["completed"] == 0


def test_list_is_newest_updated_first_without_nodes(client, admin_headers, api):
    first = api.pipeline("first")
    second = api.pipeline("second")
    third = api.pipeline("third")
    api.node(first)
    response = client.get(BASE, headers=admin_headers)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"results", "meta"}
    assert [p["uuid"] for p in body["results"]] == [third["uuid"], second["uuid"], first["uuid"]]
    for pipeline in body["results"]:
        assert set(pipeline) == PIPELINE_KEYS
    assert body["meta"] == {"current_page": 1, "total_count": 3, "total_pages": 1}

    patched = client.patch(
        f"{BASE}/{first['uuid']}", json={"pipeline": {"title": "first!"}}, headers=admin_headers
    )
    assert patched.status_code == 200
    order = [p["uuid"] for p in client.get(BASE, headers=admin_headers).json()["results"]]
    assert order == [first["uuid"], third["uuid"], second["uuid"]]


def test_list_empty(client, admin_headers):
    response = client.get(BASE, headers=admin_headers)
    assert response.status_code == 200
    assert response.json() == {
        "results": [],
        "meta": {"current_page": 1, "total_count": 0, "total_pages": 0},
    }


def test_list_defaults_to_25_a_page(client, admin_headers, sessions):
    newest_first = _insert_pipelines(sessions, 30)
    first = client.get(BASE, headers=admin_headers).json()
    assert [p["uuid"] for p in first["results"]] == newest_first[:25]
    assert first["meta"] == {"current_page": 1, "total_count": 30, "total_pages": 2}
    second = client.get(BASE, params={"page": 2}, headers=admin_headers).json()
    assert [p["uuid"] for p in second["results"]] == newest_first[25:]
    assert second["meta"] == {"current_page": 2, "total_count": 30, "total_pages": 2}


def test_per_is_capped_at_100(client, admin_headers, sessions):
    newest_first = _insert_pipelines(sessions, 105)
    for per in ("100", "101", "500"):
        body = client.get(BASE, params={"per": per}, headers=admin_headers).json()
        assert [p["uuid"] for p in body["results"]] == newest_first[:100]
        assert body["meta"] == {"current_page": 1, "total_count": 105, "total_pages": 2}
    body = client.get(BASE, params={"per": 500, "page": 2}, headers=admin_headers).json()
    assert [p["uuid"] for p in body["results"]] == newest_first[100:]
    assert body["meta"] == {"current_page": 2, "total_count": 105, "total_pages": 2}


def test_total_pages_for_empty_exact_and_remainder(client, admin_headers, sessions):
    inserted: list[str] = []
    for count, per, pages in [(0, 5, 0), (1, 5, 1), (10, 5, 2), (11, 5, 3), (11, 1, 11)]:
        added = _insert_pipelines(sessions, count - len(inserted), first=len(inserted))
        inserted = added + inserted
        page = max(pages, 1)
        body = client.get(BASE, params={"per": per, "page": page}, headers=admin_headers).json()
        assert body["meta"] == {"current_page": page, "total_count": count, "total_pages": pages}
        assert [p["uuid"] for p in body["results"]] == inserted[(page - 1) * per : page * per]


def test_page_past_the_end_is_empty_with_meta(client, admin_headers, sessions):
    _insert_pipelines(sessions, 7)
    response = client.get(BASE, params={"page": 9, "per": 5}, headers=admin_headers)
    assert response.status_code == 200
    assert response.json() == {
        "results": [],
        "meta": {"current_page": 9, "total_count": 7, "total_pages": 2},
    }


def test_bad_paging_parameters_are_422(client, admin_headers):
    cases = [
        ({"page": "0"}, "page must be a positive integer"),
        ({"page": "-1"}, "page must be a positive integer"),
        ({"page": "abc"}, "page must be a positive integer"),
        ({"page": "1.5"}, "page must be a positive integer"),
        ({"page": "9" * 5000}, "page must be a positive integer"),
        ({"per": "abc"}, "per must be a positive integer"),
        ({"per": "0"}, "per must be a positive integer"),
        ({"per": "-5"}, "per must be a positive integer"),
        ({"page": "0", "per": "abc"}, "page must be a positive integer"),
    ]
    for params, message in cases:
        response = client.get(BASE, params=params, headers=admin_headers)
        assert response.status_code == 422, params
        assert response.json() == error("validation_error", message)


def test_page_beyond_any_database_offset_is_empty(client, admin_headers, sessions):
    _insert_pipelines(sessions, 2)
    response = client.get(BASE, params={"page": "9" * 30, "per": 100}, headers=admin_headers)
    assert response.status_code == 200
    assert response.json() == {
        "results": [],
        "meta": {"current_page": int("9" * 30), "total_count": 2, "total_pages": 1},
    }


def test_update_changes_only_sent_fields(client, admin_headers, api, changes):
    pipeline = api.pipeline(version="1.0", config={"a": 1, "b": 2}, metadata={"m": 1})
    response = client.patch(
        f"{BASE}/{pipeline['uuid']}",
        json={"pipeline": {"config": {"b": 3}, "version": "1.1"}},
        headers=admin_headers,
    )
    assert response.status_code == 200
    assert set(response.json()) == {"pipeline"}
    updated = response.json()["pipeline"]
    assert set(updated) == PIPELINE_KEYS
    assert updated["uuid"] == pipeline["uuid"]
    assert updated["title"] == pipeline["title"]
    assert updated["version"] == "1.1"
    assert updated["config"] == {"b": 3}
    assert updated["metadata"] == {"m": 1}
    assert updated["created_at"] == pipeline["created_at"]
    assert _timestamp(updated["updated_at"]) > _timestamp(pipeline["updated_at"])
    shown = client.get(f"{BASE}/{pipeline['uuid']}", headers=admin_headers).json()["pipeline"]
    assert {k: shown[k] for k in PIPELINE_KEYS} == updated


def test_update_with_empty_object_changes_nothing(client, admin_headers, api):
    pipeline = api.pipeline(config={"a": 1})
    response = client.patch(
        f"{BASE}/{pipeline['uuid']}", json={"pipeline": {}}, headers=admin_headers
    )
    assert response.status_code == 200
    updated = response.json()["pipeline"]
    assert {k: updated[k] for k in ("title", "version", "config", "metadata")} == {
        k: pipeline[k] for k in ("title", "version", "config", "metadata")
    }


def test_update_rejects_null_and_blank(client, admin_headers, api, changes):
    pipeline = api.pipeline("Keep", config={"a": 1})
    before = changes.calls
    cases = [
        ({"title": None}, "Title can't be null"),
        ({"title": ""}, "Title can't be blank"),
        ({"version": None}, "Version can't be null"),
        ({"config": None}, "Config can't be null"),
        ({"metadata": None}, "Metadata can't be null"),
        ({"title": "New", "metadata": None}, "Metadata can't be null"),
    ]
    for fields, message in cases:
        response = client.patch(
            f"{BASE}/{pipeline['uuid']}", json={"pipeline": fields}, headers=admin_headers
        )
        assert response.status_code == 422
        assert response.json() == error("validation_error", message)
    shown = client.get(f"{BASE}/{pipeline['uuid']}", headers=admin_headers).json()["pipeline"]
    assert (shown["title"], shown["config"], shown["updated_at"]) == (
        "Keep",
        {"a": 1},
        pipeline["updated_at"],
    )
    assert changes.calls == before


def test_delete_cascades_to_nodes(client, admin_headers, api, sessions):
    doomed = api.pipeline("doomed")
    for _ in range(3):
        api.node(doomed)
    kept = api.pipeline("kept")
    kept_node = api.node(kept)

    response = client.delete(f"{BASE}/{doomed['uuid']}", headers=admin_headers)
    assert response.status_code == 204
    assert response.content == b""
    assert client.get(f"{BASE}/{doomed['uuid']}", headers=admin_headers).json() == (
        PIPELINE_NOT_FOUND
    )
    with sessions() as session:
        remaining = session.scalars(select(Node.id)).all()
    assert [str(node_id) for node_id in remaining] == [kept_node["uuid"]]
    assert api.get_node(kept_node)["uuid"] == kept_node["uuid"]
    again = client.delete(f"{BASE}/{doomed['uuid']}", headers=admin_headers)
    assert (again.status_code, again.json()) == (404, PIPELINE_NOT_FOUND)


NOT_PIPELINES = [MISSING_UUID, "not-a-uuid", "123", "0" * 200, "%00", str(uuid.uuid4()) + "x"]


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_unknown_pipeline_is_404(client, admin_headers, api, method):
    api.pipeline()
    kwargs = {"json": {"pipeline": {"title": "T"}}} if method == "PATCH" else {}
    for value in NOT_PIPELINES:
        response = client.request(method, f"{BASE}/{value}", headers=admin_headers, **kwargs)
        assert response.status_code == 404, value
        assert response.json() == PIPELINE_NOT_FOUND
