"""Fake Remotion Lambda: the AWS Lambda Invoke REST endpoint
(``POST /2015-03-31/functions/{name}/invocations``) running Remotion's ``start`` / ``status``
protocol, plus a path-style S3 ``GET``/``HEAD /{bucket}/{key}`` for the rendered output.

Point boto3 at it with ``endpoint_url=fake.url`` (any credentials). Switches: ``jobs.outcome``
(``succeed``, ``fail``, ``never``), ``function_error`` (the next invokes fail in the runtime
with ``X-Amz-Function-Error: Unhandled``), ``remotion_error`` (the next invokes answer
``{"type": "error"}``), ``stream_chunks`` (answers are several concatenated JSON objects).
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from tests.fakes.media import tiny_mp4
from tests.fakes.server import FakeServer, JobBook, Request, Response

BUCKET = "remotionlambda-useast1-fake0001"


def aws_error(status: int, error_type: str, message: str, **extra: Any) -> Response:
    """A Lambda REST-JSON service error."""
    return Response(
        status,
        {"Type": "User" if status < 500 else "Service", "message": message, **extra},
        {"x-amzn-ErrorType": error_type, "Content-Type": "application/json"},
    )


class FakeRemotionLambda(FakeServer):
    """Remotion's Lambda function behind a fake Lambda Invoke API and S3."""

    name = "remotion"

    def __init__(self, *, function_name: str = "remotion-render-fake") -> None:
        super().__init__(api_key="")
        self.function_name = function_name
        self.jobs = JobBook()
        self.function_error = 0
        self.remotion_error = 0
        self.stream_chunks = False
        self.objects: dict[tuple[str, str], bytes] = {}
        self.route("POST", r"/2015-03-31/functions/(?P<fn>[^/]+)/invocations", self.invoke)
        self.route("GET", r"/(?P<bucket>remotionlambda-[\w-]+)/(?P<key>.+)", self.get_object)
        self.route("HEAD", r"/(?P<bucket>remotionlambda-[\w-]+)/(?P<key>.+)", self.get_object)

    def rate_limit_body(self) -> Any:
        return {
            "Reason": "ConcurrentInvocationLimitExceeded",
            "Type": "User",
            "message": "Rate Exceeded.",
        }

    def rate_limit(
        self, *, retry_after: float | str | None = 1, times: int = 1, path: str | None = None
    ) -> None:
        headers = {"x-amzn-ErrorType": "TooManyRequestsException"}
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        self.fail(429, self.rate_limit_body(), headers=headers, times=times, path=path)

    def server_error(self, status: int = 500, *, times: int = 1, path: str | None = None) -> None:
        self.fail(
            status,
            {"Type": "Service", "message": "Service error"},
            headers={"x-amzn-ErrorType": "ServiceException"},
            times=times,
            path=path,
        )

    def invoke(self, request: Request) -> Response:
        if request.match["fn"] != self.function_name:
            return aws_error(
                404,
                "ResourceNotFoundException",
                f"Function not found: arn:aws:lambda:us-east-1:000000000000:function:"
                f"{request.match['fn']}",
            )
        if self.function_error:
            self.function_error -= 1
            return Response(
                200,
                {
                    "errorType": "Error",
                    "errorMessage": "Task timed out after 120.00 seconds",
                    "trace": [],
                },
                {"X-Amz-Function-Error": "Unhandled", "X-Amz-Executed-Version": "$LATEST"},
            )
        payload = request.json()
        if self.remotion_error:
            self.remotion_error -= 1
            return self._answer({"type": "error", "message": "Composition not found", "stack": ""})
        if payload.get("type") == "start":
            return self._start(payload)
        if payload.get("type") == "status":
            return self._status(payload)
        return self._answer({"type": "error", "message": f"Unknown type {payload.get('type')}"})

    def _answer(self, body: dict[str, Any]) -> Response:
        raw = json.dumps(body).encode()
        if self.stream_chunks:
            raw = json.dumps({"type": "heartbeat"}).encode() + b"\n" + raw
        return Response(
            200, raw, {"Content-Type": "application/json", "X-Amz-Executed-Version": "$LATEST"}
        )

    def _start(self, payload: dict[str, Any]) -> Response:
        missing = [
            k for k in ("serveUrl", "composition", "inputProps", "version") if not payload.get(k)
        ]
        if missing:
            return self._answer({"type": "error", "message": f"missing {', '.join(missing)}"})
        render_id = secrets.token_hex(5)
        self.jobs.create(render_id, request=payload)
        return self._answer({"type": "success", "renderId": render_id, "bucketName": BUCKET})

    def _status(self, payload: dict[str, Any]) -> Response:
        render_id = payload.get("renderId", "")
        job = self.jobs.get(render_id)
        if job is None or payload.get("bucketName") != BUCKET:
            return self._answer({"type": "error", "message": f"No render {render_id}"})
        index = job.advance()
        key = f"renders/{render_id}/out.mp4"
        progress: dict[str, Any] = {
            "type": "success",
            "renderId": render_id,
            "bucket": BUCKET,
            "chunks": 0,
            "done": False,
            "encodingStatus": None,
            "costs": {
                "accruedSoFar": 0.0012 * (index + 1),
                "displayCost": "$0.001",
                "currency": "USD",
                "disclaimer": "Estimated cost only.",
            },
            "outputFile": None,
            "outKey": None,
            "errors": [],
            "fatalErrorEncountered": False,
            "overallProgress": 0.0,
            "framesRendered": 0,
            "lambdasInvoked": 1,
        }
        if job.outcome == "never" or index < job.steps:
            progress["overallProgress"] = min(0.9, 0.3 * index)
        elif job.outcome == "fail":
            progress["fatalErrorEncountered"] = True
            progress["errors"] = [
                {"name": "Error", "message": "Composition threw: props.title is undefined"}
            ]
        else:
            self.objects[(BUCKET, key)] = tiny_mp4()
            progress.update(
                done=True,
                overallProgress=1.0,
                outputFile=f"https://s3.us-east-1.amazonaws.com/{BUCKET}/{key}",
                outKey=key,
                outputSizeInBytes=len(tiny_mp4()),
                timeToFinish=1234,
            )
        return self._answer(progress)

    def get_object(self, request: Request) -> Response:
        data = self.objects.get((request.match["bucket"], request.match["key"]))
        if data is None:
            return Response(
                404,
                b'<?xml version="1.0"?><Error><Code>NoSuchKey</Code>'
                b"<Message>The specified key does not exist.</Message></Error>",
                {"Content-Type": "application/xml"},
            )
        return Response(200, data, {"Content-Type": "video/mp4", "ETag": '"fake"'})
