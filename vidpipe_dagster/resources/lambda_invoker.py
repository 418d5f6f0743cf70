"""Calling the FFmpeg functions: on AWS Lambda, or the same handlers in-process.

Callers name a function by its role (``video_merger``, ``audio_mixer``, ``video_composer``);
the invoker maps it to a deployed function name (from settings) or to the handler in
``lambdas/``. Both implementations raise :class:`LambdaInvocationError` with the seed's
messages: ``Lambda invocation failed with status N``, ``Lambda function error: X``,
``Lambda returned error: X`` and ``AWS Lambda error: X``.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

from lambdas import audio_mixer, video_composer, video_merger
from vidpipe_dagster.settings import Settings

INVOKE_READ_TIMEOUT = 960

Handler = Callable[[Mapping[str, Any], Any], dict[str, Any]]

LOCAL_HANDLERS: dict[str, Handler] = {
    "video_merger": video_merger.handler,
    "audio_mixer": audio_mixer.handler,
    "video_composer": video_composer.handler,
}


class LambdaInvocationError(RuntimeError):
    """A function could not be invoked, failed, or answered with an error."""


class LambdaInvoker(ABC):
    """Runs one of the FFmpeg functions synchronously and returns its response payload."""

    @abstractmethod
    def invoke(self, role: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Invoke the function for ``role`` with ``payload``; return the decoded response.

        The response is the handler's success shape (``s3_key``, ``duration``, ``size``,
        ``statusCode``). Every failure raises :class:`LambdaInvocationError`.
        """

    @staticmethod
    def check_result(result: Any) -> dict[str, Any]:
        """Turn an ``error`` in a handler's response into the seed's exception."""
        if not isinstance(result, dict):
            raise LambdaInvocationError(f"Lambda returned error: unexpected payload {result!r}")
        if result.get("error"):
            raise LambdaInvocationError(f"Lambda returned error: {result['error']}")
        status = result.get("statusCode", 200)
        if status != 200:
            raise LambdaInvocationError(f"Lambda returned error: statusCode {status}")
        return result


class AwsLambdaInvoker(LambdaInvoker):
    """Invokes deployed functions with boto3 (``RequestResponse``, no client retries)."""

    def __init__(self, *, client: Any, function_names: Mapping[str, str]) -> None:
        self.client = client
        self.function_names = dict(function_names)

    def invoke(self, role: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Call the function named for ``role`` and check every failure mode."""
        from botocore.exceptions import BotoCoreError, ClientError

        function_name = self.function_names.get(role)
        if not function_name:
            raise LambdaInvocationError(f"No Lambda function configured for {role}")
        try:
            response = self.client.invoke(
                FunctionName=function_name,
                InvocationType="RequestResponse",
                Payload=json.dumps(dict(payload)).encode(),
            )
        except (ClientError, BotoCoreError) as exc:
            raise LambdaInvocationError(f"AWS Lambda error: {exc}") from exc

        status = response.get("StatusCode")
        if status != 200:
            raise LambdaInvocationError(f"Lambda invocation failed with status {status}")
        body = _read_payload(response.get("Payload"))
        if response.get("FunctionError"):
            message = body.get("errorMessage") if isinstance(body, dict) else None
            raise LambdaInvocationError(f"Lambda function error: {message or body}")
        return self.check_result(body)


class LocalLambdaInvoker(LambdaInvoker):
    """Calls the handlers in ``lambdas/`` in this process (the embedded default)."""

    def __init__(self, handlers: Mapping[str, Handler] | None = None) -> None:
        self.handlers = dict(handlers or LOCAL_HANDLERS)

    def invoke(self, role: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Run the handler; an exception escaping it is a function error, as on Lambda."""
        handler = self.handlers.get(role)
        if handler is None:
            raise LambdaInvocationError(f"No Lambda function configured for {role}")
        try:
            result = handler(json.loads(json.dumps(dict(payload))), None)
        except Exception as exc:  # noqa: BLE001 - mirrors Lambda's FunctionError
            raise LambdaInvocationError(f"Lambda function error: {exc}") from exc
        return self.check_result(result)


def _read_payload(payload: Any) -> Any:
    """Decode a Lambda response Payload (a StreamingBody, bytes or str) as JSON."""
    if payload is None:
        return {}
    raw = payload.read() if hasattr(payload, "read") else payload
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def function_names_from_settings(settings: Settings) -> dict[str, str]:
    """Role -> deployed function name, from ``VIDPIPE_LAMBDA_*``."""
    return {
        "video_merger": settings.lambda_video_merger,
        "audio_mixer": settings.lambda_audio_mixer,
        "video_composer": settings.lambda_video_composer,
    }


def invoker_from_settings(settings: Settings) -> LambdaInvoker:
    """The invoker for ``VIDPIPE_LAMBDA_MODE`` (``local`` by default, or ``aws``)."""
    if settings.lambda_mode == "aws":
        import boto3
        from botocore.config import Config

        config = Config(
            read_timeout=INVOKE_READ_TIMEOUT,
            connect_timeout=10,
            retries={"total_max_attempts": 1},
        )
        client = boto3.client("lambda", region_name=settings.aws_region, config=config)
        return AwsLambdaInvoker(
            client=client, function_names=function_names_from_settings(settings)
        )
    return LocalLambdaInvoker()
