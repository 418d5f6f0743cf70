"""ElevenLabsClient against the fake ElevenLabs server."""

from __future__ import annotations

import httpx
import pytest

from tests.fakes.elevenlabs import FakeElevenLabs
from tests.fakes.media import tiny_mp3
from tests.providers.conftest import Sleeps
from vidpipe_dagster.resources.providers.base import (
    AuthError,
    HttpSettings,
    MalformedResponseError,
    PermanentError,
    RateLimitedError,
    SubmissionOutcomeUnknown,
    TransientError,
)
from vidpipe_dagster.resources.providers.elevenlabs import ElevenLabsClient, parse_error_body

TTS = r"/v1/text-to-speech/"


@pytest.fixture
def client(
    fake_elevenlabs: FakeElevenLabs, http: HttpSettings, sleeps: Sleeps, http_client: httpx.Client
):
    yield ElevenLabsClient(
        api_key=fake_elevenlabs.api_key,
        base_url=fake_elevenlabs.url,
        client=http_client,
        http=http,
        sleep=sleeps,
    )


def test_synthesize_returns_audio_and_sends_the_wire_format(
    client: ElevenLabsClient, fake_elevenlabs: FakeElevenLabs
) -> None:
    config = {
        "voiceId": "voice-abc",
        "modelId": "eleven_flash_v2_5",
        "stability": 0.3,
        "similarityBoost": 0.8,
        "style": 0.1,
        "useSpeakerBoost": False,
    }
    speech = client.synthesize(text="  Hello from vidpipe.  ", config=config)

    assert speech.audio == tiny_mp3()
    assert speech.content_type == "audio/mpeg" and speech.extension == "mp3"
    assert speech.characters == len("Hello from vidpipe.") == speech.character_cost
    assert speech.request_id
    (request,) = fake_elevenlabs.requests
    assert request.method == "POST" and request.path == "/v1/text-to-speech/voice-abc"
    assert request.headers["xi-api-key"] == fake_elevenlabs.api_key
    assert "authorization" not in request.headers
    assert request.param("output_format") == "mp3_44100_128"
    assert request.json() == {
        "text": "Hello from vidpipe.",
        "model_id": "eleven_flash_v2_5",
        "voice_settings": {
            "stability": 0.3,
            "similarity_boost": 0.8,
            "style": 0.1,
            "use_speaker_boost": False,
        },
    }


def test_defaults_voice_and_model(client: ElevenLabsClient, fake_elevenlabs: FakeElevenLabs):
    client.synthesize(text="Hi", config={})
    (request,) = fake_elevenlabs.requests
    assert request.path == "/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM"
    assert request.json() == {"text": "Hi", "model_id": "eleven_multilingual_v2"}


def test_wrong_key_is_an_auth_error_without_retries(fake_elevenlabs, http, http_client):
    with ElevenLabsClient(
        api_key="wrong", base_url=fake_elevenlabs.url, http=http, client=http_client
    ) as client:
        with pytest.raises(AuthError) as info:
            client.synthesize(text="Hi", config={})
    assert info.value.status_code == 401 and info.value.code == "invalid_api_key"
    assert "Invalid API key" in str(info.value) and "wrong" not in str(info.value)
    assert len(fake_elevenlabs.requests) == 1


def test_quota_exceeded_401_is_permanent_not_auth(client, fake_elevenlabs: FakeElevenLabs):
    fake_elevenlabs.quota_exceeded()
    with pytest.raises(PermanentError) as info:
        client.synthesize(text="Hi", config={})
    assert not isinstance(info.value, AuthError)
    assert info.value.code == "quota_exceeded" and "exceeds your quota" in str(info.value)


def test_unknown_voice(client: ElevenLabsClient) -> None:
    with pytest.raises(PermanentError, match="voice_not_found.*no-such-voice"):
        client.synthesize(text="Hi", config={"voiceId": "no-such-voice"})


def test_validation_422_lists_the_fields(client, fake_elevenlabs: FakeElevenLabs) -> None:
    fake_elevenlabs.fail(
        422,
        {
            "detail": [
                {
                    "type": "less_than_equal",
                    "loc": ["body", "voice_settings", "stability"],
                    "msg": "Input should be less than or equal to 1",
                    "input": 2,
                }
            ]
        },
    )
    with pytest.raises(PermanentError, match=r"voice_settings\.stability: Input should be less"):
        client.synthesize(text="Hi", config={})


def test_out_of_range_settings_fail_before_sending(client, fake_elevenlabs) -> None:
    with pytest.raises(PermanentError, match="stability must be a number between 0 and 1"):
        client.synthesize(text="Hi", config={"stability": 2})
    assert fake_elevenlabs.requests == []


def test_script_over_the_model_limit_fails_before_sending(client, fake_elevenlabs) -> None:
    with pytest.raises(PermanentError, match="at most 5000"):
        client.synthesize(text="x" * 5001, config={"modelId": "eleven_v3"})
    with pytest.raises(PermanentError, match="script is empty"):
        client.synthesize(text="   ", config={})
    assert fake_elevenlabs.requests == []


def test_429_is_retried_after_retry_after(client, fake_elevenlabs, sleeps: Sleeps) -> None:
    fake_elevenlabs.rate_limit(retry_after=7, times=2)
    speech = client.synthesize(text="Hi", config={})
    assert speech.audio == tiny_mp3()
    assert sleeps == [7, 7]
    assert len(fake_elevenlabs.requests_to(TTS)) == 3


def test_retry_after_is_capped(client, fake_elevenlabs, sleeps: Sleeps) -> None:
    fake_elevenlabs.rate_limit(retry_after=3600)
    client.synthesize(text="Hi", config={})
    assert sleeps == [30]


def test_persistent_429_raises_rate_limited(client, fake_elevenlabs, sleeps: Sleeps) -> None:
    fake_elevenlabs.rate_limit(retry_after=2, times=10)
    with pytest.raises(RateLimitedError) as info:
        client.synthesize(text="Hi", config={})
    assert info.value.retry_after == 2 and info.value.attempts == 3
    assert info.value.code == "too_many_concurrent_requests"
    assert len(fake_elevenlabs.requests) == 3


def test_5xx_is_retried_with_backoff_then_raised(client, fake_elevenlabs, sleeps) -> None:
    fake_elevenlabs.server_error(503, times=10)
    with pytest.raises(TransientError) as info:
        client.synthesize(text="Hi", config={})
    assert info.value.status_code == 503 and info.value.retryable
    assert len(fake_elevenlabs.requests) == 3
    assert len(sleeps) == 2 and sleeps[1] > sleeps[0] * 1.2 - 1e-9


def test_one_503_then_success(client, fake_elevenlabs, sleeps) -> None:
    fake_elevenlabs.server_error(503)
    assert client.synthesize(text="Hi", config={}).audio == tiny_mp3()
    assert len(fake_elevenlabs.requests) == 2 and len(sleeps) == 1


def test_500_after_sending_is_an_unknown_outcome_never_resent(client, fake_elevenlabs) -> None:
    fake_elevenlabs.server_error(500)
    with pytest.raises(SubmissionOutcomeUnknown, match="submission outcome unknown.*HTTP 500"):
        client.synthesize(text="Hi", config={})
    assert len(fake_elevenlabs.requests) == 1


def test_timeout_after_sending_is_never_resent(client, fake_elevenlabs) -> None:
    fake_elevenlabs.hang(times=1)
    with pytest.raises(SubmissionOutcomeUnknown, match="elevenlabs.*sent at .* UTC.*timed out"):
        client.synthesize(text="Hi", config={})
    assert len(fake_elevenlabs.requests) == 1


def test_dropped_connection_after_sending_is_never_resent(client, fake_elevenlabs) -> None:
    fake_elevenlabs.drop()
    with pytest.raises(SubmissionOutcomeUnknown, match="connection lost") as info:
        client.synthesize(text="Hi", config={})
    assert not info.value.retryable
    assert len(fake_elevenlabs.requests) == 1


def test_connection_refused_is_retried(fake_elevenlabs, http, sleeps) -> None:
    refused = ElevenLabsClient(api_key="k", base_url="http://127.0.0.1:9", http=http, sleep=sleeps)
    with pytest.raises(TransientError, match="connection failed"):
        refused.synthesize(text="Hi", config={})
    assert len(sleeps) == http.retry.max_attempts - 1


def test_malformed_body_is_a_clear_error(client, fake_elevenlabs) -> None:
    fake_elevenlabs.malformed()
    with pytest.raises(MalformedResponseError, match="expected audio.*text/html"):
        client.synthesize(text="Hi", config={})
    assert len(fake_elevenlabs.requests) == 1


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"detail": {"code": "invalid_api_key", "message": "Bad"}}, ("invalid_api_key", "Bad")),
        ({"detail": {"status": "quota_exceeded", "message": "Q"}}, ("quota_exceeded", "Q")),
        ({"detail": "plain"}, (None, "plain")),
        ("not json", (None, "error")),
    ],
)
def test_parse_error_body_shapes(body, expected) -> None:
    assert parse_error_body(body) == expected
