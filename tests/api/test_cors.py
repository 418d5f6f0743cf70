"""CORS: listed origins (and localhost under ``vidpipe dev``) reach every route, errors too."""

from __future__ import annotations

import socket

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from tests.api.conftest import BASE, MISSING_UUID, ChangeRecorder, build_client
from vidpipe_dagster.settings import Settings

EDITOR = "http://localhost:3062"
ROUTES = [
    ("GET", BASE),
    ("POST", BASE),
    ("PATCH", f"{BASE}/{MISSING_UUID}"),
    ("DELETE", f"{BASE}/{MISSING_UUID}/nodes/{MISSING_UUID}"),
    ("POST", f"{BASE}/{MISSING_UUID}/nodes/{MISSING_UUID}/execute"),
    ("GET", f"{BASE}/{MISSING_UUID}/nodes/{MISSING_UUID}/output"),
]


def _preflight(client, path: str, method: str, origin: str):
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )


@pytest.fixture
def cors_client(sessions):
    with build_client(
        sessions, ChangeRecorder(), cors_origins=f"{EDITOR}, https://admin.example/"
    ) as client:
        yield client


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_preflight_is_answered_without_a_token(cors_client, method, path) -> None:
    response = _preflight(cors_client, path, method, EDITOR)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == EDITOR
    assert method in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed


def test_an_origin_not_listed_gets_no_cors_headers(cors_client, admin_headers) -> None:
    preflight = _preflight(cors_client, BASE, "GET", "http://evil.example")
    assert "access-control-allow-origin" not in preflight.headers
    response = cors_client.get(BASE, headers={**admin_headers, "Origin": "http://evil.example"})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


def test_errors_carry_the_cors_headers(cors_client, admin_headers) -> None:
    origin = {"Origin": "https://admin.example"}
    unauthorized = cors_client.get(BASE, headers=origin)
    missing = cors_client.get(f"{BASE}/{MISSING_UUID}", headers={**admin_headers, **origin})
    invalid = cors_client.post(BASE, json={"pipeline": {}}, headers={**admin_headers, **origin})
    for response, status in ((unauthorized, 401), (missing, 404), (invalid, 422)):
        assert response.status_code == status
        assert response.headers["access-control-allow-origin"] == "https://admin.example"
        assert response.json()["error"]["message"]


def test_a_503_carries_the_cors_headers(sessions, admin_headers) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    recorder = ChangeRecorder()
    with build_client(
        sessions, recorder, cors_origins=EDITOR, dagster_url=f"http://127.0.0.1:{port}"
    ) as client:
        pipeline = client.post(
            BASE, json={"pipeline": {"title": "P"}}, headers=admin_headers
        ).json()["pipeline"]
        node = client.post(
            f"{BASE}/{pipeline['uuid']}/nodes",
            json={
                "node": {"title": "T", "type": "asset", "asset": {"type": "text", "content": "x"}}
            },
            headers=admin_headers,
        ).json()["node"]
        response = client.post(
            f"{BASE}/{pipeline['uuid']}/nodes/{node['uuid']}/execute",
            headers={**admin_headers, "Origin": EDITOR},
        )
    assert response.status_code == 503
    assert response.headers["access-control-allow-origin"] == EDITOR


def test_no_origin_is_allowed_by_default(client) -> None:
    response = _preflight(client, BASE, "GET", EDITOR)
    assert response.status_code == 405
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("http://localhost:3062", True),
        ("http://127.0.0.1:5173", True),
        ("http://localhost", True),
        ("http://localhost.evil.example:3062", False),
        ("https://localhost:3062", False),
    ],
)
def test_dev_allows_localhost_on_any_port(sessions, origin, allowed) -> None:
    with build_client(sessions, ChangeRecorder(), cors_allow_localhost=True) as client:
        response = _preflight(client, BASE, "PATCH", origin)
    assert ("access-control-allow-origin" in response.headers) is allowed
    if allowed:
        assert response.headers["access-control-allow-origin"] == origin


def test_an_unexpected_500_carries_the_cors_headers_and_the_error_shape(
    sessions, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(
        settings=Settings(cors_origins=EDITOR), sessions=sessions, notify_change=ChangeRecorder()
    )

    def broken() -> None:
        raise RuntimeError("a bug with secret details")

    app.add_api_route("/v1/broken", broken)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/v1/broken", headers={"Origin": EDITOR})
    assert response.status_code == 500
    assert response.headers["access-control-allow-origin"] == EDITOR
    assert response.json() == {
        "error": {"type": "internal_error", "message": "Internal server error"}
    }
    assert "secret details" not in response.text
    assert any("unhandled error on GET /v1/broken" in r.getMessage() for r in caplog.records)
