"""Provider callbacks: ``POST /v1/webhooks/{provider}``, one route for every provider.

The provider's unit (``resources/providers/<name>.py``) declares its webhook: the variable
holding the shared secret, the signature check (an HMAC of the raw body: HeyGen hex
HMAC-SHA256 in ``X-Heygen-Signature``, Remotion ``sha512=<hex HMAC-SHA512>`` in
``X-Remotion-Signature``) and the parser. Webhooks authenticate by signature, not by API
token: a bad or missing signature is a 401 in the error shape; a provider without a webhook
is a 404.

A verified event finds the node waiting on the job (``metadata.provider_job_id``, or the
execution named by our own reference when the provider echoes it, e.g. HeyGen's
``callback_id``) and finishes it through ``provider_jobs.finish_job``, the poller's own path,
so a webhook and a poll racing on one job complete it once. A job no node waits on (unknown,
already finished, superseded) and a replayed event answer 200 and change nothing, since
providers retry deliveries that fail.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.deps import _read_limited
from api.errors import ApiError
from api.responses import WebhookReceipt, errors
from vidpipe_dagster.assets.provider_jobs import find_job, finish_job
from vidpipe_dagster.domain.lifecycle import Lifecycle
from vidpipe_dagster.resources.providers.clients import shared_clients
from vidpipe_dagster.resources.providers.errors import ProviderError
from vidpipe_dagster.resources.providers.keys import reveal
from vidpipe_dagster.resources.providers.registry import get_unit
from vidpipe_dagster.resources.providers.unit import WebhookEvent

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


def _event(body: bytes) -> dict[str, Any]:
    try:
        event = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiError(400, "Webhook body is not valid JSON") from error
    if not isinstance(event, dict):
        raise ApiError(400, "Webhook body must be a JSON object")
    return event


def _finish(request: Request, *, provider: str, event: WebhookEvent) -> JSONResponse:
    state = request.app.state
    job = find_job(
        state.sessions, provider=provider, job_id=event.job_id, reference=event.reference
    )
    if job is None or event.status is None:
        return JSONResponse({"received": True, "outcome": "ignored"})
    providers = getattr(state, "providers", None) or shared_clients(state.settings)
    try:
        client = providers.client(provider)
    except ProviderError as error:
        log.warning("webhook for %s job %s not processed: %s", provider, job.job_id, error)
        raise ApiError(503, f"The {provider} provider is not configured") from error
    outcome = finish_job(
        job,
        event.status,
        lifecycle=Lifecycle(state.sessions),
        storage=state.storage(),
        client=client,
        settings=state.settings,
        source="webhook",
    )
    if outcome == "kept":
        raise ApiError(503, f"The {provider} result could not be fetched yet; retry later")
    return JSONResponse({"received": True, "outcome": outcome})


SIGNATURE_HEADERS = {
    "X-Heygen-Signature": "heygen: hex HMAC-SHA256 of the raw body with "
    "VIDPIPE_HEYGEN_WEBHOOK_SECRET.",
    "X-Remotion-Signature": "remotion: sha512=<hex HMAC-SHA512 of the raw body with "
    "VIDPIPE_REMOTION_WEBHOOK_SECRET>.",
}
"""The signature header each provider sends (documented in the OpenAPI document)."""

WEBHOOK_DOC: dict[str, Any] = {
    "parameters": [
        {
            "name": header,
            "in": "header",
            "required": False,
            "description": text + " A missing or wrong signature is a 401.",
            "schema": {"type": "string"},
        }
        for header, text in SIGNATURE_HEADERS.items()
    ],
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
    },
}


@router.post(
    "/{provider}",
    response_model=WebhookReceipt,
    responses=errors(
        400,
        401,
        404,
        413,
        422,
        503,
        notes={
            400: "The body is not a JSON object",
            401: "Missing or invalid signature, or no webhook secret configured",
            404: "No webhook for that provider",
            503: "The provider is not configured, or its result cannot be fetched yet",
        },
    ),
    openapi_extra=WEBHOOK_DOC,
)
async def provider_webhook(provider: str, request: Request) -> JSONResponse:
    """A provider's job callback, verified by its signature and parsed by its unit."""
    unit = get_unit(provider)
    if unit is None or unit.webhook is None:
        raise ApiError(404, f"No webhook for provider {provider!r}")
    body = await _read_limited(request, request.app.state.settings.max_body_bytes)
    secret = reveal(unit.settings(request.app.state.settings).webhook_secret)
    if secret is None:
        log.warning("webhook refused: %s is not set", unit.webhook.secret_env)
        raise ApiError(401, "Webhook signatures cannot be verified: no secret is configured")
    headers = {name.lower(): value for name, value in request.headers.items()}
    if not unit.webhook.verify(secret, body, headers):
        raise ApiError(401, "Invalid webhook signature")
    event = unit.webhook.parse(_event(body), headers)
    if event.status is None:
        return JSONResponse({"received": True, "outcome": "ignored"})
    return await run_in_threadpool(_finish, request, provider=provider, event=event)
