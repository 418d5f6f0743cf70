"""Provider callbacks: ``POST /v1/webhooks/heygen`` and ``POST /v1/webhooks/remotion``.

Webhooks authenticate by signature, not by API token: an HMAC of the raw body with the
provider's shared secret (``VIDPIPE_HEYGEN_WEBHOOK_SECRET``: hex HMAC-SHA256 in
``X-Heygen-Signature``; ``VIDPIPE_REMOTION_WEBHOOK_SECRET``: ``sha512=<hex HMAC-SHA512>`` in
``X-Remotion-Signature``). A bad or missing signature is a 401 in the error shape.

A verified event finds the node waiting on the job (``metadata.provider_job_id``) and
finishes it through ``provider_jobs.finish_job``, the poller's own path, so a webhook and a
poll racing on one job complete it once. A job no node waits on (unknown, already finished,
superseded) and a replayed event answer 200 and change nothing, since providers retry
deliveries that fail.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.deps import _read_limited
from api.errors import ApiError
from vidpipe_dagster.domain.lifecycle import Lifecycle
from vidpipe_dagster.provider_jobs import find_job, finish_job
from vidpipe_dagster.resources.providers.base import JobStatus, ProviderError, reveal
from vidpipe_dagster.resources.providers.registry import close_client, job_client
from vidpipe_dagster.resources.providers.remotion import job_id_for

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


def _verify(
    *, secret: Any, env_var: str, signature: str | None, body: bytes, digest: Callable
) -> None:
    key = reveal(secret)
    if key is None:
        log.warning("webhook refused: %s is not set", env_var)
        raise ApiError(401, "Webhook signatures cannot be verified: no secret is configured")
    expected = hmac.new(key.encode(), body, digest).hexdigest()
    if not signature or not hmac.compare_digest(expected, signature.strip().lower()):
        raise ApiError(401, "Invalid webhook signature")


def _event(body: bytes) -> dict[str, Any]:
    try:
        event = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiError(400, "Webhook body is not valid JSON") from error
    if not isinstance(event, dict):
        raise ApiError(400, "Webhook body must be a JSON object")
    return event


def _finish(request: Request, *, provider: str, job_id: str, status: JobStatus) -> JSONResponse:
    state = request.app.state
    job = find_job(state.sessions, provider=provider, job_id=job_id)
    if job is None:
        return JSONResponse({"received": True, "outcome": "ignored"})
    client = None
    if status.state != "failed":
        try:
            client = job_client(provider, state.settings)
        except ProviderError as error:
            log.warning("webhook for %s job %s not processed: %s", provider, job_id, error)
            raise ApiError(503, f"The {provider} provider is not configured") from error
    try:
        outcome = finish_job(
            job,
            status,
            lifecycle=Lifecycle(state.sessions),
            storage=state.storage(),
            client=client,
            settings=state.settings,
            source="webhook",
        )
    finally:
        if client is not None:
            close_client(client)
    if outcome == "kept":
        raise ApiError(503, f"The {provider} result could not be fetched yet; retry later")
    return JSONResponse({"received": True, "outcome": outcome})


@router.post("/heygen")
async def heygen_webhook(request: Request) -> JSONResponse:
    """HeyGen's ``avatar_video.success`` / ``avatar_video.fail`` callback."""
    body = await _read_limited(request, request.app.state.settings.max_body_bytes)
    _verify(
        secret=request.app.state.settings.heygen_webhook_secret,
        env_var="VIDPIPE_HEYGEN_WEBHOOK_SECRET",
        signature=request.headers.get("x-heygen-signature") or request.headers.get("signature"),
        body=body,
        digest=hashlib.sha256,
    )
    event = _event(body)
    data = event.get("event_data") if isinstance(event.get("event_data"), dict) else {}
    job_id = data.get("video_id")
    kind = str(event.get("event_type") or "")
    if not isinstance(job_id, str) or kind not in ("avatar_video.success", "avatar_video.fail"):
        return JSONResponse({"received": True, "outcome": "ignored"})
    if kind == "avatar_video.success":
        url = data.get("url")
        status = JobStatus(
            state="completed", result_url=url if isinstance(url, str) else None, raw=event
        )
    else:
        reason = data.get("msg") or data.get("error") or data.get("message") or "no reason given"
        status = JobStatus(state="failed", error=str(reason), raw=event)
    return await _run(request, provider="heygen", job_id=job_id, status=status)


@router.post("/remotion")
async def remotion_webhook(request: Request) -> JSONResponse:
    """Remotion Lambda's render callback (``success``, ``error`` or ``timeout``)."""
    body = await _read_limited(request, request.app.state.settings.max_body_bytes)
    signature = request.headers.get("x-remotion-signature") or ""
    _verify(
        secret=request.app.state.settings.remotion_webhook_secret,
        env_var="VIDPIPE_REMOTION_WEBHOOK_SECRET",
        signature=signature.removeprefix("sha512="),
        body=body,
        digest=hashlib.sha512,
    )
    event = _event(body)
    render_id, bucket = event.get("renderId"), event.get("bucketName")
    if not isinstance(render_id, str) or not isinstance(bucket, str):
        return JSONResponse({"received": True, "outcome": "ignored"})
    kind = str(event.get("type") or request.headers.get("x-remotion-status") or "")
    if kind == "success":
        status = JobStatus(state="completed", raw=event)
    else:
        errors = event.get("errors") or []
        messages = [str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors]
        status = JobStatus(state="failed", error="; ".join(messages) or f"render {kind}", raw=event)
    job_id = job_id_for(bucket_name=bucket, render_id=render_id)
    return await _run(request, provider="remotion", job_id=job_id, status=status)


async def _run(request: Request, *, provider: str, job_id: str, status: JobStatus) -> JSONResponse:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(
        _finish, request, provider=provider, job_id=job_id, status=status
    )
