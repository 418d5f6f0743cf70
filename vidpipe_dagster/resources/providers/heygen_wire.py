"""HeyGen's wire format: the submit bodies of its v3 and legacy v2 APIs, and the parsing of
its status and error bodies. Pure functions; :mod:`.heygen` does the I/O."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from vidpipe_dagster.resources.providers.errors import MalformedResponseError, PermanentError
from vidpipe_dagster.resources.providers.responses import dig
from vidpipe_dagster.resources.providers.status import JobState, JobStatus

NAME = "heygen"
MAX_SCRIPT_CHARS = {"v3": 5000, "v2": 1500}
ASPECT_RATIOS: dict[str, float] = {
    "16:9": 16 / 9,
    "9:16": 9 / 16,
    "4:5": 4 / 5,
    "5:4": 5 / 4,
    "1:1": 1.0,
}
STATES: dict[str, JobState] = {
    "waiting": "queued",
    "pending": "queued",
    "queued": "queued",
    "processing": "running",
    "completed": "completed",
    "failed": "failed",
}

ApiVersion = Literal["v3", "v2"]

REFERENCE_MARK = "ref"
"""Titles carry ``ref <reference>`` so a submission whose answer was lost can be found again:
HeyGen's ``GET /v3/videos`` filters by title substring (it cannot filter by ``callback_id``,
which only the status call and the webhook echo)."""


def titled(title: str | None, reference: str | None) -> str | None:
    """The video title: the node's title, followed by ``ref <reference>`` when given."""
    if not reference:
        return title
    return f"{title} · {REFERENCE_MARK} {reference}" if title else f"{REFERENCE_MARK} {reference}"


def v3_resolution(width: int, height: int) -> tuple[str, str]:
    """``(resolution, aspect_ratio)`` closest to ``width`` x ``height`` for the v3 API."""
    short = min(width, height)
    resolution = "4k" if short >= 2160 else "1080p" if short >= 1080 else "720p"
    ratio = width / height
    aspect = min(ASPECT_RATIOS, key=lambda name: abs(ASPECT_RATIOS[name] - ratio))
    return resolution, aspect


def _check_inputs(
    *, api_version: ApiVersion, config: Mapping[str, Any], script: str | None, audio_url: str | None
) -> str | None:
    """The script to speak (``None`` when audio is given); :class:`PermanentError` when the
    node cannot be rendered as configured."""
    if not config.get("avatarId"):
        raise PermanentError(f"{NAME}: config.avatarId is required", provider=NAME)
    script = (script or "").strip() or None
    if not script and not audio_url:
        raise PermanentError(
            f"{NAME}: nothing to say: connect a script (text) or a voiceover (audio) input",
            provider=NAME,
        )
    if script and not audio_url:
        if not config.get("voiceId"):
            raise PermanentError(
                f"{NAME}: config.voiceId is required to speak a text script", provider=NAME
            )
        if len(script) > MAX_SCRIPT_CHARS[api_version]:
            raise PermanentError(
                f"{NAME}: the script has {len(script)} characters; the {api_version} API "
                f"accepts at most {MAX_SCRIPT_CHARS[api_version]}",
                provider=NAME,
            )
    return script


def _v3_body(
    config: Mapping[str, Any], *, width: int, height: int, script: str | None, audio_url: str | None
) -> dict[str, Any]:
    if config.get("test"):
        raise PermanentError(
            f"{NAME}: HeyGen's v3 API has no test mode: remove config.test or set "
            "VIDPIPE_HEYGEN_API_VERSION=v2",
            provider=NAME,
        )
    resolution, aspect = v3_resolution(width, height)
    body: dict[str, Any] = {
        "type": "avatar",
        "avatar_id": config["avatarId"],
        "resolution": resolution,
        "aspect_ratio": aspect,
    }
    if audio_url:
        body["audio_url"] = audio_url
    else:
        body["script"] = script
        body["voice_id"] = config.get("voiceId")
    return body


def _v2_body(
    config: Mapping[str, Any], *, width: int, height: int, script: str | None, audio_url: str | None
) -> dict[str, Any]:
    voice: dict[str, Any] = (
        {"type": "audio", "audio_url": audio_url}
        if audio_url
        else {"type": "text", "input_text": script, "voice_id": config.get("voiceId")}
    )
    character = {"type": "avatar", "avatar_id": config["avatarId"], "avatar_style": "normal"}
    return {
        "video_inputs": [{"character": character, "voice": voice}],
        "dimension": {"width": width, "height": height},
        "test": bool(config.get("test", False)),
    }


def build_submit(
    *,
    api_version: ApiVersion,
    config: Mapping[str, Any],
    script: str | None = None,
    audio_url: str | None = None,
    title: str | None = None,
    callback_url: str | None = None,
    callback_id: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """``(path, JSON body)`` of a submit call; :class:`PermanentError` on bad input."""
    script = _check_inputs(
        api_version=api_version, config=config, script=script, audio_url=audio_url
    )
    size = {"width": int(config.get("width") or 1920), "height": int(config.get("height") or 1080)}
    if api_version == "v3":
        path = "/v3/videos"
        body = _v3_body(config, **size, script=script, audio_url=audio_url)
    else:
        path = "/v2/video/generate"
        body = _v2_body(config, **size, script=script, audio_url=audio_url)
    extras = {"title": title, "callback_url": callback_url, "callback_id": callback_id}
    body.update({key: value for key, value in extras.items() if value})
    return path, body


def parse_error_body(body: Any) -> tuple[str | None, str]:
    """``(code, message)`` from HeyGen's v1 (``code``/``message``), v2 and v3 error bodies."""
    if not isinstance(body, dict):
        return None, "error"
    error = body.get("error")
    if isinstance(error, dict):
        code = error.get("code")
        return (str(code) if code is not None else None), str(error.get("message") or "error")
    if isinstance(error, str):
        return None, error
    code = body.get("code")
    return (str(code) if code is not None else None), str(body.get("message") or "error")


def parse_status(body: Mapping[str, Any]) -> JobStatus:
    """The :class:`JobStatus` in a v1 ``video_status.get`` or v3 ``/v3/videos/{id}`` body."""
    data = body.get("data")
    data = data if isinstance(data, dict) else {}
    status = dig(data, "status")
    if not isinstance(status, str) or status not in STATES:
        raise MalformedResponseError(
            f"{NAME}: status response without a known data.status: {str(body)[:200]}",
            provider=NAME,
        )
    state = STATES[status]
    error = None
    if state == "failed":
        detail = data.get("error") or data.get("failure_message") or data.get("failure_reason")
        if isinstance(detail, dict):
            error = str(detail.get("detail") or detail.get("message") or detail)
            if detail.get("code") is not None:
                error = f"{error} (code {detail['code']})"
        else:
            error = str(detail or "HeyGen reported the video as failed")
    url = data.get("video_url") if state == "completed" else None
    if state == "completed" and not url:
        raise MalformedResponseError(
            f"{NAME}: completed video without data.video_url", provider=NAME
        )
    return JobStatus(
        state=state,
        progress=1.0 if state == "completed" else None,
        result_url=url,
        error=error,
        raw=body,
    )
