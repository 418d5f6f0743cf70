"""Fake AWS Lambda for vidpipe's own FFmpeg functions: the Lambda Invoke REST API
(``POST /2015-03-31/functions/{name}/invocations``) running the real handlers of ``lambdas/``.

Point boto3 at it with ``AWS_ENDPOINT_URL_LAMBDA`` (or ``endpoint_url``) and set
``VIDPIPE_LAMBDA_MODE=aws``: the :class:`AwsLambdaInvoker` then takes the same path as in
production, boto3's real ``Invoke`` call included. Like Lambda, a handler's response is the
payload whatever it holds (an ``error`` body included); an exception escaping the handler is a
``200`` with ``X-Amz-Function-Error: Unhandled`` and Lambda's error payload; an unknown function
is a ``404 ResourceNotFoundException``. ``invocations`` records ``(function, payload)``.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from lambdas import audio_mixer, video_composer, video_merger
from tests.fakes.remotion import aws_error
from tests.fakes.server import FakeServer, Request, Response
from vidpipe_dagster.settings import Settings

Handler = Callable[[Mapping[str, Any], Any], dict[str, Any]]


def functions_of(settings: Settings) -> dict[str, Handler]:
    """Deployed function name -> handler, for the names ``settings`` invokes."""
    return {
        settings.lambda_video_merger: video_merger.handler,
        settings.lambda_audio_mixer: audio_mixer.handler,
        settings.lambda_video_composer: video_composer.handler,
    }


class FakeLambda(FakeServer):
    """The Lambda Invoke API in front of the FFmpeg handlers, in this process."""

    name = "lambda"

    def __init__(self, functions: Mapping[str, Handler] | None = None) -> None:
        super().__init__(api_key="")
        self.functions = dict(functions or functions_of(Settings()))
        self.invocations: list[tuple[str, Any]] = []
        self.route("POST", r"/2015-03-31/functions/(?P<fn>[^/]+)/invocations", self.invoke)

    def invoke(self, request: Request) -> Response:
        name = request.match["fn"]
        handler = self.functions.get(name)
        if handler is None:
            return aws_error(
                404,
                "ResourceNotFoundException",
                f"Function not found: arn:aws:lambda:us-east-1:000000000000:function:{name}",
            )
        payload = request.json()
        with self._lock:
            self.invocations.append((name, payload))
        headers = {"Content-Type": "application/json", "X-Amz-Executed-Version": "$LATEST"}
        try:
            result = handler(payload, None)
        except Exception as error:  # noqa: BLE001 - Lambda reports any escaping exception
            body = {
                "errorMessage": str(error),
                "errorType": type(error).__name__,
                "stackTrace": traceback.format_tb(error.__traceback__),
            }
            return Response(200, body, {**headers, "X-Amz-Function-Error": "Unhandled"})
        return Response(200, json.dumps(result).encode(), headers)
