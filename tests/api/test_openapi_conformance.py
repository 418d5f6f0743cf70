"""The OpenAPI document against the app: schemathesis generates requests from the document
and checks that every answer is one it declares (status, content type, headers, body).

The app runs in process on the test PostgreSQL database, with an admin token, a pipeline
holding a ready text node (so the success paths are reached, not only the 404s) and a
Dagster URL nobody listens on (an execute answers its declared 503; nothing is launched).
Each operation is tried with a few generated cases, once as generated and once with the
real pipeline's and node's UUIDs in its path.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.main import create_app
from tests.api.conftest import BASE, make_token
from vidpipe_dagster.resources.storage import LocalStorage
from vidpipe_dagster.settings import Settings

pytestmark = pytest.mark.timeout(300)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class World:
    """What the generated requests run against."""

    headers: dict[str, str]
    pipeline_uuid: str
    node_uuid: str


def _app(sessions, tmp_path, contract: str):
    app_settings = Settings(
        api_contract=contract,
        dagster_url=f"http://127.0.0.1:{_closed_port()}",
        media_signing_key="conformance-key",
    )
    storage = LocalStorage(tmp_path / "media")
    return create_app(
        settings=app_settings,
        sessions=sessions,
        notify_change=lambda _uuid: None,
        storage=lambda: storage,
    )


@pytest.fixture(params=["seed", "editor"])
def world(request, sessions, tmp_path):
    """The app of one contract generation, its document, a token and real rows."""
    from fastapi.testclient import TestClient

    app = _app(sessions, tmp_path, request.param)
    headers = {"Authorization": f"Bearer {make_token(sessions, admin=True)}"}
    with TestClient(app) as client:
        pipeline = client.post(BASE, json={"pipeline": {"title": "Intro"}}, headers=headers)
        uuid = pipeline.json()["pipeline"]["uuid"]
        node = client.post(
            f"{BASE}/{uuid}/nodes",
            json={
                "node": {
                    "title": "Script",
                    "type": "asset",
                    "asset": {"type": "text", "content": "Hi"},
                }
            },
            headers=headers,
        )
    return app, World(headers, uuid, node.json()["node"]["uuid"])


@pytest.fixture
def api_schema(world):
    app, _ = world
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_answer_is_declared(case, world):
    _, known = world
    case.call_and_validate(headers=known.headers, checks=CHECKS)
    real = {"pipeline_uuid": known.pipeline_uuid, "node_uuid": known.node_uuid}
    streams = case.path.endswith("/events")  # an open stream never ends: 404s only
    if not streams and case.path_parameters and set(case.path_parameters) <= set(real):
        case.path_parameters = {name: real[name] for name in case.path_parameters}
        case.call_and_validate(headers=known.headers, checks=CHECKS)
