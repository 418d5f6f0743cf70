"""Runway video generation: tasks.

``POST /v1/image_to_video`` (or ``/v1/text_to_video`` without an image) with headers
``Authorization: Bearer <key>`` and ``X-Runway-Version: 2024-11-06`` answers ``{"id"}``;
``GET /v1/tasks/{id}`` walks ``PENDING`` -> (``THROTTLED``) -> ``RUNNING`` -> ``SUCCEEDED`` |
``FAILED`` | ``CANCELLED``. ``THROTTLED`` means queued behind the organisation's concurrency
limit: a wait, reported as ``queued``, never a failure. ``output`` URLs are signed and expire
within 24-48 h; :meth:`RunwayClient.fetch_result` re-polls for fresh ones.

Node config keys: ``model`` (default ``gen4_turbo``), ``ratio`` (e.g. ``1280:720``),
``duration`` (seconds). Inputs: ``prompt`` text and ``referenceImage`` (bytes sent as a data
URI, or an HTTPS URL).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import httpx

from vidpipe_dagster.domain.prices import Rate, per_second_of_video
from vidpipe_dagster.resources.providers.errors import (
    MalformedResponseError,
    PermanentError,
    ProviderError,
)
from vidpipe_dagster.resources.providers.polling import PollingHttpProvider
from vidpipe_dagster.resources.providers.responses import error_for_status, json_body, require_json
from vidpipe_dagster.resources.providers.status import JobState, JobStatus
from vidpipe_dagster.resources.providers.unit import ProviderSettings, ProviderUnit

NAME = "runway"
ENV_VAR = "VIDPIPE_RUNWAY_API_KEY"
DEFAULT_BASE_URL = "https://api.dev.runwayml.com"
API_VERSION = "2024-11-06"
DEFAULT_MODEL = "gen4_turbo"
DEFAULT_RATIO = "1280:720"
USD_PER_CREDIT = 0.01
MAX_DATA_URI_BYTES = 5 * 1024 * 1024
RATIOS: dict[str, tuple[str, ...]] = {
    "gen4_turbo": ("1280:720", "720:1280", "1104:832", "832:1104", "960:960", "1584:672"),
    "veo3.1": ("1280:720", "720:1280", "1080:1920", "1920:1080"),
    "veo3.1_fast": ("1280:720", "720:1280", "1080:1920", "1920:1080"),
}
IMAGE_ONLY_MODELS = frozenset({"gen4_turbo"})
STATES: dict[str, JobState] = {
    "PENDING": "queued",
    "THROTTLED": "queued",
    "RUNNING": "running",
    "SUCCEEDED": "completed",
    "FAILED": "failed",
    "CANCELLED": "failed",
}


def build_submit(
    *,
    config: Mapping[str, Any],
    prompt: str | None = None,
    image: bytes | None = None,
    image_mime_type: str = "image/png",
    image_url: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """``(path, JSON body)`` of a task submission; :class:`PermanentError` on bad input."""
    model = str(config.get("model") or DEFAULT_MODEL)
    ratio = str(config.get("ratio") or DEFAULT_RATIO)
    allowed = RATIOS.get(model)
    if allowed and ratio not in allowed:
        raise PermanentError(
            f"{NAME}: config.ratio {ratio!r} is not valid for {model}; use one of {allowed}",
            provider=NAME,
        )
    body: dict[str, Any] = {"model": model, "ratio": ratio}
    if config.get("duration") is not None:
        body["duration"] = int(config["duration"])
    prompt = (prompt or "").strip()
    if prompt:
        body["promptText"] = prompt[:1000]
    if image is not None:
        if len(image) > MAX_DATA_URI_BYTES:
            raise PermanentError(
                f"{NAME}: the reference image is {len(image)} bytes; inline images must be "
                "at most 5 MB (pass an HTTPS URL instead)",
                provider=NAME,
            )
        encoded = base64.b64encode(image).decode("ascii")
        body["promptImage"] = f"data:{image_mime_type};base64,{encoded}"
    elif image_url:
        body["promptImage"] = image_url
    if "promptImage" in body:
        return "/v1/image_to_video", body
    if model in IMAGE_ONLY_MODELS:
        raise PermanentError(
            f"{NAME}: {model} needs a referenceImage input (or choose model gen4.5 for "
            "text-to-video)",
            provider=NAME,
        )
    if not prompt:
        raise PermanentError(f"{NAME}: text-to-video needs a prompt", provider=NAME)
    return "/v1/text_to_video", body


def parse_status(body: Mapping[str, Any]) -> JobStatus:
    """The :class:`JobStatus` of a ``GET /v1/tasks/{id}`` body."""
    status = body.get("status")
    if not isinstance(status, str) or status not in STATES:
        raise MalformedResponseError(
            f"{NAME}: task without a known status: {str(body)[:200]}", provider=NAME
        )
    state = STATES[status]
    credits = body.get("cost", {}).get("credits") if isinstance(body.get("cost"), dict) else None
    cost = float(credits) * USD_PER_CREDIT if isinstance(credits, int | float) else None
    progress = body.get("progress")
    progress = float(progress) if isinstance(progress, int | float) else None
    if state == "completed":
        output = body.get("output")
        if not isinstance(output, list) or not output or not isinstance(output[0], str):
            raise MalformedResponseError(f"{NAME}: SUCCEEDED task without output", provider=NAME)
        return JobStatus(state=state, progress=1.0, result_url=output[0], raw=body, cost_usd=cost)
    if status == "CANCELLED":
        return JobStatus(state=state, error="the task was cancelled", raw=body, cost_usd=cost)
    if state == "failed":
        reason = str(body.get("failure") or "the task failed")
        code = body.get("failureCode")
        return JobStatus(
            state=state,
            error=f"{reason} ({code})" if code else reason,
            raw=body,
            cost_usd=cost,
        )
    return JobStatus(state=state, progress=progress, raw=body, cost_usd=cost)


def parse_error_body(body: Any) -> tuple[str | None, str]:
    """``(code, message)`` from ``{"error": ..., "issues": [...]}``."""
    if not isinstance(body, dict):
        return None, "error"
    message = str(body.get("error") or body.get("message") or "error")
    issues = body.get("issues")
    if isinstance(issues, list) and issues:
        details = "; ".join(
            f"{'.'.join(map(str, i.get('path', [])))}: {i.get('message', '')}"
            for i in issues
            if isinstance(i, dict)
        )
        message = f"{message}: {details}"
    return None, message


class RunwayClient(PollingHttpProvider):
    """Runway's task API over an injectable ``httpx.Client``."""

    name = NAME
    env_var = ENV_VAR
    default_base_url = DEFAULT_BASE_URL
    key_setting = "runway_api_key"
    base_url_setting = "runway_base_url"
    not_taken_statuses = frozenset({408, 429, 502, 503, 504})
    """Runway documents 502/503/504 as load shedding: the task was not created."""

    def auth_headers(self) -> dict[str, str]:
        """``Authorization: Bearer`` and ``X-Runway-Version``."""
        return {
            "Authorization": f"Bearer {self._api_key.get_secret_value()}",
            "X-Runway-Version": API_VERSION,
        }

    def parse_error(self, response: httpx.Response) -> ProviderError:
        """Map ``{"error", "issues"}`` bodies (insufficient credits is a 400: permanent)."""
        code, message = parse_error_body(json_body(response))
        return error_for_status(response, provider=NAME, code=code, message=message)

    def submit(
        self,
        *,
        config: Mapping[str, Any],
        prompt: str | None = None,
        image: bytes | None = None,
        image_mime_type: str = "image/png",
        image_url: str | None = None,
    ) -> str:
        """Start a generation task; return its id.

        Runway keeps no reference of ours on a task, so a lost answer raises
        ``SubmissionOutcomeUnknown`` and is never sent again.
        """
        path, body = build_submit(
            config=config,
            prompt=prompt,
            image=image,
            image_mime_type=image_mime_type,
            image_url=image_url,
        )
        response = self.request("POST", path, json=body, ok=(200, 201), operation="submit")
        payload = require_json(response, provider=NAME, what="task submit")
        task_id = payload.get("id")
        if not isinstance(task_id, str) or not task_id:
            raise MalformedResponseError(f"{NAME}: submit answered without an id", provider=NAME)
        return task_id

    def cancel(self, job_id: str) -> None:
        """Cancel (or delete) a task; a task that is already gone is fine."""
        self.request("DELETE", f"/v1/tasks/{job_id}", ok=(200, 204, 404))

    def status_path(self, job_id: str) -> tuple[str, dict[str, str] | None]:
        """``/v1/tasks/{id}``."""
        return f"/v1/tasks/{job_id}", None

    def parse_status(self, body: dict[str, Any]) -> JobStatus:
        """See :func:`parse_status`."""
        return parse_status(body)


_RW = "runwayml/skills; 3P toolcolumn.com ($0.01/credit)"
RATES: dict[str, Rate] = {
    "gen4_turbo": Rate(0.05, "second", _RW, "2026-05"),
    "gen4.5": Rate(0.12, "second", _RW, "2026-05"),
    "veo3": Rate(0.40, "second", _RW, "2026-05"),
    "veo3.1": Rate(0.40, "second", _RW, "2026-05"),
    "veo3.1_fast": Rate(0.15, "second", _RW, "2026-05"),
}
DEFAULT_SECONDS = 5


estimate = per_second_of_video(
    provider=NAME, default_model=DEFAULT_MODEL, default_seconds=DEFAULT_SECONDS
)


def build_client(provider: ProviderSettings, settings: Any) -> RunwayClient:
    """The process's Runway client; :class:`MissingApiKeyError` without a key."""
    return RunwayClient.for_provider(provider)


UNIT = ProviderUnit(
    name=NAME,
    title="Runway",
    mode="async",
    paid=True,
    node_types=frozenset({"generate-animation"}),
    build=build_client,
    price=estimate,
    rates=RATES,
    default_rate_key=DEFAULT_MODEL,
    key_env=ENV_VAR,
    key_setting="runway_api_key",
    base_url_setting="runway_base_url",
    max_wait_setting="runway_max_wait_seconds",
    default_in_flight_limit=5,
    check_hint="the task history of the Runway developer portal (dev.runwayml.com)",
)
