"""Google Veo 3.x through the Gemini API: a long-running operation.

``POST {base}/models/{model}:predictLongRunning`` (header ``x-goog-api-key``) answers an
operation ``{"name": "models/{model}/operations/{id}"}``; ``GET {base}/{name}`` until
``done: true``. The video is at ``response.generateVideoResponse.generatedSamples[0].video.uri``
and downloading it needs the key too (:meth:`VeoClient.fetch_result` sends it). A safety
block is ``done`` with ``raiMediaFilteredCount`` and no samples: reported as ``failed`` with
the filter reasons. The job id is the operation name.

Node config keys: ``model``, ``duration`` (4, 6 or 8), ``aspectRatio`` (16:9 or 9:16),
``negativePrompt`` (and optionally ``resolution``). Inputs: ``prompt`` text and an optional
``referenceImage`` (bytes + mime type, sent inline as the first frame).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import httpx

from vidpipe_dagster.domain.prices import Rate, per_second_of_video
from vidpipe_dagster.resources.providers.errors import (
    AuthError,
    MalformedResponseError,
    PermanentError,
    ProviderError,
)
from vidpipe_dagster.resources.providers.polling import PollingHttpProvider
from vidpipe_dagster.resources.providers.responses import (
    dig,
    error_for_status,
    json_body,
    require_json,
)
from vidpipe_dagster.resources.providers.status import JobStatus
from vidpipe_dagster.resources.providers.unit import ProviderSettings, ProviderUnit

NAME = "veo3"
ENV_VAR = "VIDPIPE_GEMINI_API_KEY"
DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
DEFAULT_MODEL = "veo-3.1-generate-preview"
DURATIONS = (4, 6, 8)
ASPECT_RATIOS = ("16:9", "9:16")
AUTH_REASONS = ("API_KEY_INVALID", "API key not valid", "API_KEY_SERVICE_BLOCKED")


def build_submit(
    *,
    config: Mapping[str, Any],
    prompt: str,
    image: bytes | None = None,
    image_mime_type: str = "image/png",
) -> tuple[str, dict[str, Any]]:
    """``(path, JSON body)`` of ``predictLongRunning``; :class:`PermanentError` on bad input."""
    prompt = (prompt or "").strip()
    if not prompt:
        raise PermanentError(f"{NAME}: the prompt is empty", provider=NAME)
    model = str(config.get("model") or DEFAULT_MODEL)
    duration = int(config.get("duration") or 8)
    if duration not in DURATIONS:
        raise PermanentError(
            f"{NAME}: config.duration must be one of {DURATIONS} seconds, got {duration}",
            provider=NAME,
        )
    aspect = str(config.get("aspectRatio") or "16:9")
    if aspect not in ASPECT_RATIOS:
        raise PermanentError(
            f"{NAME}: config.aspectRatio must be one of {ASPECT_RATIOS}, got {aspect!r}",
            provider=NAME,
        )
    instance: dict[str, Any] = {"prompt": prompt}
    if image is not None:
        instance["image"] = {
            "bytesBase64Encoded": base64.b64encode(image).decode("ascii"),
            "mimeType": image_mime_type,
        }
    parameters: dict[str, Any] = {
        "aspectRatio": aspect,
        "durationSeconds": duration,
        "personGeneration": "allow_adult" if image is not None else "allow_all",
        "sampleCount": 1,
    }
    if config.get("resolution"):
        parameters["resolution"] = config["resolution"]
    if config.get("negativePrompt"):
        parameters["negativePrompt"] = config["negativePrompt"]
    return f"/models/{model}:predictLongRunning", {
        "instances": [instance],
        "parameters": parameters,
    }


def parse_status(body: Mapping[str, Any]) -> JobStatus:
    """The :class:`JobStatus` of a Gemini API operation body."""
    if not isinstance(body.get("name"), str):
        raise MalformedResponseError(
            f"{NAME}: operation without a name: {str(body)[:200]}", provider=NAME
        )
    if not body.get("done"):
        progress = dig(body, "metadata", "progressPercent")
        return JobStatus(
            state="running",
            progress=float(progress) / 100 if isinstance(progress, int | float) else None,
            raw=body,
        )
    error = body.get("error")
    if isinstance(error, dict):
        return JobStatus(
            state="failed",
            error=f"{error.get('message') or 'operation failed'} (code {error.get('code')})",
            raw=body,
        )
    video_response = dig(body, "response", "generateVideoResponse")
    if not isinstance(video_response, dict):
        raise MalformedResponseError(
            f"{NAME}: finished operation without response.generateVideoResponse", provider=NAME
        )
    uri = dig(video_response, "generatedSamples", 0, "video", "uri")
    if isinstance(uri, str) and uri:
        return JobStatus(state="completed", progress=1.0, result_url=uri, raw=body)
    if video_response.get("raiMediaFilteredCount"):
        reasons = video_response.get("raiMediaFilteredReasons") or []
        return JobStatus(
            state="failed",
            error="blocked by Veo's safety filters: "
            + ("; ".join(map(str, reasons)) or "no reason"),
            raw=body,
        )
    raise MalformedResponseError(
        f"{NAME}: finished operation without a generated video uri", provider=NAME
    )


class VeoClient(PollingHttpProvider):
    """Veo on the Gemini API (API key) over an injectable ``httpx.Client``."""

    name = NAME
    env_var = ENV_VAR
    default_base_url = DEFAULT_BASE_URL
    key_setting = "gemini_api_key"
    base_url_setting = "gemini_base_url"
    result_needs_auth = True

    def auth_headers(self) -> dict[str, str]:
        """``x-goog-api-key``."""
        return {"x-goog-api-key": self._api_key.get_secret_value()}

    def parse_error(self, response: httpx.Response) -> ProviderError:
        """Map Google's ``{"error": {code, message, status}}``; an invalid key is an auth error."""
        body = json_body(response)
        error = body.get("error") if isinstance(body, dict) else None
        status = (
            str(error.get("status")) if isinstance(error, dict) and error.get("status") else None
        )
        message = str(error.get("message")) if isinstance(error, dict) else "error"
        mapped = error_for_status(response, provider=NAME, code=status, message=message)
        if response.status_code == 400 and any(reason in str(body) for reason in AUTH_REASONS):
            return AuthError(str(mapped), provider=NAME, status_code=400, code=status, body=body)
        return mapped

    def submit(
        self,
        *,
        config: Mapping[str, Any],
        prompt: str,
        image: bytes | None = None,
        image_mime_type: str = "image/png",
    ) -> str:
        """Start a video generation; return the operation name (the job id).

        The Gemini API keeps no reference of ours on an operation, so a lost answer raises
        ``SubmissionOutcomeUnknown`` and is never sent again.
        """
        path, body = build_submit(
            config=config, prompt=prompt, image=image, image_mime_type=image_mime_type
        )
        response = self.request("POST", path, json=body, ok=(200,), operation="submit")
        payload = require_json(response, provider=NAME, what="predictLongRunning")
        name = payload.get("name")
        if not isinstance(name, str) or "/operations/" not in name:
            raise MalformedResponseError(
                f"{NAME}: predictLongRunning answered without an operation name", provider=NAME
            )
        return name

    def status_path(self, job_id: str) -> tuple[str, dict[str, str] | None]:
        """``/{operation name}``."""
        return f"/{job_id}", None

    def parse_status(self, body: dict[str, Any]) -> JobStatus:
        """See :func:`parse_status`."""
        return parse_status(body)


_VEO = "3P transcription of ai.google.dev/gemini-api/docs/pricing"
_VEO_FAST = "3P reapi.ai, citing the Gemini docs"
RATES: dict[str, Rate] = {
    "veo-3.1-generate-preview": Rate(0.40, "second", _VEO, "2026-09-20"),
    "veo-3.1-generate-preview_4k": Rate(0.60, "second", _VEO, "2026-09-20"),
    "veo-3.1-fast-generate-preview": Rate(0.10, "second", _VEO_FAST, "2026-05"),
    "veo-3.1-fast-generate-preview_1080p": Rate(0.12, "second", _VEO_FAST, "2026-05"),
    "veo-3.1-fast-generate-preview_4k": Rate(0.30, "second", _VEO_FAST, "2026-05"),
    "veo-3.1-lite-generate-preview": Rate(0.05, "second", _VEO_FAST, "2026-05"),
}
DEFAULT_SECONDS = 8


estimate = per_second_of_video(
    provider=NAME, default_model=DEFAULT_MODEL, default_seconds=DEFAULT_SECONDS
)


def build_client(provider: ProviderSettings, settings: Any) -> VeoClient:
    """The process's Veo client; :class:`MissingApiKeyError` without a key."""
    return VeoClient.for_provider(provider)


UNIT = ProviderUnit(
    name=NAME,
    title="Veo 3 (Gemini API)",
    mode="async",
    paid=True,
    node_types=frozenset({"generate-animation"}),
    build=build_client,
    price=estimate,
    rates=RATES,
    default_rate_key=DEFAULT_MODEL,
    key_env=ENV_VAR,
    key_setting="gemini_api_key",
    base_url_setting="gemini_base_url",
    max_wait_setting="veo_max_wait_seconds",
    default_in_flight_limit=10,
    check_hint="the Gemini API usage page of the key's Google Cloud project "
    "(aistudio.google.com/usage)",
)
