"""Remotion Lambda rendering: start a render, poll its progress, copy the output.

Both calls are synchronous AWS Lambda invocations (boto3 ``lambda.invoke``) of the deployed
Remotion function, with the payloads ``remotion-lambda``'s Python SDK sends: ``{"type":
"start", ...}`` answers ``{"type": "success", "renderId", "bucketName"}``; ``{"type":
"status", ...}`` answers the progress (``overallProgress``, ``done``, ``outputFile``,
``outKey``, ``costs``, ``errors``, ``fatalErrorEncountered``). A response may hold several
concatenated JSON objects (response streaming); the last one counts. The job id is
``"{bucketName}:{renderId}"``.

The Lambda and S3 clients are injectable (tests use a fake Lambda endpoint; production builds
them with boto3 from settings). :meth:`RemotionClient.download_output` copies the rendered
file out of Remotion's bucket; store it in vidpipe's storage from there.

Node config keys: ``compositionId``, ``serveUrl``; input props come from the ``config``
input's JSON.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
)

from vidpipe_dagster.domain.prices import CostEstimate, free
from vidpipe_dagster.resources.providers.errors import (
    AuthError,
    MalformedResponseError,
    MissingApiKeyError,
    PermanentError,
    ProviderError,
    RateLimitedError,
    SubmissionOutcomeUnknown,
    TransientError,
)
from vidpipe_dagster.resources.providers.http_settings import http_settings_from
from vidpipe_dagster.resources.providers.remotion_wire import (
    DEFAULT_VERSION,
    NAME,
    build_start_payload,
    build_status_payload,
    job_id_for,
    parse_payload,
    parse_progress,
    split_job_id,
)
from vidpipe_dagster.resources.providers.retry import RetryPolicy, retry_call
from vidpipe_dagster.resources.providers.status import JobStatus
from vidpipe_dagster.resources.providers.unit import (
    ProviderSettings,
    ProviderUnit,
    Webhook,
    WebhookEvent,
    hmac_hex_check,
)

ENV_VAR = "VIDPIPE_REMOTION_FUNCTION_NAME"
TRANSIENT_CODES = frozenset(
    {"ServiceException", "EC2ThrottledException", "ResourceNotReadyException"}
)
RATE_CODES = frozenset({"TooManyRequestsException", "ThrottlingException"})
AUTH_CODES = frozenset(
    {"AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException"}
)


def _client_error(exc: ClientError, *, what: str) -> ProviderError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code") or "")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    message = f"{NAME}: {what} failed: {code}: {error.get('Message', '')}"
    kwargs: dict[str, Any] = {"provider": NAME, "status_code": status, "code": code}
    if code in RATE_CODES or status == 429:
        return RateLimitedError(message, **kwargs)
    if code in TRANSIENT_CODES or (status or 0) >= 500:
        return TransientError(message, **kwargs)
    if code in AUTH_CODES or status in (401, 403):
        return AuthError(message, **kwargs)
    return PermanentError(message, **kwargs)


class RemotionClient:
    """Remotion Lambda renders through an injected boto3 Lambda client (and S3 for output).

    Build it with :meth:`from_settings` in production, or pass ``lambda_client`` (and
    ``s3_client``) directly: any object with boto3's ``invoke`` / ``get_object``.
    """

    name = NAME

    def __init__(
        self,
        *,
        function_name: str,
        lambda_client: Any,
        s3_client: Any = None,
        version: str = DEFAULT_VERSION,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.function_name = function_name
        self.lambda_client = lambda_client
        self.s3_client = s3_client
        self.version = version
        self.retry = retry or RetryPolicy()
        self.sleep = sleep

    def __repr__(self) -> str:
        return f"RemotionClient(function_name={self.function_name!r})"

    @classmethod
    def from_settings(
        cls, settings: Any, *, lambda_client: Any = None, s3_client: Any = None
    ) -> RemotionClient:
        """A client from vidpipe settings; :class:`MissingApiKeyError` without a function."""
        if not settings.remotion_function_name:
            raise MissingApiKeyError(ENV_VAR, provider=NAME)
        region = settings.remotion_region or settings.aws_region
        if lambda_client is None or s3_client is None:
            import boto3
            from botocore.config import Config

            config = Config(
                read_timeout=max(60, int(settings.provider_timeout_seconds)),
                retries={"total_max_attempts": 1, "mode": "standard"},
            )
            lambda_client = lambda_client or boto3.client(
                "lambda",
                region_name=region,
                endpoint_url=settings.remotion_lambda_endpoint_url,
                config=config,
            )
            s3_client = s3_client or boto3.client(
                "s3",
                region_name=region,
                endpoint_url=settings.remotion_s3_endpoint_url or settings.s3_endpoint_url,
            )
        return cls(
            function_name=settings.remotion_function_name,
            lambda_client=lambda_client,
            s3_client=s3_client,
            version=settings.remotion_version,
            retry=http_settings_from(settings).retry,
        )

    def invoke(
        self, payload: Mapping[str, Any], *, what: str, idempotent: bool = True
    ) -> dict[str, Any]:
        """Invoke the function synchronously and return its last JSON object, or raise.

        Lambda runtime failures (``FunctionError``) are transient, and retried only when the
        call is ``idempotent``; ``{"type": "error"}`` from Remotion is permanent. A call that
        is not idempotent and loses its answer after it went out (a read timeout, a closed
        connection) raises ``SubmissionOutcomeUnknown``.
        """
        data = json.dumps(payload).encode()

        def once() -> dict[str, Any]:
            sent_at = datetime.now(UTC)
            try:
                response = self.lambda_client.invoke(
                    FunctionName=self.function_name,
                    InvocationType="RequestResponse",
                    Payload=data,
                )
            except ClientError as exc:
                raise _client_error(exc, what=what) from exc
            except (ConnectTimeoutError, EndpointConnectionError) as exc:
                raise TransientError(f"{NAME}: {what} failed: {exc}", provider=NAME) from exc
            except BotoCoreError as exc:
                if not idempotent:
                    raise SubmissionOutcomeUnknown(
                        provider=NAME, what=what, sent_at=sent_at, cause=str(exc)
                    ) from exc
                raise TransientError(f"{NAME}: {what} failed: {exc}", provider=NAME) from exc
            body = parse_payload(response["Payload"].read())
            if response.get("FunctionError") or "errorMessage" in body:
                error = TransientError(
                    f"{NAME}: {what}: the Lambda function failed "
                    f"({response.get('FunctionError') or 'error'}): "
                    f"{body.get('errorType', '')} {body.get('errorMessage', '')}".rstrip(),
                    provider=NAME,
                    body=body,
                )
                error.retryable = idempotent
                raise error
            if body.get("type") == "error":
                raise PermanentError(
                    f"{NAME}: {what}: {body.get('message') or 'Remotion reported an error'}",
                    provider=NAME,
                    body=body,
                )
            if body.get("type") != "success":
                raise MalformedResponseError(
                    f"{NAME}: {what}: unexpected answer type {body.get('type')!r}",
                    provider=NAME,
                    body=body,
                )
            return body

        return retry_call(once, policy=self.retry, sleep=self.sleep)

    def submit(
        self,
        *,
        composition_id: str,
        serve_url: str,
        input_props: Mapping[str, Any] | None = None,
        codec: str = "h264",
        privacy: str = "public",
        out_name: str | None = None,
        webhook: Mapping[str, Any] | None = None,
    ) -> str:
        """Start a render; return its job id (``"{bucket}:{renderId}"``).

        A start invoke is not idempotent, so only failures before the function ran
        (throttling, service errors) are retried.
        """
        payload = build_start_payload(
            composition=composition_id,
            serve_url=serve_url,
            input_props=input_props,
            version=self.version,
            codec=codec,
            privacy=privacy,
            out_name=out_name,
            webhook=webhook,
        )
        body = self.invoke(payload, what="render start", idempotent=False)
        render_id, bucket = body.get("renderId"), body.get("bucketName")
        if not isinstance(render_id, str) or not isinstance(bucket, str):
            raise MalformedResponseError(
                f"{NAME}: render start answered without renderId/bucketName", provider=NAME
            )
        return job_id_for(bucket_name=bucket, render_id=render_id)

    def poll(self, job_id: str) -> JobStatus:
        """The render's progress."""
        bucket, render_id = split_job_id(job_id)
        payload = build_status_payload(
            render_id=render_id, bucket_name=bucket, version=self.version
        )
        return parse_progress(self.invoke(payload, what="render progress"))

    async def apoll(self, client: httpx.AsyncClient | None, job_id: str) -> JobStatus:
        """:meth:`poll` in a worker thread (boto3 is synchronous); ``client`` is unused."""
        return await asyncio.to_thread(self.poll, job_id)

    def fetch_completed(
        self, job_id: str, dest: Path, *, status: JobStatus | None = None
    ) -> JobStatus:
        """Copy a completed render to ``dest``; return the status it was fetched from."""
        if status is None or status.state != "completed":
            status = self.poll(job_id)
        self.download_output(job_id, dest, status=status)
        return status

    def close(self) -> None:
        """Nothing to close: boto3 clients hold no sockets open between calls."""

    def download_output(self, job_id: str, dest: Path, *, status: JobStatus | None = None) -> int:
        """Copy a finished render from Remotion's bucket to ``dest``; return its size.

        Uses ``outKey`` (default ``renders/{renderId}/out.mp4``) in the render's bucket.
        """
        bucket, render_id = split_job_id(job_id)
        status = status or self.poll(job_id)
        if status.state != "completed":
            raise PermanentError(
                f"{NAME}: render {render_id} is {status.state}, not completed", provider=NAME
            )
        key = status.raw.get("outKey") or f"renders/{render_id}/out.mp4"
        bucket = (status.raw.get("outBucket") or bucket) if isinstance(status.raw, dict) else bucket
        if self.s3_client is None:
            raise PermanentError(f"{NAME}: no S3 client to copy the output with", provider=NAME)
        dest.parent.mkdir(parents=True, exist_ok=True)

        def once() -> int:
            try:
                obj = self.s3_client.get_object(Bucket=bucket, Key=key)
            except ClientError as exc:
                raise _client_error(exc, what=f"copy of s3://{bucket}/{key}") from exc
            except BotoCoreError as exc:
                raise TransientError(f"{NAME}: output copy failed: {exc}", provider=NAME) from exc
            size = 0
            with dest.open("wb") as out:
                for chunk in obj["Body"].iter_chunks(1024 * 1024):
                    out.write(chunk)
                    size += len(chunk)
            return size

        return retry_call(once, policy=self.retry, sleep=self.sleep)


def estimate(
    node_type: str,
    config: Mapping[str, Any],
    *,
    script_chars: int | None,
    seconds: float | None,
    rates: Mapping[str, Any],
) -> CostEstimate:
    """0: there is no published per-render price (the actual cost is ``costs.accruedSoFar``)."""
    return free(NAME, "no published per-render price; actual cost from costs.accruedSoFar")


def build_client(provider: ProviderSettings, settings: Any) -> RemotionClient:
    """The process's Remotion client (boto3 Lambda and S3 clients, built once)."""
    return RemotionClient.from_settings(settings)


def parse_webhook(event: dict[str, Any], headers: Mapping[str, str]) -> WebhookEvent:
    """A render's callback (``success``, ``error`` or ``timeout``)."""
    render_id, bucket = event.get("renderId"), event.get("bucketName")
    if not isinstance(render_id, str) or not isinstance(bucket, str):
        return WebhookEvent(job_id=None, status=None)
    kind = str(event.get("type") or headers.get("x-remotion-status") or "")
    if kind == "success":
        status = JobStatus(state="completed", raw=event)
    else:
        errors = event.get("errors") or []
        messages = [str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors]
        status = JobStatus(state="failed", error="; ".join(messages) or f"render {kind}", raw=event)
    return WebhookEvent(job_id=job_id_for(bucket_name=bucket, render_id=render_id), status=status)


UNIT = ProviderUnit(
    name=NAME,
    title="Remotion Lambda",
    mode="async",
    paid=True,
    node_types=frozenset({"render-code"}),
    build=build_client,
    price=estimate,
    key_env=ENV_VAR,
    max_wait_setting="remotion_max_wait_seconds",
    default_in_flight_limit=20,
    webhook=Webhook(
        secret_env="VIDPIPE_REMOTION_WEBHOOK_SECRET",
        verify=hmac_hex_check(
            header="x-remotion-signature", digest=hashlib.sha512, prefix="sha512="
        ),
        parse=parse_webhook,
    ),
    webhook_secret_setting="remotion_webhook_secret",
    check_hint="the renders/ folder of Remotion's S3 bucket and the function's CloudWatch logs",
)
