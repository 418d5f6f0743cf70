"""HeyGen avatar video: asynchronous, submit then poll (or receive a webhook).

Two API generations, chosen by ``api_version`` (setting ``VIDPIPE_HEYGEN_API_VERSION``):

- ``v3`` (current, default): ``POST /v3/videos`` (``type: "avatar"``), ``GET /v3/videos/{id}``.
  ``width``/``height`` become ``resolution`` + ``aspect_ratio``; there is no test mode.
- ``v2`` (legacy): ``POST /v2/video/generate`` (``video_inputs``, ``dimension``, ``test``),
  ``GET /v1/video_status.get?video_id=``.

Both authenticate with ``X-Api-Key`` and answer ``data.video_id`` on submit. Node config keys:
``avatarId``, ``voiceId``, ``width``, ``height``, ``test``. The avatar speaks either ``script``
(text, with ``voiceId``) or ``audio_url`` (a short-lived URL to a voiceover node's audio).
``video_url`` is presigned and expires (7 days): copy it into storage at once with
:meth:`HeyGenClient.fetch_result`, which re-polls for a fresh URL when one is refused.

Usage::

    heygen = HeyGenClient.from_settings(settings)
    job_id = heygen.submit(config=node.config, script=text)          # in the run
    status = heygen.poll(job_id)                                       # or apoll_many(...)
    if status.state == "completed":
        heygen.fetch_result(job_id, tmp_path / "out.mp4")
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
from pydantic import SecretStr

from vidpipe_dagster.domain.prices import (
    CHARS_PER_SECOND_OF_SPEECH,
    CostEstimate,
    Rate,
    pick_rate,
    resolution_suffix,
)
from vidpipe_dagster.resources.providers.errors import (
    MalformedResponseError,
    ProviderError,
)
from vidpipe_dagster.resources.providers.heygen_wire import (
    NAME,
    REFERENCE_MARK,
    ApiVersion,
    build_submit,
    parse_error_body,
    parse_status,
    titled,
)
from vidpipe_dagster.resources.providers.http_settings import HttpSettings
from vidpipe_dagster.resources.providers.polling import PollingHttpProvider
from vidpipe_dagster.resources.providers.responses import (
    dig,
    error_for_status,
    json_body,
    require_json,
)
from vidpipe_dagster.resources.providers.status import JobStatus
from vidpipe_dagster.resources.providers.unit import (
    ProviderSettings,
    ProviderUnit,
    Webhook,
    WebhookEvent,
    hmac_sha256_hex,
)

ENV_VAR = "VIDPIPE_HEYGEN_API_KEY"
DEFAULT_BASE_URL = "https://api.heygen.com"
LOOKUP_ATTEMPTS = 3
"""Listings tried before a lost submission counts as not received (a new video may take a
moment to be listed)."""


class HeyGenClient(PollingHttpProvider):
    """HeyGen's video API (v3 or legacy v2) over an injectable ``httpx.Client``."""

    name = NAME
    env_var = ENV_VAR
    default_base_url = DEFAULT_BASE_URL
    key_setting = "heygen_api_key"
    base_url_setting = "heygen_base_url"

    def __init__(
        self,
        *,
        api_key: SecretStr | str,
        base_url: str | None = None,
        api_version: ApiVersion = "v3",
        client: httpx.Client | None = None,
        http: HttpSettings | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(api_key=api_key, base_url=base_url, client=client, http=http, **kwargs)
        self.api_version: ApiVersion = api_version

    @classmethod
    def from_settings(
        cls, settings: Any, *, client: httpx.Client | None = None, **extra: Any
    ) -> HeyGenClient:
        """A client from vidpipe settings; :class:`MissingApiKeyError` without a key."""
        extra.setdefault("api_version", settings.heygen_api_version)
        return super().from_settings(settings, client=client, **extra)

    def auth_headers(self) -> dict[str, str]:
        """``X-Api-Key``."""
        return {"X-Api-Key": self._api_key.get_secret_value()}

    def parse_error(self, response: httpx.Response) -> ProviderError:
        """Map HeyGen error bodies (v1 numeric codes, v2/v3 ``error.code``)."""
        code, message = parse_error_body(json_body(response))
        return error_for_status(response, provider=NAME, code=code, message=message)

    def submit(
        self,
        *,
        config: Mapping[str, Any],
        script: str | None = None,
        audio_url: str | None = None,
        title: str | None = None,
        callback_url: str | None = None,
        callback_id: str | None = None,
        reference: str | None = None,
    ) -> str:
        """Start an avatar video; return HeyGen's ``video_id``.

        ``audio_url`` (a voiceover's presigned URL) wins over ``script``. ``callback_url``
        asks HeyGen to call a webhook when the video finishes. ``reference`` (the execution's
        process_uuid) is sent as ``callback_id`` (echoed by the webhook) and in the title, so
        :meth:`find_submission` can find the video if this call's answer is lost; a lost
        answer raises ``SubmissionOutcomeUnknown`` and is never sent again.
        """
        path, body = build_submit(
            api_version=self.api_version,
            config=config,
            script=script,
            audio_url=audio_url,
            title=titled(title, reference),
            callback_url=callback_url,
            callback_id=callback_id or reference,
        )
        response = self.request("POST", path, json=body, ok=(200, 201), operation="submit")
        payload = require_json(response, provider=NAME, what="video submit")
        video_id = dig(payload, "data", "video_id")
        if not isinstance(video_id, str) or not video_id:
            raise MalformedResponseError(
                f"{NAME}: submit answered without data.video_id: {str(payload)[:200]}",
                provider=NAME,
            )
        return video_id

    def find_submission(self, reference: str) -> str | None:
        """The ``video_id`` of the video submitted with ``reference``, else ``None``.

        Lists ``GET /v3/videos?title=<reference>`` (the title holds ``ref <reference>``; the
        listing covers videos made through either API version), a few times with backoff
        since a new video may take a moment to be listed.
        """
        for attempt in range(1, LOOKUP_ATTEMPTS + 1):
            response = self.request(
                "GET", "/v3/videos", params={"title": reference, "limit": 10}, ok=(200,)
            )
            payload = require_json(response, provider=NAME, what="video list")
            for item in payload.get("data") or []:
                title = item.get("title") if isinstance(item, dict) else None
                if isinstance(title, str) and f"{REFERENCE_MARK} {reference}" in title:
                    video_id = item.get("id") or item.get("video_id")
                    if isinstance(video_id, str) and video_id:
                        return video_id
            if attempt < LOOKUP_ATTEMPTS:
                self.sleep(self.http.policy("read").delay(attempt))
        return None

    def status_path(self, job_id: str) -> tuple[str, dict[str, str] | None]:
        """``/v3/videos/{id}`` or ``/v1/video_status.get?video_id=``."""
        if self.api_version == "v3":
            return f"/v3/videos/{job_id}", None
        return "/v1/video_status.get", {"video_id": job_id}

    def parse_status(self, body: dict[str, Any]) -> JobStatus:
        """See :func:`parse_status`."""
        return parse_status(body)


def estimate(
    node_type: str,
    config: Mapping[str, Any],
    *,
    script_chars: int | None,
    seconds: float | None,
    rates: Mapping[str, Rate],
) -> CostEstimate:
    """Per second of output: ``seconds``, else the script's speaking time (about 1,000
    characters a minute); ``config.avatarType`` ``photo_avatar`` or ``digital_twin`` (default),
    4K when ``width``/``height`` say so."""
    kind = str(config.get("avatarType") or DEFAULT_RATE_KEY)
    four_k = resolution_suffix(config) == "_4k"
    rate = pick_rate(rates, kind + ("_4k" if four_k else ""), kind, default=DEFAULT_RATE_KEY)
    note = ""
    if seconds is None:
        if script_chars is not None:
            seconds = script_chars / CHARS_PER_SECOND_OF_SPEECH
            note = "duration estimated from the script length"
        else:
            seconds = 0.0
            note = "duration unknown"
    usd = rate.usd * seconds if rate else 0.0
    return CostEstimate(NAME, usd, float(seconds), "second", rate, note)


_HG = "DOC developers.heygen.com pricing (v3 self-serve)"
DEFAULT_RATE_KEY = "digital_twin"
RATES: dict[str, Rate] = {
    "photo_avatar": Rate(0.05, "second", _HG, "2026"),
    "photo_avatar_4k": Rate(0.0667, "second", _HG, "2026"),
    "digital_twin": Rate(0.0667, "second", _HG, "2026"),
    "digital_twin_4k": Rate(0.0833, "second", _HG, "2026"),
}


def build_client(provider: ProviderSettings, settings: Any) -> HeyGenClient:
    """The process's HeyGen client; :class:`MissingApiKeyError` without a key."""
    return HeyGenClient.for_provider(provider, api_version=settings.heygen_api_version)


def parse_webhook(event: dict[str, Any], headers: Mapping[str, str]) -> WebhookEvent:
    """``avatar_video.success`` / ``avatar_video.fail``; ``callback_id`` is our reference."""
    data = event.get("event_data")
    data = data if isinstance(data, dict) else {}
    job_id = data.get("video_id")
    reference = data.get("callback_id")
    reference = reference if isinstance(reference, str) and reference else None
    kind = str(event.get("event_type") or "")
    if not isinstance(job_id, str) or kind not in ("avatar_video.success", "avatar_video.fail"):
        return WebhookEvent(job_id=None, status=None)
    if kind == "avatar_video.success":
        url = data.get("url")
        status = JobStatus(
            state="completed", result_url=url if isinstance(url, str) else None, raw=event
        )
    else:
        reason = data.get("msg") or data.get("error") or data.get("message") or "no reason given"
        status = JobStatus(state="failed", error=str(reason), raw=event)
    return WebhookEvent(job_id=job_id, status=status, reference=reference)


UNIT = ProviderUnit(
    name=NAME,
    title="HeyGen",
    mode="async",
    paid=True,
    node_types=frozenset({"talking-head"}),
    build=build_client,
    price=estimate,
    rates=RATES,
    default_rate_key=DEFAULT_RATE_KEY,
    key_env=ENV_VAR,
    key_setting="heygen_api_key",
    base_url_setting="heygen_base_url",
    max_wait_setting="heygen_max_wait_seconds",
    default_in_flight_limit=10,
    webhook=Webhook(
        secret_env="VIDPIPE_HEYGEN_WEBHOOK_SECRET",
        verify=hmac_sha256_hex("x-heygen-signature", "signature"),
        parse=parse_webhook,
    ),
    webhook_secret_setting="heygen_webhook_secret",
    finds_submissions=True,
    check_hint="the HeyGen dashboard's video list (app.heygen.com/projects)",
)
