"""HeyGenClient (v3 and legacy v2) against the fake HeyGen server."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.fakes.heygen import FakeHeyGen
from tests.fakes.media import tiny_mp4
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
from vidpipe_dagster.resources.providers.heygen import HeyGenClient
from vidpipe_dagster.resources.providers.heygen_wire import v3_resolution

CONFIG = {"avatarId": "Daisy_public", "voiceId": "voice-1", "width": 1920, "height": 1080}


def make_client(
    fake: FakeHeyGen, http: HttpSettings, sleeps: Sleeps, http_client: httpx.Client, **kwargs
) -> HeyGenClient:
    return HeyGenClient(
        api_key=kwargs.pop("api_key", fake.api_key),
        base_url=fake.url,
        client=http_client,
        http=http,
        sleep=sleeps,
        asleep=sleeps.asleep,
        **kwargs,
    )


@pytest.fixture
def client(fake_heygen: FakeHeyGen, http: HttpSettings, sleeps: Sleeps, http_client: httpx.Client):
    with make_client(fake_heygen, http, sleeps, http_client) as client:
        yield client


def test_v3_submit_poll_and_fetch(client: HeyGenClient, fake_heygen: FakeHeyGen, tmp_path: Path):
    job_id = client.submit(config=CONFIG, script="Welcome to the demo.", title="Intro")

    submit = fake_heygen.requests_to("/v3/videos", "POST")[0]
    assert submit.headers["x-api-key"] == fake_heygen.api_key
    assert submit.json() == {
        "type": "avatar",
        "avatar_id": "Daisy_public",
        "resolution": "1080p",
        "aspect_ratio": "16:9",
        "script": "Welcome to the demo.",
        "voice_id": "voice-1",
        "title": "Intro",
    }
    states = [client.poll(job_id).state for _ in range(2)]
    assert states == ["queued", "running"]
    final = client.poll(job_id)
    assert final.state == "completed" and final.result_url and final.progress == 1.0
    assert fake_heygen.requests_to(f"/v3/videos/{job_id}", "GET")

    status = client.fetch_result(job_id, tmp_path / "out.mp4")
    assert (tmp_path / "out.mp4").read_bytes() == tiny_mp4()
    assert status.state == "completed"
    media = fake_heygen.requests_to("/media/")
    assert media and "x-api-key" not in media[0].headers


def test_v3_audio_input_replaces_the_script(client, fake_heygen: FakeHeyGen) -> None:
    client.submit(config=CONFIG, script="ignored", audio_url="https://s3.example/voice.mp3")
    body = fake_heygen.requests[0].json()
    assert body["audio_url"] == "https://s3.example/voice.mp3"
    assert "script" not in body and "voice_id" not in body


def test_v2_submit_and_v1_status(
    fake_heygen: FakeHeyGen, http, sleeps, tmp_path, http_client
) -> None:
    with make_client(fake_heygen, http, sleeps, http_client, api_version="v2") as client:
        job_id = client.submit(
            config={**CONFIG, "test": True, "width": 1280, "height": 720},
            audio_url="https://s3.example/voice.mp3",
        )
        body = fake_heygen.requests[0].json()
        assert fake_heygen.requests[0].path == "/v2/video/generate"
        assert body == {
            "video_inputs": [
                {
                    "character": {
                        "type": "avatar",
                        "avatar_id": "Daisy_public",
                        "avatar_style": "normal",
                    },
                    "voice": {"type": "audio", "audio_url": "https://s3.example/voice.mp3"},
                }
            ],
            "dimension": {"width": 1280, "height": 720},
            "test": True,
        }
        assert [client.poll(job_id).state for _ in range(3)] == ["queued", "queued", "completed"]
        poll = fake_heygen.requests_to("/v1/video_status.get")[0]
        assert poll.param("video_id") == job_id and poll.headers["x-api-key"]
        client.fetch_result(job_id, tmp_path / "v.mp4")
        assert (tmp_path / "v.mp4").read_bytes() == tiny_mp4()


def test_v1_failure_carries_heygen_reason(
    fake_heygen: FakeHeyGen, http, sleeps, http_client
) -> None:
    fake_heygen.jobs.outcome = "fail"
    fake_heygen.jobs.steps = 0
    with make_client(fake_heygen, http, sleeps, http_client, api_version="v2") as client:
        status = client.poll(client.submit(config=CONFIG, script="Hi"))
    assert status.state == "failed"
    assert status.error == "Video is too long (> 3600.0s). (code 40119)"


def test_v3_failure(client: HeyGenClient, fake_heygen: FakeHeyGen, tmp_path) -> None:
    fake_heygen.jobs.next_outcomes = ["fail"]
    fake_heygen.jobs.steps = 0
    job_id = client.submit(config=CONFIG, script="Hi")
    status = client.poll(job_id)
    assert status.state == "failed" and "too long" in (status.error or "")
    with pytest.raises(PermanentError, match="no result to fetch.*failed"):
        client.fetch_result(job_id, tmp_path / "x.mp4")


def test_job_that_never_finishes(client: HeyGenClient, fake_heygen: FakeHeyGen) -> None:
    fake_heygen.jobs.outcome = "never"
    job_id = client.submit(config=CONFIG, script="Hi")
    states = {client.poll(job_id).state for _ in range(8)}
    assert states <= {"queued", "running"} and "running" in states


def test_refused_result_url_is_refetched(client, fake_heygen: FakeHeyGen, tmp_path) -> None:
    fake_heygen.jobs.steps = 0
    job_id = client.submit(config=CONFIG, script="Hi")
    fake_heygen.fail(403, b"expired", path="/media/", times=1)
    client.fetch_result(job_id, tmp_path / "out.mp4")
    assert (tmp_path / "out.mp4").read_bytes() == tiny_mp4()
    assert len(fake_heygen.requests_to(f"/v3/videos/{job_id}")) == 2
    urls = [r.path for r in fake_heygen.requests_to("/media/")]
    assert len(urls) == 2 and urls[0] != urls[1]


def test_expired_url_from_an_old_poll(client, fake_heygen: FakeHeyGen, tmp_path) -> None:
    fake_heygen.jobs.steps = 0
    job_id = client.submit(config=CONFIG, script="Hi")
    old = client.poll(job_id).result_url
    fake_heygen.expire_urls()
    with pytest.raises(ResultExpiredError):
        client.download(old or "", tmp_path / "old.mp4")
    client.fetch_result(job_id, tmp_path / "new.mp4")
    assert (tmp_path / "new.mp4").read_bytes() == tiny_mp4()


def test_result_url_refused_every_time(client, fake_heygen: FakeHeyGen, tmp_path) -> None:
    fake_heygen.jobs.steps = 0
    job_id = client.submit(config=CONFIG, script="Hi")
    fake_heygen.fail(404, b"", path="/media/", times=10)
    with pytest.raises(ResultExpiredError) as info:
        client.fetch_result(job_id, tmp_path / "out.mp4", refetches=2)
    assert info.value.attempts == 3
    assert len(fake_heygen.requests_to("/media/")) == 3


def test_wrong_key(fake_heygen: FakeHeyGen, http, sleeps, http_client) -> None:
    with make_client(fake_heygen, http, sleeps, http_client, api_key="nope") as client:
        with pytest.raises(AuthError, match="HTTP 401 unauthorized: Invalid or missing API key"):
            client.submit(config=CONFIG, script="Hi")
    assert len(fake_heygen.requests) == 1


def test_submit_429_honours_retry_after(client, fake_heygen: FakeHeyGen, sleeps) -> None:
    fake_heygen.rate_limit(retry_after=4, times=1, path="/v3/videos")
    assert client.submit(config=CONFIG, script="Hi")
    assert sleeps == [4]
    assert len(fake_heygen.requests_to("/v3/videos", "POST")) == 2


def test_submit_429_exhausted(client, fake_heygen: FakeHeyGen, sleeps) -> None:
    fake_heygen.rate_limit(retry_after=1, times=5)
    with pytest.raises(RateLimitedError, match="rate_limit_exceeded"):
        client.submit(config=CONFIG, script="Hi")
    assert fake_heygen.jobs.jobs == {}


def test_server_400_message(client, fake_heygen: FakeHeyGen) -> None:
    fake_heygen.fail(
        400, {"error": {"code": "invalid_parameter", "message": "avatar not found"}}, times=1
    )
    with pytest.raises(PermanentError, match="HTTP 400 invalid_parameter: avatar not found"):
        client.submit(config=CONFIG, script="Hi")
    assert len(fake_heygen.requests) == 1


def test_poll_5xx_and_timeouts_are_transient(client, fake_heygen: FakeHeyGen) -> None:
    job_id = client.submit(config=CONFIG, script="Hi")
    fake_heygen.server_error(502, times=3)
    with pytest.raises(TransientError) as info:
        client.poll(job_id)
    assert info.value.status_code == 502 and info.value.retryable
    fake_heygen.hang(times=3)
    with pytest.raises(TransientError, match="timed out"):
        client.poll(job_id)
    assert client.poll(job_id).state == "queued"


def test_malformed_status(client, fake_heygen: FakeHeyGen) -> None:
    job_id = client.submit(config=CONFIG, script="Hi")
    fake_heygen.malformed()
    with pytest.raises(MalformedResponseError, match="expected a JSON object.*upstream proxy"):
        client.poll(job_id)
    fake_heygen.fail(200, {"data": {"status": "exploded"}})
    with pytest.raises(MalformedResponseError, match="known data.status"):
        client.poll(job_id)


def test_unknown_job_is_permanent(client: HeyGenClient) -> None:
    with pytest.raises(PermanentError, match="404"):
        client.poll("0" * 32)


@pytest.mark.parametrize(
    ("config", "script", "message"),
    [
        ({"voiceId": "v"}, "Hi", "avatarId is required"),
        ({"avatarId": "a"}, "Hi", "voiceId is required"),
        ({"avatarId": "a", "voiceId": "v"}, "  ", "nothing to say"),
        ({"avatarId": "a", "voiceId": "v"}, "long " * 1001, "at most 5000"),
        ({**CONFIG, "test": True}, "Hi", "v3 API has no test mode"),
    ],
)
def test_invalid_input_fails_before_sending(client, fake_heygen, config, script, message):
    with pytest.raises(PermanentError, match=message):
        client.submit(config=config, script=script)
    assert fake_heygen.requests == []


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((1920, 1080), ("1080p", "16:9")),
        ((720, 1280), ("720p", "9:16")),
        ((3840, 2160), ("4k", "16:9")),
        ((1080, 1080), ("1080p", "1:1")),
        ((1080, 1350), ("1080p", "4:5")),
    ],
)
def test_v3_resolution(size: tuple[int, int], expected: tuple[str, str]) -> None:
    assert v3_resolution(*size) == expected
