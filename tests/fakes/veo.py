"""Fake Gemini API for Veo: ``POST /v1beta/models/{model}:predictLongRunning``,
``GET /v1beta/models/{model}/operations/{id}`` and ``GET /v1beta/files/{id}:download``,
all authenticated with ``x-goog-api-key`` (or ``?key=``), with Google's error shape."""

from __future__ import annotations

import secrets
import threading
from typing import Any

from tests.fakes.media import tiny_mp4
from tests.fakes.server import FakeServer, JobBook, Request, Response

GRPC_STATUS = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def google_error(code: int, message: str, **extra: Any) -> dict[str, Any]:
    """``{"error": {"code", "message", "status", ...}}``."""
    return {"error": {"code": code, "message": message, "status": GRPC_STATUS[code], **extra}}


class FakeVeo(FakeServer):
    """Veo long-running operations. Outcomes: ``succeed``, ``fail``, ``filtered``, ``never``."""

    name = "veo3"

    def __init__(self, *, api_key: str = "test-gemini-key") -> None:
        super().__init__(api_key=api_key)
        self.jobs = JobBook()
        self.files: set[str] = set()
        self.deleted: set[str] = set()
        self._files_lock = threading.Lock()
        self.route("POST", r"/v1beta/models/(?P<model>[\w.-]+):predictLongRunning", self.submit)
        self.route(
            "GET", r"/v1beta/models/(?P<model>[\w.-]+)/operations/(?P<op>\w+)", self.operation
        )
        self.route("GET", r"/v1beta/files/(?P<file>[a-z0-9]+):download", self.download)

    @property
    def base_url(self) -> str:
        """The client's base URL (``…/v1beta``)."""
        return f"{self.url}/v1beta"

    def rate_limit_body(self) -> Any:
        return google_error(429, "Resource has been exhausted (e.g. check quota).")

    def server_error_body(self, status: int) -> Any:
        return google_error(status if status in GRPC_STATUS else 500, "The service is unavailable.")

    def not_found(self, request: Request) -> Response:
        return Response(404, google_error(404, f"Requested entity was not found: {request.path}"))

    def expire_urls(self) -> None:
        """Delete every generated file (its download then answers 404)."""
        with self._files_lock:
            self.deleted |= self.files
            self.files.clear()

    def _unauthorized(self, request: Request) -> Response | None:
        key = request.headers.get("x-goog-api-key") or request.param("key")
        if key == self.api_key:
            return None
        return Response(
            400,
            google_error(
                400,
                "API key not valid. Please pass a valid API key.",
                details=[
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                    }
                ],
            ),
        )

    def submit(self, request: Request) -> Response:
        if (error := self._unauthorized(request)) is not None:
            return error
        model = request.match["model"]
        if not model.startswith("veo-"):
            return Response(
                404, google_error(404, f"models/{model} is not found for API version v1beta")
            )
        body = request.json()
        instances = body.get("instances") if isinstance(body, dict) else None
        if not instances or not isinstance(instances[0].get("prompt"), str):
            return Response(400, google_error(400, "instances[0].prompt is required"))
        duration = (body.get("parameters") or {}).get("durationSeconds", 8)
        if duration not in (4, 6, 8):
            return Response(400, google_error(400, "durationSeconds must be 4, 6 or 8"))
        op = secrets.token_hex(6)
        self.jobs.create(f"{model}/{op}", request=body)
        return Response(200, {"name": f"models/{model}/operations/{op}"})

    def operation(self, request: Request) -> Response:
        if (error := self._unauthorized(request)) is not None:
            return error
        model, op = request.match["model"], request.match["op"]
        job = self.jobs.get(f"{model}/{op}")
        if job is None:
            return self.not_found(request)
        index = job.advance()
        name = f"models/{model}/operations/{op}"
        if job.outcome == "never" or index < job.steps:
            return Response(200, {"name": name, "metadata": {}})
        if job.outcome == "fail":
            return Response(
                200,
                {
                    "name": name,
                    "done": True,
                    "error": {"code": 13, "message": "Video generation failed."},
                },
            )
        if job.outcome == "filtered":
            video_response: dict[str, Any] = {
                "raiMediaFilteredCount": 1,
                "raiMediaFilteredReasons": ["The prompt contains content that is not allowed."],
            }
        else:
            file_id = op.lower()
            with self._files_lock:
                if file_id not in self.deleted:
                    self.files.add(file_id)
            uri = f"{self.url}/v1beta/files/{file_id}:download?alt=media"
            video_response = {"generatedSamples": [{"video": {"uri": uri}}]}
        return Response(
            200,
            {
                "name": name,
                "done": True,
                "response": {
                    "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta."
                    "PredictLongRunningResponse",
                    "generateVideoResponse": video_response,
                },
            },
        )

    def download(self, request: Request) -> Response:
        if (error := self._unauthorized(request)) is not None:
            return error
        with self._files_lock:
            known = request.match["file"] in self.files
        if not known:
            return self.not_found(request)
        return Response(200, tiny_mp4(), {"Content-Type": "video/mp4"})
