"""RemotionClient through boto3 against the fake Lambda Invoke API (and its S3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fakes.media import tiny_mp4
from tests.fakes.remotion import BUCKET, FakeRemotionLambda
from tests.providers.conftest import Sleeps
from vidpipe_dagster.resources.providers.base import (
    MalformedResponseError,
    PermanentError,
    RateLimitedError,
    RetryPolicy,
    TransientError,
    poll_many,
)
from vidpipe_dagster.resources.providers.remotion import RemotionClient
from vidpipe_dagster.resources.providers.remotion_wire import parse_payload, split_job_id

INVOKE = "/invocations"


@pytest.fixture
def client(fake_remotion: FakeRemotionLambda, fake_remotion_clients, sleeps: Sleeps):
    lambda_client, s3_client = fake_remotion_clients
    return RemotionClient(
        function_name=fake_remotion.function_name,
        lambda_client=lambda_client,
        s3_client=s3_client,
        version="4.0.539",
        retry=RetryPolicy(max_attempts=3, base_delay=0.01),
        sleep=sleeps,
    )


def submit(client: RemotionClient) -> str:
    return client.submit(
        composition_id="CodeScene",
        serve_url="https://remotionlambda-x.s3.amazonaws.com/sites/demo/index.html",
        input_props={"code": "print('hi')", "theme": "dark"},
    )


def test_render_round_trip(client, fake_remotion: FakeRemotionLambda, tmp_path: Path) -> None:
    job_id = submit(client)
    bucket, render_id = split_job_id(job_id)
    assert bucket == BUCKET and render_id

    (start,) = fake_remotion.requests
    assert start.path == f"/2015-03-31/functions/{fake_remotion.function_name}/invocations"
    assert start.headers["authorization"].startswith("AWS4-HMAC-SHA256")
    payload = start.json()
    assert payload["type"] == "start" and payload["version"] == "4.0.539"
    assert payload["composition"] == "CodeScene" and payload["codec"] == "h264"
    assert payload["inputProps"]["type"] == "payload"
    assert json.loads(payload["inputProps"]["payload"]) == {"code": "print('hi')", "theme": "dark"}

    first, second = client.poll(job_id), client.poll(job_id)
    assert first.state == "queued" and second.state == "running" and second.progress == 0.3
    status_payload = fake_remotion.requests[-1].json()
    assert status_payload == {
        "type": "status",
        "renderId": render_id,
        "bucketName": BUCKET,
        "version": "4.0.539",
        "logLevel": "info",
        "forcePathStyle": False,
        "s3OutputProvider": None,
    }
    done = client.poll(job_id)
    assert done.state == "completed" and done.result_url and done.result_url.endswith("out.mp4")
    assert done.cost_usd == pytest.approx(0.0036)

    size = client.download_output(job_id, tmp_path / "code.mp4", status=done)
    assert size == len(tiny_mp4()) and (tmp_path / "code.mp4").read_bytes() == tiny_mp4()
    assert fake_remotion.requests_to(f"/{BUCKET}/renders/{render_id}/out.mp4", "GET")


def test_streamed_concatenated_answers(client, fake_remotion: FakeRemotionLambda) -> None:
    fake_remotion.stream_chunks = True
    assert client.poll(submit(client)).state == "queued"


def test_fatal_render_error_fails_the_job(client, fake_remotion: FakeRemotionLambda) -> None:
    fake_remotion.jobs.outcome, fake_remotion.jobs.steps = "fail", 0
    status = client.poll(submit(client))
    assert status.state == "failed"
    assert status.error == "Composition threw: props.title is undefined"


def test_remotion_error_answer_is_permanent(client, fake_remotion: FakeRemotionLambda) -> None:
    fake_remotion.remotion_error = 1
    with pytest.raises(PermanentError, match="Composition not found"):
        submit(client)
    assert len(fake_remotion.requests) == 1


def test_function_error_on_start_is_not_retried(client, fake_remotion) -> None:
    fake_remotion.function_error = 1
    with pytest.raises(TransientError, match="Unhandled.*Task timed out"):
        submit(client)
    assert len(fake_remotion.requests) == 1
    assert fake_remotion.jobs.jobs == {}


def test_function_error_on_status_is_retried(client, fake_remotion, sleeps) -> None:
    job_id = submit(client)
    fake_remotion.function_error = 1
    assert client.poll(job_id).state == "queued"
    assert len(fake_remotion.requests_to(INVOKE)) == 3 and len(sleeps) == 1


def test_throttling_is_rate_limited_and_retried(client, fake_remotion, sleeps) -> None:
    job_id = submit(client)
    fake_remotion.rate_limit(retry_after=None, times=1)
    assert client.poll(job_id).state == "queued"
    fake_remotion.rate_limit(retry_after=None, times=3)
    with pytest.raises(RateLimitedError, match="TooManyRequestsException"):
        client.poll(job_id)
    fake_remotion.server_error(times=3)
    with pytest.raises(TransientError, match="ServiceException"):
        client.poll(job_id)


def test_unknown_function_is_permanent(fake_remotion, fake_remotion_clients) -> None:
    lambda_client, _ = fake_remotion_clients
    client = RemotionClient(function_name="nope", lambda_client=lambda_client)
    with pytest.raises(PermanentError, match="ResourceNotFoundException: Function not found"):
        submit(client)


def test_malformed_payload(client, fake_remotion: FakeRemotionLambda) -> None:
    job_id = submit(client)
    fake_remotion.malformed(times=3)
    with pytest.raises(MalformedResponseError, match="not JSON"):
        client.poll(job_id)


def test_missing_output_object(client, fake_remotion: FakeRemotionLambda, tmp_path) -> None:
    fake_remotion.jobs.steps = 0
    job_id = submit(client)
    status = client.poll(job_id)
    fake_remotion.objects.clear()
    with pytest.raises(PermanentError, match="NoSuchKey"):
        client.download_output(job_id, tmp_path / "x.mp4", status=status)


def test_poll_many_uses_threads_for_boto(client, fake_remotion: FakeRemotionLambda) -> None:
    fake_remotion.jobs.steps = 0
    ids = [submit(client) for _ in range(6)]
    results = poll_many(client, [*ids, "not-a-job-id"], concurrency=3)
    assert all(results[i].state == "completed" for i in ids)
    assert isinstance(results["not-a-job-id"], PermanentError)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"type":"success","a":1}', {"type": "success", "a": 1}),
        (b'{"type":"x"}\n{"type":"success","b":2}\n', {"type": "success", "b": 2}),
        (b'{"a":1}{"b":2}', {"b": 2}),
    ],
)
def test_parse_payload_takes_the_last_object(raw: bytes, expected: dict) -> None:
    assert parse_payload(raw) == expected


def test_invalid_input_fails_before_invoking(client, fake_remotion) -> None:
    with pytest.raises(PermanentError, match="compositionId is required"):
        client.submit(composition_id="", serve_url="https://x")
    with pytest.raises(PermanentError, match="at most 194000"):
        client.submit(composition_id="c", serve_url="https://x", input_props={"x": "y" * 200_000})
    assert fake_remotion.requests == []
