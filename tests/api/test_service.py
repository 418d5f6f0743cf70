"""Unauthenticated service routes: health, OpenAPI and the docs page."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.main import create_app
from tests.api.conftest import BASE
from vidpipe_dagster.db.session import make_engine, make_sessionmaker
from vidpipe_dagster.settings import Settings


def test_healthz_needs_no_token(client):
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_healthz_reports_an_unreachable_database():
    engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/none", pool_pre_ping=False)
    app = create_app(settings=Settings(), sessions=make_sessionmaker(engine))
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/healthz")
    engine.dispose()
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    body = response.json()
    assert set(body) == {"error"} and body["error"]["type"] == "service_unavailable"
    assert "VIDPIPE_DATABASE_URL" in body["error"]["message"]


def test_openapi_documents_every_route(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    expected = {
        BASE: {"get", "post"},
        BASE + "/{pipeline_uuid}": {"get", "patch", "delete"},
        BASE + "/{pipeline_uuid}/nodes": {"get", "post"},
        BASE + "/{pipeline_uuid}/nodes/{node_uuid}": {"get", "patch", "delete"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
    create = paths[BASE]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert create["required"] == ["pipeline"]
    assert "title" in create["properties"]["pipeline"]["properties"]
    node_body = paths[BASE + "/{pipeline_uuid}/nodes"]["post"]["requestBody"]
    assert node_body["content"]["application/json"]["schema"]["required"] == ["node"]


def test_docs_page_needs_no_token(client):
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in response.text


def test_unknown_route_is_404_in_the_error_shape(client, admin_headers):
    for path in ("/nope", "/v1/admin/video_production", f"{BASE}/x/nodes/y/z"):
        response = client.get(path, headers=admin_headers)
        assert response.status_code == 404
        assert response.json() == {"error": {"type": "not_found", "message": "Route not found"}}
