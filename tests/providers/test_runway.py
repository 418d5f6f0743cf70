"""RunwayClient against the fake Runway server."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from tests.fakes.media import tiny_mp4, tiny_png
from tests.fakes.runway import FakeRunway
from tests.providers.conftest import Sleeps
from vidpipe_dagster.resources.providers.base import (
    AuthError,
    HttpSettings,
    MalformedResponseError,
    PermanentError,
    RateLimitedError,
    TransientError,
)
from vidpipe_dagster.resources.providers.runway import RunwayClient


@pytest.fixture
def client(fake_runway: FakeRunway, http: HttpSettings, sleeps: Sleeps, http_client: httpx.Client):
    with RunwayClient(
        api_key=fake_runway.api_key,
        base_url=fake_runway.url,
        client=http_client,
        http=http,
        sleep=sleeps,
    ) as client:
        yield client


def test_image_to_video_with_throttling(client, fake_runway: FakeRunway, tmp_path: Path) -> None:
    fake_runway.jobs.steps = 3
    job_id = client.submit(
        config={"model": "gen4_turbo", "ratio": "960:960", "duration": 5},
        prompt="Zoom out slowly",
        image=tiny_png(),
    )
    (submit,) = fake_runway.requests
    assert submit.path == "/v1/image_to_video"
    assert submit.headers["authorization"] == f"Bearer {fake_runway.api_key}"
    assert submit.headers["x-runway-version"] == "2024-11-06"
    assert submit.json() == {
        "model": "gen4_turbo",
        "ratio": "960:960",
        "duration": 5,
        "promptText": "Zoom out slowly",
        "promptImage": "data:image/png;base64," + base64.b64encode(tiny_png()).decode(),
    }
    statuses = [client.poll(job_id) for _ in range(4)]
    assert [s.raw["status"] for s in statuses] == ["PENDING", "THROTTLED", "RUNNING", "SUCCEEDED"]
    assert [s.state for s in statuses] == ["queued", "queued", "running", "completed"]
    assert statuses[2].progress == 0.5
    assert statuses[3].cost_usd == pytest.approx(0.25)
    client.fetch_result(job_id, tmp_path / "rw.mp4")
    assert (tmp_path / "rw.mp4").read_bytes() == tiny_mp4()


def test_text_to_video_and_image_urls(client: RunwayClient, fake_runway: FakeRunway) -> None:
    client.submit(config={"model": "gen4.5", "duration": 4}, prompt="Clouds")
    client.submit(config={}, image_url="https://cdn.example/frame.png")
    first, second = fake_runway.requests
    assert first.path == "/v1/text_to_video" and first.json()["promptText"] == "Clouds"
    assert second.path == "/v1/image_to_video"
    assert second.json()["promptImage"] == "https://cdn.example/frame.png"


def test_failed_task_reports_failure_code(client, fake_runway: FakeRunway) -> None:
    fake_runway.jobs.outcome, fake_runway.jobs.steps = "fail", 0
    status = client.poll(client.submit(config={}, image_url="https://x/y.png"))
    assert status.state == "failed"
    assert status.error == "The output did not pass content moderation. (SAFETY.OUTPUT.VIDEO)"
    assert status.cost_usd == 0


def test_cancel_then_poll_is_not_found(client, fake_runway: FakeRunway) -> None:
    job_id = client.submit(config={}, image_url="https://x/y.png")
    client.cancel(job_id)
    client.cancel(job_id)
    assert fake_runway.requests_to(f"/v1/tasks/{job_id}", "DELETE")
    with pytest.raises(PermanentError, match="Could not find Task"):
        client.poll(job_id)


def test_wrong_key(fake_runway: FakeRunway, http, http_client) -> None:
    with RunwayClient(
        api_key="bad", base_url=fake_runway.url, http=http, client=http_client
    ) as client:
        with pytest.raises(AuthError, match="401.*Invalid API key"):
            client.submit(config={}, image_url="https://x/y.png")


def test_validation_issues_are_listed(client, fake_runway: FakeRunway) -> None:
    fake_runway.fail(
        400,
        {
            "error": "Validation of body failed",
            "issues": [{"code": "invalid_enum_value", "path": ["ratio"], "message": "Bad ratio"}],
        },
    )
    with pytest.raises(PermanentError, match="Validation of body failed: ratio: Bad ratio"):
        client.submit(config={}, image_url="https://x/y.png")
    assert len(fake_runway.requests) == 1


def test_no_credits_is_permanent(client, fake_runway: FakeRunway) -> None:
    fake_runway.no_credits = True
    with pytest.raises(PermanentError, match="enough credits") as info:
        client.submit(config={}, image_url="https://x/y.png")
    assert not info.value.retryable and len(fake_runway.requests) == 1


def test_daily_limit_429_and_load_shedding_5xx_are_retried(client, fake_runway, sleeps) -> None:
    fake_runway.rate_limit(retry_after=9)
    fake_runway.server_error(502)
    assert client.submit(config={}, image_url="https://x/y.png")
    assert len(fake_runway.requests) == 3
    assert sleeps[0] == 9 and len(sleeps) == 2
    fake_runway.rate_limit(retry_after=1, times=3)
    with pytest.raises(RateLimitedError, match="daily generation limit"):
        client.submit(config={}, image_url="https://x/y.png")


def test_timeouts_and_malformed(client, fake_runway: FakeRunway) -> None:
    job_id = client.submit(config={}, image_url="https://x/y.png")
    fake_runway.hang(times=3)
    with pytest.raises(TransientError, match="timed out"):
        client.poll(job_id)
    fake_runway.malformed()
    with pytest.raises(MalformedResponseError):
        client.poll(job_id)
    fake_runway.fail(200, {"id": job_id, "status": "SUCCEEDED", "output": []})
    with pytest.raises(MalformedResponseError, match="without output"):
        client.poll(job_id)


@pytest.mark.parametrize(
    ("config", "kwargs", "message"),
    [
        ({"ratio": "16:9"}, {"image_url": "https://x/y.png"}, "not valid for gen4_turbo"),
        ({}, {"prompt": "x"}, "gen4_turbo needs a referenceImage"),
        ({"model": "gen4.5"}, {}, "needs a prompt"),
        ({}, {"image": b"x" * (5 * 1024 * 1024 + 1)}, "at most 5 MB"),
    ],
)
def test_invalid_input_fails_before_sending(client, fake_runway, config, kwargs, message) -> None:
    with pytest.raises(PermanentError, match=message):
        client.submit(config=config, **kwargs)
    assert fake_runway.requests == []
