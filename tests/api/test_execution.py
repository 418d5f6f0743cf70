"""Execute and output routes, without a Dagster webserver: readiness, 503, redirects."""

from __future__ import annotations

import socket
import uuid

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from tests.api.conftest import BASE, error
from vidpipe_dagster.resources.storage import LocalStorage
from vidpipe_dagster.settings import Settings


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def storage(tmp_path):
    return LocalStorage(tmp_path / "media")


@pytest.fixture
def offline_client(sessions, storage):
    settings = Settings(
        dagster_url=f"http://127.0.0.1:{_closed_port()}", media_signing_key="test-media-key"
    )
    app = create_app(settings=settings, sessions=sessions, storage=lambda: storage)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_execute_node_503_when_dagster_is_down(offline_client, admin_headers, api):
    pipeline = api.pipeline()
    node = api.node(pipeline, asset={"type": "text", "content": "hi"})
    response = offline_client.post(
        f"{BASE}/{pipeline['uuid']}/nodes/{node['uuid']}/execute", headers=admin_headers
    )
    assert response.status_code == 503
    body = response.json()["error"]
    assert body["type"] == "service_unavailable"
    assert "Dagster is unreachable" in body["message"] and "VIDPIPE_DAGSTER_URL" in body["message"]


def test_execute_node_422_lists_reasons(offline_client, admin_headers, api, set_row):
    pipeline = api.pipeline()
    a = api.node(pipeline, title="Intro")
    b = api.node(pipeline, title="Outro")
    merge = api.node(
        pipeline, type="merge-videos", title="Merge", inputs={"segments": [a["uuid"], b["uuid"]]}
    )
    set_row(a["uuid"], status="completed")
    response = offline_client.post(
        f"{BASE}/{pipeline['uuid']}/nodes/{merge['uuid']}/execute", headers=admin_headers
    )
    assert response.status_code == 422
    assert response.json() == error(
        "validation_error", f"Input node 'Outro' ({b['uuid']}) is pending, not completed"
    )


def test_execute_pipeline_body_errors(offline_client, admin_headers, api):
    pipeline = api.pipeline()
    api.node(pipeline)
    url = f"{BASE}/{pipeline['uuid']}/execute"
    response = offline_client.post(url, json={"only": "sometimes"}, headers=admin_headers)
    assert response.status_code == 422
    assert "only must be one of" in response.json()["error"]["message"]
    response = offline_client.post(url, json={"node_uuids": "x"}, headers=admin_headers)
    assert response.status_code == 422
    response = offline_client.post(url, content=b"{", headers=admin_headers)
    assert response.status_code == 400
    assert offline_client.post(url, headers=admin_headers).status_code == 503


def test_execute_requires_admin(offline_client, user_headers, api):
    pipeline = api.pipeline()
    node = api.node(pipeline)
    for url in (
        f"{BASE}/{pipeline['uuid']}/execute",
        f"{BASE}/{pipeline['uuid']}/nodes/{node['uuid']}/execute",
    ):
        assert offline_client.post(url).status_code == 401
        assert offline_client.post(url, headers=user_headers).status_code == 403
    url = f"{BASE}/{pipeline['uuid']}/nodes/{node['uuid']}/output"
    assert offline_client.get(url).status_code == 401
    assert offline_client.get(url, headers=user_headers).status_code == 403


def test_output_redirects_to_the_stored_media(offline_client, admin_headers, api, set_row, storage):
    pipeline = api.pipeline()
    node = api.node(pipeline)
    url = f"{BASE}/{pipeline['uuid']}/nodes/{node['uuid']}/output"
    response = offline_client.get(url, headers=admin_headers, follow_redirects=False)
    assert response.status_code == 404
    assert response.json() == error("not_found", "Node has no output yet")

    key = f"pipelines/{pipeline['uuid']}/nodes/{node['uuid']}/p1.txt"
    set_row(node["uuid"], status="completed", output={"type": "text", "s3_key": key, "size": 5})
    response = offline_client.get(url, headers=admin_headers, follow_redirects=False)
    assert response.status_code == 404
    assert response.json() == error("not_found", "Node output is missing from storage")

    storage.put_bytes(key, b"hello", content_type="text/plain")
    response = offline_client.get(url, headers=admin_headers, follow_redirects=False)
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith("http://testserver/v1/media/" + key + "?expires=")
    media = offline_client.get(location)
    assert (media.status_code, media.content) == (200, b"hello")
    assert media.headers["content-type"].startswith("text/plain")


def test_a_failed_launch_leaves_no_claim_and_a_stale_claim_expires(
    offline_client, admin_headers, api, set_row, sessions
):
    """Dagster down: each execute is a 503, never a 409 from the claim the last one took.
    A claim left by a request that died mid-launch stops counting after CLAIM_SECONDS."""
    from datetime import timedelta

    from vidpipe_dagster.db.models import Node, utcnow
    from vidpipe_dagster.domain.launches import CLAIM_SECONDS, LAUNCHING_KEY

    pipeline = api.pipeline()
    node = api.node(pipeline, asset={"type": "text", "content": "hi"})
    url = f"{BASE}/{pipeline['uuid']}/nodes/{node['uuid']}/execute"
    for _ in range(2):
        assert offline_client.post(url, headers=admin_headers).status_code == 503
    with sessions() as session:
        assert LAUNCHING_KEY not in (session.get(Node, uuid.UUID(node["uuid"])).metadata_ or {})

    fresh = utcnow() - timedelta(seconds=5)
    set_row(node["uuid"], metadata_={LAUNCHING_KEY: {"token": "t", "at": fresh.isoformat()}})
    response = offline_client.post(url, headers=admin_headers)
    assert response.status_code == 409
    assert "being launched by another execute request" in response.json()["error"]["message"]

    old = utcnow() - timedelta(seconds=CLAIM_SECONDS + 1)
    set_row(node["uuid"], metadata_={LAUNCHING_KEY: {"token": "t", "at": old.isoformat()}})
    assert offline_client.post(url, headers=admin_headers).status_code == 503


class RecordingLauncher:
    """Records what the execute route asks Dagster for; no run is in flight."""

    def __init__(self) -> None:
        self.launches: list[dict] = []

    def active_runs(self, **kwargs) -> dict:
        return {}

    def launch(self, **kwargs) -> str:
        self.launches.append(kwargs)
        return "run-1"


def test_execute_tags_the_run_with_the_pipeline_and_node_titles(sessions, admin_headers, api):
    launcher = RecordingLauncher()
    app = create_app(
        settings=Settings(media_signing_key="k"), sessions=sessions, launcher=lambda: launcher
    )
    pipeline = api.pipeline(title="Spring launch")
    node = api.node(pipeline, title="Hook line", asset={"type": "text", "content": "hi"})
    with TestClient(app) as client:
        response = client.post(
            f"{BASE}/{pipeline['uuid']}/nodes/{node['uuid']}/execute", headers=admin_headers
        )
    assert response.status_code == 202, response.text
    (launch,) = launcher.launches
    assert launch["tags"] == {
        "vidpipe/pipeline": pipeline["uuid"],
        "vidpipe/pipeline_title": "Spring launch",
        "vidpipe/nodes": "Hook line",
        "vidpipe/source": "api",
    }
    assert launch["names"].key_path(node["uuid"]) == ["spring_launch", "hook_line"]
