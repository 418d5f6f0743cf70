"""VeoClient against the fake Gemini API."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from tests.fakes.media import tiny_mp4, tiny_png
from tests.fakes.veo import FakeVeo
from tests.providers.conftest import Sleeps
from vidpipe_dagster.resources.providers.base import (
    AuthError,
    HttpSettings,
    MalformedResponseError,
    PermanentError,
    RateLimitedError,
    ResultExpiredError,
    TransientError,
)
from vidpipe_dagster.resources.providers.veo import VeoClient

CONFIG = {"model": "veo-3.1-fast-generate-preview", "duration": 6, "aspectRatio": "9:16"}


@pytest.fixture
def client(fake_veo: FakeVeo, http: HttpSettings, sleeps: Sleeps, http_client: httpx.Client):
    with VeoClient(
        api_key=fake_veo.api_key,
        base_url=fake_veo.base_url,
        client=http_client,
        http=http,
        sleep=sleeps,
    ) as client:
        yield client


def test_image_to_video_round_trip(client: VeoClient, fake_veo: FakeVeo, tmp_path: Path) -> None:
    job_id = client.submit(
        config={**CONFIG, "negativePrompt": "blur"},
        prompt="A paper boat on a river",
        image=tiny_png(),
        image_mime_type="image/png",
    )
    assert job_id.startswith("models/veo-3.1-fast-generate-preview/operations/")
    (submit,) = fake_veo.requests
    assert submit.path == "/v1beta/models/veo-3.1-fast-generate-preview:predictLongRunning"
    assert submit.headers["x-goog-api-key"] == fake_veo.api_key
    body = submit.json()
    assert body["instances"] == [
        {
            "prompt": "A paper boat on a river",
            "image": {
                "bytesBase64Encoded": base64.b64encode(tiny_png()).decode(),
                "mimeType": "image/png",
            },
        }
    ]
    assert body["parameters"] == {
        "aspectRatio": "9:16",
        "durationSeconds": 6,
        "personGeneration": "allow_adult",
        "sampleCount": 1,
        "negativePrompt": "blur",
    }
    assert [client.poll(job_id).state for _ in range(2)] == ["running", "running"]
    done = client.poll(job_id)
    assert done.state == "completed"
    assert done.result_url and ":download?alt=media" in done.result_url
    assert fake_veo.requests[-1].path == f"/v1beta/{job_id}"

    client.fetch_result(job_id, tmp_path / "veo.mp4")
    assert (tmp_path / "veo.mp4").read_bytes() == tiny_mp4()
    download = fake_veo.requests_to(":download")[-1]
    assert download.headers["x-goog-api-key"] == fake_veo.api_key


def test_text_to_video_defaults(client: VeoClient, fake_veo: FakeVeo) -> None:
    client.submit(config={}, prompt="Sunrise")
    body = fake_veo.requests[0].json()
    assert fake_veo.requests[0].path.endswith("/veo-3.1-generate-preview:predictLongRunning")
    assert body["parameters"]["personGeneration"] == "allow_all"
    assert body["parameters"]["durationSeconds"] == 8


def test_invalid_key_is_auth_error(fake_veo: FakeVeo, http, http_client) -> None:
    with VeoClient(
        api_key="bad", base_url=fake_veo.base_url, http=http, client=http_client
    ) as client:
        with pytest.raises(AuthError, match="INVALID_ARGUMENT: API key not valid"):
            client.submit(config={}, prompt="x")
    assert len(fake_veo.requests) == 1


def test_unknown_model(client: VeoClient) -> None:
    with pytest.raises(PermanentError, match="404 NOT_FOUND: models/imagen-x is not found"):
        client.submit(config={"model": "imagen-x"}, prompt="x")


def test_operation_error_is_a_failed_job(client: VeoClient, fake_veo: FakeVeo) -> None:
    fake_veo.jobs.outcome, fake_veo.jobs.steps = "fail", 0
    status = client.poll(client.submit(config={}, prompt="x"))
    assert status.state == "failed" and status.error == "Video generation failed. (code 13)"


def test_safety_filter_is_a_failed_job_with_reasons(client: VeoClient, fake_veo: FakeVeo) -> None:
    fake_veo.jobs.outcome, fake_veo.jobs.steps = "filtered", 0
    status = client.poll(client.submit(config={}, prompt="x"))
    assert status.state == "failed"
    assert status.error and "safety filters" in status.error and "not allowed" in status.error


def test_resource_exhausted_is_retried(client: VeoClient, fake_veo: FakeVeo, sleeps) -> None:
    fake_veo.rate_limit(retry_after=3, times=1)
    client.submit(config={}, prompt="x")
    assert sleeps == [3]
    fake_veo.rate_limit(retry_after=None, times=5)
    with pytest.raises(RateLimitedError) as info:
        client.submit(config={}, prompt="x")
    assert info.value.code == "RESOURCE_EXHAUSTED" and info.value.retry_after is None


def test_unavailable_then_ok(client: VeoClient, fake_veo: FakeVeo) -> None:
    job_id = client.submit(config={}, prompt="x")
    fake_veo.server_error(503, times=2)
    assert client.poll(job_id).state == "running"
    fake_veo.server_error(503, times=3)
    with pytest.raises(TransientError, match="UNAVAILABLE"):
        client.poll(job_id)


def test_deleted_file_is_expired(client: VeoClient, fake_veo: FakeVeo, tmp_path) -> None:
    fake_veo.jobs.steps = 0
    job_id = client.submit(config={}, prompt="x")
    assert client.poll(job_id).state == "completed"
    fake_veo.expire_urls()
    with pytest.raises(ResultExpiredError):
        client.fetch_result(job_id, tmp_path / "x.mp4", refetches=0)


def test_malformed_operation(client: VeoClient, fake_veo: FakeVeo) -> None:
    job_id = client.submit(config={}, prompt="x")
    fake_veo.fail(200, {"name": job_id, "done": True, "response": {}})
    with pytest.raises(MalformedResponseError, match="generateVideoResponse"):
        client.poll(job_id)
    fake_veo.malformed()
    with pytest.raises(MalformedResponseError):
        client.poll(job_id)


@pytest.mark.parametrize(
    ("config", "prompt", "message"),
    [
        ({"duration": 5}, "x", "duration must be one of"),
        ({"aspectRatio": "4:3"}, "x", "aspectRatio must be one of"),
        ({}, " ", "prompt is empty"),
    ],
)
def test_invalid_input_fails_before_sending(client, fake_veo, config, prompt, message) -> None:
    with pytest.raises(PermanentError, match=message):
        client.submit(config=config, prompt=prompt)
    assert fake_veo.requests == []
