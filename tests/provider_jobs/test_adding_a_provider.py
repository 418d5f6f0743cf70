"""Adding a provider is one module plus its registration: ClipGen (``tests/providers/
clipgen.py``) is registered and then priced, submitted by a run, polled by the sensor,
finished by a signed webhook and limited, with no other change anywhere."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator

import dagster as dg
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from tests.dagster.builders import NodeRow, add_pipeline
from tests.fakes.server import FakeServer, Request, Response
from tests.provider_jobs.conftest import node_row, run_in_process, sensor_tick
from tests.providers import clipgen
from vidpipe_dagster.assets.asset_keys import key_of
from vidpipe_dagster.resources.providers import registry
from vidpipe_dagster.resources.providers.prices import estimate_cost
from vidpipe_dagster.settings import get_settings

SECRET = "clipgen-secret"


class FakeClipGen(FakeServer):
    """ClipGen's wire format; ``done`` marks clips finished."""

    def __init__(self) -> None:
        super().__init__(api_key="clip-key")
        self.clips: dict[str, dict] = {}
        self.done: set[str] = set()
        self.route("POST", r"/v1/clips", self.create)
        self.route("GET", r"/v1/clips/(?P<clip>\w+)", self.get)
        self.add_media_route()

    def create(self, request: Request) -> Response:
        assert request.headers["authorization"] == f"Bearer {self.api_key}"
        clip = f"c{len(self.clips) + 1}"
        self.clips[clip] = request.json()
        return Response(200, {"clip": clip})

    def get(self, request: Request) -> Response:
        clip = request.match["clip"]
        if clip in self.done:
            return Response(200, {"state": "done", "url": self.issue_media_url("clip.mp4")})
        return Response(200, {"state": "working"})


@pytest.fixture
def fake_clipgen(provider_env, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClipGen]:
    with FakeClipGen() as fake:
        monkeypatch.setenv("CLIPGEN_API_KEY", fake.api_key)
        monkeypatch.setenv("CLIPGEN_BASE_URL", fake.url)
        monkeypatch.setenv("CLIPGEN_WEBHOOK_SECRET", SECRET)
        get_settings.cache_clear()
        registry.register(clipgen.UNIT)
        yield fake
        registry.unregister(clipgen.NAME)


def test_a_registered_module_is_the_whole_provider(
    sessions, resource, database_url, fake_clipgen: FakeClipGen
) -> None:
    assert "clipgen" in registry.PAID_PROVIDERS and "clipgen" in registry.ASYNC_PROVIDERS
    assert "clipgen" in registry.providers_for("generate-animation")
    assert registry.jobs_limit("clipgen", get_settings()) == 2
    config = {"provider": "clipgen", "prompt": "a red fox", "duration": 6}
    assert estimate_cost("clipgen", "generate-animation", config).usd == pytest.approx(1.5)

    rows = [NodeRow(n, "generate-animation", config=config) for n in ("polled", "called")]
    ids = add_pipeline(sessions, name="clipgen", nodes=rows, config={"budget": 10})
    keys = [key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids[n]) for n in rows_of(ids)]
    with dg.instance_for_test() as instance:
        assert run_in_process(sessions, resource, instance, keys).success
        polled, called = (node_row(sessions, ids[n]) for n in ("polled", "called"))
        assert polled.metadata_["provider"] == "clipgen" and len(fake_clipgen.clips) == 2
        assert polled.metadata_["estimated_cost"] == pytest.approx(1.5)

        fake_clipgen.done.add(polled.metadata_["provider_job_id"])
        sensor_tick(sessions, resource, instance)
        assert node_row(sessions, ids["polled"]).status == "completed"
        assert node_row(sessions, ids["called"]).status == "in_progress"

    client = TestClient(
        create_app(
            settings=get_settings().model_copy(update={"database_url": database_url}),
            sessions=sessions,
            notify_change=lambda _pipeline_uuid: None,
            storage=resource.storage,
        )
    )
    job = called.metadata_["provider_job_id"]
    body = json.dumps(
        {"clip": job, "state": "done", "url": fake_clipgen.issue_media_url("clip.mp4")}
    ).encode()
    bad = client.post("/v1/webhooks/clipgen", content=body, headers={"X-Clipgen-Signature": "0"})
    assert bad.status_code == 401
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    answer = client.post(
        "/v1/webhooks/clipgen", content=body, headers={"X-Clipgen-Signature": signature}
    )
    assert answer.status_code == 200 and answer.json()["outcome"] == "completed"
    finished = node_row(sessions, ids["called"])
    assert finished.status == "completed" and finished.output["provider"] == "clipgen"
    assert client.post("/v1/webhooks/nobody", content=b"{}").status_code == 404


def rows_of(ids: dict[str, str]) -> list[str]:
    return [name for name in ids if name != "pipeline"]
