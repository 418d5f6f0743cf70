"""Fixtures for the API tests: the app on the test database, tokens and request helpers."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from api.main import create_app
from vidpipe_dagster.db.models import Node
from vidpipe_dagster.domain.tokens import create_token
from vidpipe_dagster.settings import Settings

BASE = "/v1/admin/video_production/pipelines"
PIPELINE_KEYS = {"uuid", "title", "version", "config", "metadata", "created_at", "updated_at"}
NODE_KEYS = {
    "uuid",
    "pipeline_uuid",
    "title",
    "type",
    "status",
    "inputs",
    "config",
    "asset",
    "metadata",
    "output",
    "is_valid",
    "validation_errors",
    "created_at",
    "updated_at",
}
MISSING_UUID = "00000000-0000-4000-8000-000000000000"


class ChangeRecorder:
    """A ``notify_change`` callback that counts its calls and keeps the pipeline UUIDs."""

    def __init__(self) -> None:
        self.calls = 0
        self.pipelines: list[str] = []

    def __call__(self, pipeline_uuid: str) -> None:
        self.calls += 1
        self.pipelines.append(pipeline_uuid)


def make_token(sessions: sessionmaker[Session], *, admin: bool) -> str:
    """A new stored token, committed."""
    with sessions() as session, session.begin():
        return create_token(session, name="admin" if admin else "viewer", admin=admin)


def build_client(
    sessions: sessionmaker[Session], recorder: ChangeRecorder, **settings: Any
) -> TestClient:
    """A client of a fresh app over ``sessions`` that raises no server exceptions itself."""
    app = create_app(
        settings=Settings(**settings),
        sessions=sessions,
        notify_change=recorder,
    )
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def changes() -> ChangeRecorder:
    """Records each call of the app's ``notify_change``."""
    return ChangeRecorder()


@pytest.fixture
def client(sessions: sessionmaker[Session], changes: ChangeRecorder) -> Iterator[TestClient]:
    """A client of the app on the test PostgreSQL database."""
    with build_client(sessions, changes) as test_client:
        yield test_client


@pytest.fixture
def admin_headers(sessions: sessionmaker[Session]) -> dict[str, str]:
    """Headers carrying an admin token."""
    return {"Authorization": f"Bearer {make_token(sessions, admin=True)}"}


@pytest.fixture
def user_headers(sessions: sessionmaker[Session]) -> dict[str, str]:
    """Headers carrying a valid token that is not admin."""
    return {"Authorization": f"Bearer {make_token(sessions, admin=False)}"}


class Api:
    """Shorthands for creating pipelines and nodes through the API as an admin."""

    def __init__(self, client: TestClient, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers

    def pipeline(self, title: str = "Course intro", **fields: Any) -> dict[str, Any]:
        """Create a pipeline and return its JSON."""
        response = self.client.post(
            BASE, json={"pipeline": {"title": title, **fields}}, headers=self.headers
        )
        assert response.status_code == 201, response.text
        return response.json()["pipeline"]

    def node(
        self, pipeline: dict[str, Any], *, title: str = "Clip", type: str = "asset", **fields: Any
    ) -> dict[str, Any]:
        """Create a node in ``pipeline`` and return its JSON."""
        response = self.create_node(pipeline["uuid"], {"title": title, "type": type, **fields})
        assert response.status_code == 201, response.text
        return response.json()["node"]

    def create_node(self, pipeline_uuid: str, node: Any):
        """POST a node body (wrapped here) and return the raw response."""
        return self.client.post(
            f"{BASE}/{pipeline_uuid}/nodes", json={"node": node}, headers=self.headers
        )

    def patch_node(self, node: dict[str, Any], fields: Any):
        """PATCH ``node`` with ``fields`` (wrapped here) and return the raw response."""
        return self.client.patch(
            f"{BASE}/{node['pipeline_uuid']}/nodes/{node['uuid']}",
            json={"node": fields},
            headers=self.headers,
        )

    def get_node(self, node: dict[str, Any]) -> dict[str, Any]:
        """The node's current JSON."""
        response = self.client.get(
            f"{BASE}/{node['pipeline_uuid']}/nodes/{node['uuid']}", headers=self.headers
        )
        assert response.status_code == 200, response.text
        return response.json()["node"]

    def delete_node(self, node: dict[str, Any]):
        """DELETE ``node`` and return the raw response."""
        return self.client.delete(
            f"{BASE}/{node['pipeline_uuid']}/nodes/{node['uuid']}", headers=self.headers
        )


@pytest.fixture
def api(client: TestClient, admin_headers: dict[str, str]) -> Api:
    """Admin shorthands over ``client``."""
    return Api(client, admin_headers)


@pytest.fixture
def set_row(sessions: sessionmaker[Session]) -> Callable[..., None]:
    """Write engine-owned or raw columns of a node straight to the database."""

    def write(node_uuid: str, **values: Any) -> None:
        with sessions() as session, session.begin():
            session.execute(update(Node).where(Node.id == uuid.UUID(node_uuid)).values(**values))

    return write


def error(status_type: str, message: str) -> dict[str, Any]:
    """The error body the contract specifies."""
    return {"error": {"type": status_type, "message": message}}
