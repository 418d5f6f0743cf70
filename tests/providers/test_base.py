"""Shared provider pieces: retry policy, Retry-After parsing, retry loops, missing keys."""

from __future__ import annotations

import asyncio
import email.utils

import pytest
from pydantic import SecretStr

from vidpipe_dagster.resources.providers.base import (
    AuthError,
    JobStatus,
    MissingApiKeyError,
    PermanentError,
    RateLimitedError,
    RetryPolicy,
    TransientError,
    aretry_call,
    parse_retry_after,
    retry_call,
)
from vidpipe_dagster.resources.providers.elevenlabs import ElevenLabsClient
from vidpipe_dagster.resources.providers.heygen import HeyGenClient
from vidpipe_dagster.resources.providers.remotion import RemotionClient
from vidpipe_dagster.resources.providers.runway import RunwayClient
from vidpipe_dagster.resources.providers.veo import VeoClient
from vidpipe_dagster.settings import Settings


def test_backoff_doubles_and_is_capped() -> None:
    policy = RetryPolicy(base_delay=1, max_delay=5, jitter=0)
    assert [policy.delay(n) for n in (1, 2, 3, 4, 5)] == [1, 2, 4, 5, 5]


def test_jitter_stays_within_half_of_the_backoff() -> None:
    policy = RetryPolicy(base_delay=2, max_delay=100, jitter=0.5)
    delays = [policy.delay(2) for _ in range(200)]
    assert all(4 <= d <= 6 for d in delays)
    assert len(set(delays)) > 1


def test_retry_after_wins_and_is_capped() -> None:
    policy = RetryPolicy(base_delay=1, retry_after_cap=30, jitter=0)
    assert policy.delay(1, retry_after=12) == 12
    assert policy.delay(1, retry_after=3600) == 30
    assert policy.delay(3, retry_after=0) == 0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers) == expected


def test_parse_retry_after_http_date() -> None:
    now = 1_800_000_000.0
    date = email.utils.formatdate(now + 42, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=now) == pytest.approx(42)


def test_retry_call_retries_transient_errors_until_success() -> None:
    calls: list[int] = []
    slept: list[float] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise RateLimitedError("slow down", retry_after=2)
        return "ok"

    assert retry_call(flaky, policy=RetryPolicy(max_attempts=5), sleep=slept.append) == "ok"
    assert len(calls) == 3
    assert slept == [2, 2]


def test_retry_call_gives_up_after_max_attempts() -> None:
    slept: list[float] = []

    def broken() -> None:
        raise TransientError("down")

    with pytest.raises(TransientError) as info:
        retry_call(broken, policy=RetryPolicy(max_attempts=4, jitter=0), sleep=slept.append)
    assert info.value.attempts == 4
    assert slept == [0.5, 1.0, 2.0]


def test_retry_call_does_not_retry_permanent_errors() -> None:
    calls: list[int] = []

    def bad() -> None:
        calls.append(1)
        raise PermanentError("bad input")

    with pytest.raises(PermanentError):
        retry_call(bad, policy=RetryPolicy(max_attempts=5), sleep=lambda s: None)
    assert calls == [1]


def test_aretry_call_uses_the_async_sleep() -> None:
    slept: list[float] = []
    calls: list[int] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    async def flaky() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise RateLimitedError("429", retry_after=5)
        return 7

    assert asyncio.run(aretry_call(flaky, policy=RetryPolicy(), sleep=fake_sleep)) == 7
    assert slept == [5]


@pytest.mark.parametrize(
    ("build", "env_var"),
    [
        (ElevenLabsClient.from_settings, "VIDPIPE_ELEVENLABS_API_KEY"),
        (HeyGenClient.from_settings, "VIDPIPE_HEYGEN_API_KEY"),
        (VeoClient.from_settings, "VIDPIPE_GEMINI_API_KEY"),
        (RunwayClient.from_settings, "VIDPIPE_RUNWAY_API_KEY"),
        (RemotionClient.from_settings, "VIDPIPE_REMOTION_FUNCTION_NAME"),
    ],
)
def test_missing_key_names_the_variable(build, env_var: str) -> None:
    settings = Settings(_env_file=None)
    with pytest.raises(MissingApiKeyError) as info:
        build(settings)
    message = str(info.value)
    assert message.startswith(f"{env_var} is not set")
    assert "config.provider 'local'" in message and "VIDPIPE_PROVIDERS=local" in message
    assert isinstance(info.value, AuthError) and not info.value.retryable


def test_empty_key_counts_as_missing() -> None:
    settings = Settings(_env_file=None, heygen_api_key=SecretStr(""))
    with pytest.raises(MissingApiKeyError):
        HeyGenClient.from_settings(settings)


def test_clients_from_settings_use_base_urls_and_hide_keys() -> None:
    settings = Settings(
        _env_file=None,
        heygen_api_key=SecretStr("hg-secret-123"),
        heygen_base_url="http://127.0.0.1:9/",
        heygen_api_version="v2",
    )
    with HeyGenClient.from_settings(settings) as client:
        assert client.base_url == "http://127.0.0.1:9"
        assert client.api_version == "v2"
        assert "hg-secret-123" not in repr(client)
        assert "hg-secret-123" not in repr(vars(client))


def test_job_status_done() -> None:
    assert JobStatus(state="completed").done and JobStatus(state="failed").done
    assert not JobStatus(state="queued").done and not JobStatus(state="running").done
