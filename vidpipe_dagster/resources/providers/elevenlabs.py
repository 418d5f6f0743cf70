"""ElevenLabs text-to-speech: synchronous, the POST answers with the audio.

``POST {base}/v1/text-to-speech/{voice_id}?output_format=mp3_44100_128`` with header
``xi-api-key`` and a JSON body (``text``, ``model_id``, ``voice_settings``). Node config keys:
``voiceId``, ``modelId``, ``stability``, ``similarityBoost``, ``style``, ``useSpeakerBoost``
(and optionally ``outputFormat``, ``speed``, ``languageCode``).

Usage::

    with ElevenLabsClient.from_settings(settings) as tts:
        speech = tts.synthesize(text=script, config=node.config)
        storage.put_bytes(key, speech.audio, content_type=speech.content_type)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from vidpipe_dagster.domain.prices import CostEstimate, Rate, pick_rate
from vidpipe_dagster.resources.providers.errors import (
    MalformedResponseError,
    PermanentError,
    ProviderError,
)
from vidpipe_dagster.resources.providers.http import HttpProvider
from vidpipe_dagster.resources.providers.responses import error_for_status, json_body
from vidpipe_dagster.resources.providers.unit import ProviderSettings, ProviderUnit

NAME = "elevenlabs"
ENV_VAR = "VIDPIPE_ELEVENLABS_API_KEY"
DEFAULT_BASE_URL = "https://api.elevenlabs.io"
DEFAULT_VOICE_ID = "21m00Tcm4TlvDq8ikWAM"
DEFAULT_MODEL_ID = "eleven_multilingual_v2"
DEFAULT_OUTPUT_FORMAT = "mp3_44100_128"

MAX_CHARS: dict[str, int] = {
    "eleven_multilingual_v2": 10_000,
    "eleven_v3": 5_000,
    "eleven_flash_v2_5": 40_000,
    "eleven_flash_v2": 30_000,
}

VOICE_SETTING_KEYS: dict[str, str] = {
    "stability": "stability",
    "similarityBoost": "similarity_boost",
    "style": "style",
    "useSpeakerBoost": "use_speaker_boost",
    "speed": "speed",
}

QUOTA_CODES = frozenset({"quota_exceeded", "insufficient_credits", "payment_required"})


@dataclass(frozen=True)
class TtsRequest:
    """A text-to-speech call, built from a node's config without any I/O."""

    path: str
    params: dict[str, str]
    body: dict[str, Any]


@dataclass(frozen=True)
class Speech:
    """Synthesised audio and what ElevenLabs said about it.

    Attributes:
        audio: the encoded audio bytes.
        content_type: e.g. ``audio/mpeg``.
        characters: characters of text sent (the billing unit).
        character_cost: the ``character-cost`` header, when sent.
        request_id: the ``request-id`` header (for request stitching), when sent.
    """

    audio: bytes
    content_type: str
    characters: int
    character_cost: int | None
    request_id: str | None

    @property
    def extension(self) -> str:
        """A file extension matching :attr:`content_type`."""
        kind = self.content_type.split(";")[0].strip()
        return {"audio/mpeg": "mp3", "audio/wav": "wav", "audio/x-wav": "wav"}.get(kind, "mp3")


def build_tts_request(*, text: str, config: Mapping[str, Any]) -> TtsRequest:
    """The request for ``text`` with node ``config``; :class:`PermanentError` on bad input."""
    text = (text or "").strip()
    if not text:
        raise PermanentError(f"{NAME}: the script is empty", provider=NAME)
    voice_id = str(config.get("voiceId") or DEFAULT_VOICE_ID)
    model_id = str(config.get("modelId") or DEFAULT_MODEL_ID)
    limit = MAX_CHARS.get(model_id)
    if limit is not None and len(text) > limit:
        raise PermanentError(
            f"{NAME}: the script has {len(text)} characters; {model_id} accepts at most "
            f"{limit} per request (shorten it or choose eleven_flash_v2_5)",
            provider=NAME,
            code="max_character_limit_exceeded",
        )
    settings: dict[str, Any] = {}
    for key, wire in VOICE_SETTING_KEYS.items():
        if config.get(key) is not None:
            settings[wire] = config[key]
    for wire in ("stability", "similarity_boost", "style"):
        value = settings.get(wire)
        if value is not None and not (
            isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1
        ):
            raise PermanentError(
                f"{NAME}: voice setting {wire} must be a number between 0 and 1, got {value!r}",
                provider=NAME,
            )
    body: dict[str, Any] = {"text": text, "model_id": model_id}
    if settings:
        body["voice_settings"] = settings
    if config.get("languageCode"):
        body["language_code"] = config["languageCode"]
    params = {"output_format": str(config.get("outputFormat") or DEFAULT_OUTPUT_FORMAT)}
    return TtsRequest(path=f"/v1/text-to-speech/{voice_id}", params=params, body=body)


def parse_error_body(body: Any) -> tuple[str | None, str]:
    """``(code, message)`` from any of ElevenLabs' three error body shapes."""
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, dict):
        code = detail.get("code") or detail.get("status")
        return (str(code) if code else None), str(detail.get("message") or code or "error")
    if isinstance(detail, list) and detail:
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                parts.append(f"{loc}: {item.get('msg', '')}".strip(": "))
        return "validation_error", "; ".join(parts) or "validation failed"
    if isinstance(detail, str):
        return None, detail
    return None, "error"


class ElevenLabsClient(HttpProvider):
    """ElevenLabs text-to-speech over an injectable ``httpx.Client``."""

    name = NAME
    env_var = ENV_VAR
    default_base_url = DEFAULT_BASE_URL
    key_setting = "elevenlabs_api_key"
    base_url_setting = "elevenlabs_base_url"

    def auth_headers(self) -> dict[str, str]:
        """``xi-api-key``."""
        return {"xi-api-key": self._api_key.get_secret_value()}

    def parse_error(self, response: httpx.Response) -> ProviderError:
        """Map ElevenLabs' error bodies; quota errors (even as 401) are not auth errors."""
        code, message = parse_error_body(json_body(response))
        error = error_for_status(response, provider=NAME, code=code, message=message)
        if code in QUOTA_CODES:
            return PermanentError(
                str(error), provider=NAME, status_code=response.status_code, code=code
            )
        return error

    def synthesize(self, *, text: str, config: Mapping[str, Any]) -> Speech:
        """Speak ``text`` with the node's ``config``; return the audio.

        Raises :class:`PermanentError` (bad input, unknown voice, quota), :class:`AuthError`,
        :class:`RateLimitedError` / :class:`TransientError` after the retries are used up, or
        :class:`MalformedResponseError` when the answer is not audio. The request is paid
        work: a lost answer raises ``SubmissionOutcomeUnknown`` and is never sent again.
        """
        req = build_tts_request(text=text, config=config)
        response = self.request(
            "POST",
            req.path,
            params=req.params,
            json=req.body,
            headers={"Accept": "audio/mpeg"},
            ok=(200,),
            operation="submit",
        )
        content_type = response.headers.get("content-type", "")
        if not content_type.startswith("audio/") or not response.content:
            raise MalformedResponseError(
                f"{NAME}: expected audio from text-to-speech, got {content_type or 'no type'} "
                f"({len(response.content)} bytes)",
                provider=NAME,
                status_code=response.status_code,
            )
        cost = response.headers.get("character-cost") or response.headers.get("x-character-count")
        return Speech(
            audio=response.content,
            content_type=content_type,
            characters=len(req.body["text"]),
            character_cost=int(cost) if cost and cost.isdigit() else None,
            request_id=response.headers.get("request-id"),
        )


_EL = "3P developer.puter.com ElevenLabs API pricing"
RATES: dict[str, Rate] = {
    "eleven_multilingual_v2": Rate(0.10, "1k_chars", _EL, "2026-06"),
    "eleven_v3": Rate(0.10, "1k_chars", _EL, "2026-06"),
    "eleven_flash_v2_5": Rate(0.05, "1k_chars", _EL, "2026-06"),
    "eleven_flash_v2": Rate(0.05, "1k_chars", _EL, "2026-06"),
    "eleven_turbo_v2_5": Rate(0.05, "1k_chars", _EL, "2026-06"),
    "eleven_turbo_v2": Rate(0.05, "1k_chars", _EL, "2026-06"),
}


def estimate(
    node_type: str,
    config: Mapping[str, Any],
    *,
    script_chars: int | None,
    seconds: float | None,
    rates: Mapping[str, Rate],
) -> CostEstimate:
    """Per 1,000 characters of script (``script_chars``), by ``modelId``."""
    model = str(config.get("modelId") or DEFAULT_MODEL_ID)
    rate = pick_rate(rates, model, default=DEFAULT_MODEL_ID)
    chars = float(script_chars or 0)
    note = "" if script_chars is not None else "script length unknown"
    usd = (rate.usd * chars / 1000) if rate else 0.0
    return CostEstimate(NAME, usd, chars, "1k_chars", rate, note)


def build_client(provider: ProviderSettings, settings: Any) -> ElevenLabsClient:
    """The process's ElevenLabs client; :class:`MissingApiKeyError` without a key."""
    return ElevenLabsClient.for_provider(provider)


UNIT = ProviderUnit(
    name=NAME,
    title="ElevenLabs",
    mode="sync",
    paid=True,
    node_types=frozenset({"generate-voiceover"}),
    build=build_client,
    price=estimate,
    rates=RATES,
    default_rate_key=DEFAULT_MODEL_ID,
    key_env=ENV_VAR,
    key_setting="elevenlabs_api_key",
    base_url_setting="elevenlabs_base_url",
    default_in_flight_limit=5,
    media_extension="mp3",
    media_type="audio/mpeg",
    check_hint="the ElevenLabs speech history (elevenlabs.io/app/speech-synthesis/history)",
)
