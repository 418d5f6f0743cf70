"""Fake Runway: ``POST /v1/image_to_video`` / ``/v1/text_to_video`` and ``GET``/``DELETE
/v1/tasks/{id}``, requiring ``Authorization: Bearer`` and ``X-Runway-Version``; tasks walk
``PENDING`` -> ``THROTTLED`` -> ``RUNNING`` -> ``SUCCEEDED`` | ``FAILED``."""

from __future__ import annotations

import uuid
from typing import Any

from tests.fakes.server import FakeServer, JobBook, Request, Response

VERSION = "2024-11-06"
RATIOS = {"1280:720", "720:1280", "1104:832", "832:1104", "960:960", "1584:672"}
DOC_URL = "https://docs.dev.runwayml.com/api"


class FakeRunway(FakeServer):
    """Runway tasks. ``throttled_polls`` polls answer THROTTLED before RUNNING; set
    ``no_credits = True`` for the 400 insufficient-credits answer."""

    name = "runway"

    def __init__(self, *, api_key: str = "test-runway-key") -> None:
        super().__init__(api_key=api_key)
        self.jobs = JobBook()
        self.throttled_polls = 1
        self.no_credits = False
        self.route("POST", r"/v1/image_to_video", self.submit)
        self.route("POST", r"/v1/text_to_video", self.submit)
        self.route("GET", r"/v1/tasks/(?P<task_id>[\w-]+)", self.task)
        self.route("DELETE", r"/v1/tasks/(?P<task_id>[\w-]+)", self.delete)
        self.add_media_route()

    def rate_limit_body(self) -> Any:
        return {"error": "You have exceeded your daily generation limit.", "docUrl": DOC_URL}

    def server_error_body(self, status: int) -> Any:
        return {"error": "Service temporarily unavailable.", "docUrl": DOC_URL}

    def _unauthorized(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return Response(401, {"error": "Invalid API key.", "docUrl": DOC_URL})
        if request.headers.get("x-runway-version") != VERSION:
            return Response(
                400, {"error": "Invalid or missing X-Runway-Version header.", "docUrl": DOC_URL}
            )
        return None

    def submit(self, request: Request) -> Response:
        if (error := self._unauthorized(request)) is not None:
            return error
        body = request.json()
        issues = []
        if body.get("model") == "gen4_turbo" and body.get("ratio") not in RATIOS:
            issues.append(
                {"code": "invalid_enum_value", "path": ["ratio"], "message": "Invalid ratio"}
            )
        if request.path.endswith("image_to_video") and not body.get("promptImage"):
            issues.append({"code": "invalid_type", "path": ["promptImage"], "message": "Required"})
        if issues:
            return Response(
                400, {"error": "Validation of body failed", "issues": issues, "docUrl": DOC_URL}
            )
        if self.no_credits:
            return Response(
                400,
                {"error": "You do not have enough credits to run this task.", "docUrl": DOC_URL},
            )
        job = self.jobs.create(str(uuid.uuid4()), request=body)
        return Response(200, {"id": job.id})

    def task(self, request: Request) -> Response:
        if (error := self._unauthorized(request)) is not None:
            return error
        job = self.jobs.get(request.match["task_id"])
        if job is None or job.cancelled:
            return Response(404, {"error": "Could not find Task"})
        index = job.advance()
        base = {"id": job.id, "createdAt": "2026-09-01T00:00:00.000Z"}
        duration = int((job.request or {}).get("duration") or 5)
        if job.outcome == "never" or index < job.steps:
            if index == 0:
                return Response(
                    200, {**base, "status": "PENDING", "estimatedCost": {"credits": 25}}
                )
            if index <= self.throttled_polls:
                return Response(200, {**base, "status": "THROTTLED"})
            return Response(200, {**base, "status": "RUNNING", "progress": 0.5})
        if job.outcome == "fail":
            return Response(
                200,
                {
                    **base,
                    "status": "FAILED",
                    "failure": "The output did not pass content moderation.",
                    "failureCode": "SAFETY.OUTPUT.VIDEO",
                    "cost": {"credits": 0},
                },
            )
        return Response(
            200,
            {
                **base,
                "status": "SUCCEEDED",
                "output": [self.issue_media_url("clip.mp4")],
                "cost": {"credits": 5 * duration},
            },
        )

    def delete(self, request: Request) -> Response:
        if (error := self._unauthorized(request)) is not None:
            return error
        job = self.jobs.get(request.match["task_id"])
        if job is None or job.cancelled:
            return Response(404, {"error": "Could not find Task"})
        job.cancelled = True
        return Response(204)
