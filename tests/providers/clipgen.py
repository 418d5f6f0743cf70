"""ClipGen, a made-up animation provider: the whole of what adding a provider takes.

This one module is the provider (its client, price, webhook and declaration); the test that
uses it only registers ``UNIT``. Wire format: ``POST /v1/clips {"prompt", "seconds"}`` ->
``{"clip": id}``; ``GET /v1/clips/{id}`` -> ``{"state": "working"|"done"|"failed", "url",
"reason"}``; callbacks ``{"clip", "state", "url"}`` signed with a hex HMAC-SHA256 of the body
in ``X-Clipgen-Signature``. Settings come from ``CLIPGEN_API_KEY``, ``CLIPGEN_BASE_URL`` and
``CLIPGEN_WEBHOOK_SECRET``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vidpipe_dagster.domain.prices import CostEstimate, Rate
from vidpipe_dagster.resources.providers.errors import MalformedResponseError, MissingApiKeyError
from vidpipe_dagster.resources.providers.polling import PollingHttpProvider
from vidpipe_dagster.resources.providers.responses import require_json
from vidpipe_dagster.resources.providers.status import JobStatus
from vidpipe_dagster.resources.providers.unit import (
    ProviderSettings,
    ProviderUnit,
    Webhook,
    WebhookEvent,
    hmac_sha256_hex,
)

NAME = "clipgen"
STATES = {"working": "running", "done": "completed", "failed": "failed"}


def parse_status(body: Mapping[str, Any]) -> JobStatus:
    """A clip's status body."""
    state = STATES.get(str(body.get("state")))
    if state is None:
        raise MalformedResponseError(f"{NAME}: unknown clip state {body!r}", provider=NAME)
    return JobStatus(
        state=state,  # type: ignore[arg-type]
        result_url=body.get("url") if state == "completed" else None,
        error=body.get("reason"),
        raw=body,
    )


class ClipGenClient(PollingHttpProvider):
    """ClipGen over the shared HTTP plumbing."""

    name = NAME

    def auth_headers(self) -> dict[str, str]:
        """Bearer key."""
        return {"Authorization": f"Bearer {self._api_key.get_secret_value()}"}

    def submit(
        self,
        *,
        config: Mapping[str, Any],
        prompt: str | None,
        image: bytes | None = None,
        image_mime_type: str = "image/png",
    ) -> str:
        """Start a clip; return its id."""
        body = {"prompt": prompt, "seconds": int(config.get("duration") or 4)}
        response = self.request("POST", "/v1/clips", json=body, ok=(200,), operation="submit")
        return str(require_json(response, provider=NAME, what="clip submit")["clip"])

    def status_path(self, job_id: str) -> tuple[str, dict[str, str] | None]:
        """``/v1/clips/{id}``."""
        return f"/v1/clips/{job_id}", None

    def parse_status(self, body: dict[str, Any]) -> JobStatus:
        """See :func:`parse_status`."""
        return parse_status(body)


def build(provider: ProviderSettings, settings: Any) -> ClipGenClient:
    """The client, from ``CLIPGEN_*``."""
    if provider.api_key is None:
        raise MissingApiKeyError("CLIPGEN_API_KEY", provider=NAME)
    return ClipGenClient(api_key=provider.api_key, base_url=provider.base_url, http=provider.http)


def estimate(node_type: str, config: Mapping[str, Any], *, rates, **_: Any) -> CostEstimate:
    """Per second of clip."""
    seconds = float(config.get("duration") or 4)
    rate = rates["clip"]
    return CostEstimate(NAME, rate.usd * seconds, seconds, "second", rate)


def parse_webhook(event: dict[str, Any], headers: Mapping[str, str]) -> WebhookEvent:
    """``{"clip", "state", "url"}``."""
    if not isinstance(event.get("clip"), str):
        return WebhookEvent(job_id=None, status=None)
    return WebhookEvent(job_id=event["clip"], status=parse_status(event))


UNIT = ProviderUnit(
    name=NAME,
    title="ClipGen",
    mode="async",
    paid=True,
    node_types=frozenset({"generate-animation"}),
    build=build,
    price=estimate,
    rates={"clip": Rate(0.25, "second", "made up for the test", "2026-12")},
    default_rate_key="clip",
    key_env="CLIPGEN_API_KEY",
    base_url_env="CLIPGEN_BASE_URL",
    default_in_flight_limit=2,
    webhook=Webhook(
        secret_env="CLIPGEN_WEBHOOK_SECRET",
        verify=hmac_sha256_hex("x-clipgen-signature"),
        parse=parse_webhook,
    ),
    check_hint="ClipGen's clip list",
)
