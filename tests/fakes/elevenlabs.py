"""Fake ElevenLabs: ``POST /v1/text-to-speech/{voice_id}`` (and ``/stream``,
``/with-timestamps``) with ``xi-api-key`` auth, FastAPI-style 422 validation and real MP3s."""

from __future__ import annotations

import base64
import secrets
from typing import Any

from tests.fakes.media import tiny_mp3
from tests.fakes.server import FakeServer, Request, Response

UNIT_SETTINGS = ("stability", "similarity_boost", "style")


class FakeElevenLabs(FakeServer):
    """ElevenLabs text-to-speech. ``unknown_voices`` answer 404 ``voice_not_found``."""

    name = "elevenlabs"

    def __init__(self, *, api_key: str = "test-elevenlabs-key") -> None:
        super().__init__(api_key=api_key)
        self.unknown_voices: set[str] = {"no-such-voice"}
        base = r"/v1/text-to-speech/(?P<voice_id>[\w-]+)"
        self.route("POST", base, self.tts)
        self.route("POST", base + "/stream", self.tts)
        self.route("POST", base + "/with-timestamps", self.tts_with_timestamps)

    def rate_limit_body(self) -> Any:
        return {
            "detail": {
                "type": "rate_limit_error",
                "code": "too_many_concurrent_requests",
                "message": "Too many concurrent requests.",
                "status": "too_many_concurrent_requests",
                "request_id": "req-429",
            }
        }

    def server_error_body(self, status: int) -> Any:
        return {"detail": {"status": "internal_error", "message": "Internal server error"}}

    def quota_exceeded(self, *, times: int = 1) -> None:
        """The next ``times`` requests get ElevenLabs' 401 ``quota_exceeded`` (legacy shape)."""
        self.fail(
            401,
            {"detail": {"status": "quota_exceeded", "message": "This request exceeds your quota."}},
            times=times,
        )

    def _check(self, request: Request) -> tuple[Response | None, dict[str, Any]]:
        body = request.json() if request.body else None
        issues = []
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            issues.append(
                {"type": "missing", "loc": ["body", "text"], "msg": "Field required", "input": body}
            )
        settings = (body or {}).get("voice_settings") or {}
        for key in UNIT_SETTINGS:
            value = settings.get(key)
            if value is not None and not 0 <= value <= 1:
                kind, bound = ("less_than_equal", 1.0) if value > 1 else ("greater_than_equal", 0)
                op = "le" if value > 1 else "ge"
                issues.append(
                    {
                        "type": kind,
                        "loc": ["body", "voice_settings", key],
                        "msg": f"Input should be {'less' if value > 1 else 'greater'} than or "
                        f"equal to {bound}",
                        "input": value,
                        "ctx": {op: bound},
                    }
                )
        if issues:
            return Response(422, {"detail": issues}), {}
        if request.headers.get("xi-api-key") != self.api_key:
            return Response(
                401,
                {
                    "detail": {
                        "type": "authentication_error",
                        "code": "invalid_api_key",
                        "message": "Invalid API key",
                        "status": "invalid_api_key",
                        "request_id": "req-401",
                    }
                },
            ), {}
        if request.match["voice_id"] in self.unknown_voices:
            return Response(
                404,
                {
                    "detail": {
                        "status": "voice_not_found",
                        "message": f"A voice with voice_id {request.match['voice_id']} "
                        "was not found.",
                    }
                },
            ), {}
        return None, body

    def tts(self, request: Request) -> Response:
        error, body = self._check(request)
        if error is not None:
            return error
        return Response(
            200,
            tiny_mp3(),
            {
                "Content-Type": "audio/mpeg",
                "request-id": secrets.token_hex(8),
                "character-cost": str(len(body["text"])),
            },
        )

    def tts_with_timestamps(self, request: Request) -> Response:
        error, body = self._check(request)
        if error is not None:
            return error
        chars = list(body["text"])
        times = [i * 0.05 for i in range(len(chars))]
        alignment = {
            "characters": chars,
            "character_start_times_seconds": times,
            "character_end_times_seconds": [t + 0.05 for t in times],
        }
        return Response(
            200,
            {
                "audio_base64": base64.b64encode(tiny_mp3()).decode(),
                "alignment": alignment,
                "normalized_alignment": alignment,
            },
            {"request-id": secrets.token_hex(8)},
        )
