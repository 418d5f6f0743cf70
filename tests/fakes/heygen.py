"""Fake HeyGen: v3 (``POST /v3/videos``, ``GET /v3/videos/{id}``, ``GET /v3/videos``) and
legacy v2/v1 (``POST /v2/video/generate``, ``GET /v1/video_status.get``), ``X-Api-Key`` auth,
status walks to ``completed`` (or ``failed``) and presigned-style ``video_url`` s that can
expire.

What HeyGen offers for finding a video again, and nothing more: the listing
``GET /v3/videos?limit=&token=&folder_id=&title=`` filters by folder and by title substring
(items carry ``id``, ``title``, ``status``, ``created_at``, ``video_url``...; not
``callback_id``); ``callback_id`` is echoed only by the v1 status call and the webhook
(heygen-cli ``gen/video.go``: ``VideoList`` and ``VideoGet``)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from tests.fakes.server import FakeServer, Job, JobBook, Request, Response

V3_WALK = ("pending", "processing")
V1_WALK = ("waiting", "pending", "processing")


class FakeHeyGen(FakeServer):
    """HeyGen video API. Set ``jobs.outcome`` / ``jobs.next_outcomes`` / ``jobs.steps`` /
    ``jobs.hold_seconds``."""

    name = "heygen"

    def __init__(self, *, api_key: str = "test-heygen-key") -> None:
        super().__init__(api_key=api_key)
        self.jobs = JobBook()
        self.route("POST", r"/v3/videos", self.submit_v3)
        self.route("GET", r"/v3/videos", self.list_v3)
        self.route("GET", r"/v3/videos/(?P<video_id>\w+)", self.status_v3)
        self.route("POST", r"/v2/video/generate", self.submit_v2)
        self.route("GET", r"/v1/video_status\.get", self.status_v1)
        self.add_media_route()

    def rate_limit_body(self) -> Any:
        return {
            "data": None,
            "error": {
                "code": "rate_limit_exceeded",
                "message": "Too many concurrent video jobs.",
            },
        }

    def server_error_body(self, status: int) -> Any:
        return {"error": {"code": "internal_error", "message": "Internal server error"}}

    def _unauthorized(self, request: Request) -> Response | None:
        if request.headers.get("x-api-key") == self.api_key:
            return None
        return Response(
            401, {"error": {"code": "unauthorized", "message": "Invalid or missing API key"}}
        )

    def submit_v3(self, request: Request) -> Response:
        if (error := self._unauthorized(request)) is not None:
            return error
        body = request.json()
        if not isinstance(body, dict) or body.get("type") != "avatar" or not body.get("avatar_id"):
            return Response(
                400,
                {
                    "error": {
                        "code": "invalid_parameter",
                        "message": "avatar_id is required",
                        "param": "avatar_id",
                    }
                },
            )
        if not (body.get("script") or body.get("audio_url")):
            return Response(
                400,
                {"error": {"code": "invalid_parameter", "message": "script or audio_url needed"}},
            )
        job = self.jobs.create(request=body)
        return Response(200, {"data": {"video_id": job.id}})

    def submit_v2(self, request: Request) -> Response:
        if (error := self._unauthorized(request)) is not None:
            return error
        body = request.json()
        inputs = body.get("video_inputs") if isinstance(body, dict) else None
        if not inputs:
            return Response(
                400,
                {"data": None, "error": {"code": "invalid_parameter", "message": "video_inputs"}},
            )
        job = self.jobs.create(request=body)
        return Response(200, {"error": None, "data": {"video_id": job.id}})

    def list_v3(self, request: Request) -> Response:
        """``GET /v3/videos``: newest first, ``title`` substring and ``folder_id`` filters,
        ``limit`` (1-100, default 10) and an opaque ``token`` cursor."""
        if (error := self._unauthorized(request)) is not None:
            return error
        title = request.param("title")
        folder = request.param("folder_id")
        limit = max(1, min(100, int(request.param("limit") or 10)))
        start = int(request.param("token") or 0)
        with self.jobs._lock:
            jobs = list(self.jobs.jobs.values())[::-1]
        items = []
        for job in jobs:
            body = job.request if isinstance(job.request, dict) else {}
            if title and title not in str(body.get("title") or ""):
                continue
            if folder and body.get("folder_id") != folder:
                continue
            items.append(
                {
                    "id": job.id,
                    "title": body.get("title"),
                    "status": "processing" if not job.finished else "completed",
                    "created_at": 1700000000,
                    "folder_id": body.get("folder_id"),
                }
            )
        page = items[start : start + limit]
        more = start + limit < len(items)
        return Response(
            200,
            {"data": page, "has_more": more, "next_token": str(start + limit) if more else None},
        )

    def _status_data(self, job: Job, walk: tuple[str, ...], *, v1: bool) -> dict[str, Any]:
        index = job.advance()
        body = job.request if isinstance(job.request, dict) else {}
        data: dict[str, Any] = {
            "id": job.id,
            "created_at": 1700000000,
            "title": body.get("title"),
            "video_url": None,
            "thumbnail_url": None,
            "duration": None,
            "error": None,
        }
        if v1:
            data["callback_id"] = body.get("callback_id")
        if job.outcome == "never" or index < job.steps or job.held:
            data["status"] = walk[min(index, len(walk) - 1)]
        elif job.outcome == "fail":
            data["status"] = "failed"
            if v1:
                data["error"] = {
                    "code": 40119,
                    "detail": "Video is too long (> 3600.0s).",
                    "message": "Video is too long",
                }
            else:
                data["failure_message"] = "Avatar rendering failed: video is too long"
        else:
            data["status"] = "completed"
            data["duration"] = 1.0
            data["video_url"] = self.issue_media_url("clip.mp4")
        return data

    def status_v3(self, request: Request) -> Response:
        if (error := self._unauthorized(request)) is not None:
            return error
        job = self.jobs.get(request.match["video_id"])
        if job is None:
            return Response(404, {"error": {"code": "not_found", "message": "video not found"}})
        return Response(200, {"data": self._status_data(job, V3_WALK, v1=False)})

    def status_v1(self, request: Request) -> Response:
        if (error := self._unauthorized(request)) is not None:
            return error
        job = self.jobs.get(request.param("video_id") or "")
        if job is None:
            return Response(404, {"code": 400128, "message": "video not found"})
        return Response(
            200,
            {"code": 100, "message": "Success", "data": self._status_data(job, V1_WALK, v1=True)},
        )

    def webhook(self, job_id: str, *, secret: str, success: bool = True) -> tuple[bytes, dict]:
        """A webhook delivery for ``job_id``: ``(raw body, headers)`` signed with ``secret``.

        Body ``{"event_type": "avatar_video.success"|"avatar_video.fail", "event_data"}``;
        header ``X-Heygen-Signature`` = hex HMAC-SHA256 of the raw body (header name
        unverified upstream).
        """
        job = self.jobs.get(job_id)
        body = job.request if job is not None and isinstance(job.request, dict) else {}
        event_data: dict[str, Any] = {"video_id": job_id, "callback_id": body.get("callback_id")}
        if success:
            event_data["url"] = self.issue_media_url("clip.mp4")
        else:
            event_data["msg"] = "Avatar rendering failed"
        body = json.dumps(
            {
                "event_type": "avatar_video.success" if success else "avatar_video.fail",
                "event_data": event_data,
                "timestamp": int(time.time()),
            }
        ).encode()
        signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return body, {"Content-Type": "application/json", "X-Heygen-Signature": signature}
