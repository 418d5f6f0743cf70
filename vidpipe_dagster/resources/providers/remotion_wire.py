"""Remotion Lambda's wire format: the ``start`` and ``status`` payloads the
``remotion-lambda`` SDK sends, the parsing of its (possibly streamed) answers, and job ids.
Pure functions; :mod:`.remotion` invokes the function."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from vidpipe_dagster.resources.providers.errors import MalformedResponseError, PermanentError
from vidpipe_dagster.resources.providers.status import JobState, JobStatus

NAME = "remotion"
DEFAULT_VERSION = "4.0.539"
MAX_INLINE_PROPS_BYTES = 194_000

SDK_DEFAULTS: dict[str, Any] = {
    "rendererFunctionName": None,
    "framesPerLambda": None,
    "concurrency": None,
    "imageFormat": "jpeg",
    "maxRetries": 1,
    "jpegQuality": 80,
    "storageClass": None,
    "envVariables": {},
    "metadata": {},
    "colorSpace": None,
    "logLevel": "info",
    "frameRange": None,
    "preferLossless": False,
    "sampleRate": 48000,
    "timeoutInMilliseconds": 30000,
    "chromiumOptions": {},
    "scale": 1,
    "everyNthFrame": 1,
    "numberOfGifLoops": None,
    "concurrencyPerLambda": 1,
    "downloadBehavior": {"type": "play-in-browser"},
    "muted": False,
    "audioBitrate": None,
    "videoBitrate": None,
    "forceHeight": None,
    "forceFps": None,
    "forceDurationInFrames": None,
    "offthreadVideoCacheSizeInBytes": None,
    "mediaCacheSizeInBytes": None,
    "offthreadVideoThreads": None,
    "forceWidth": None,
    "licenseKey": None,
    "bucketName": None,
    "audioCodec": None,
    "gopSize": None,
    "deleteAfter": None,
    "encodingBufferSize": None,
    "encodingMaxRate": None,
    "isProduction": None,
    "crf": None,
    "pixelFormat": None,
    "proResProfile": None,
    "forcePathStyle": False,
}
"""What ``remotion-lambda``'s Python SDK sends for every start option vidpipe leaves alone."""


def build_start_payload(
    *,
    composition: str,
    serve_url: str,
    input_props: Mapping[str, Any] | None,
    version: str,
    codec: str = "h264",
    privacy: str = "public",
    out_name: str | None = None,
    webhook: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``start`` payload, with the SDK's defaults for everything not given.

    ``webhook`` is Remotion's ``{"url", "secret", "customData"}``: where it calls back when
    the render ends, signing the body with ``secret``.
    """
    if not composition:
        raise PermanentError(f"{NAME}: config.compositionId is required", provider=NAME)
    if not serve_url:
        raise PermanentError(f"{NAME}: config.serveUrl is required", provider=NAME)
    serialized = json.dumps(dict(input_props or {}), separators=(",", ":"))
    if len(serialized.encode()) > MAX_INLINE_PROPS_BYTES:
        raise PermanentError(
            f"{NAME}: input props are {len(serialized.encode())} bytes; at most "
            f"{MAX_INLINE_PROPS_BYTES} can be sent inline",
            provider=NAME,
        )
    return {
        **SDK_DEFAULTS,
        "type": "start",
        "composition": composition,
        "serveUrl": serve_url,
        "inputProps": {"type": "payload", "payload": serialized},
        "codec": codec,
        "privacy": privacy,
        "outName": out_name,
        "version": version,
        "overwrite": int(version.split(".", maxsplit=1)[0]) >= 5,
        "webhook": dict(webhook) if webhook else None,
    }


def build_status_payload(*, render_id: str, bucket_name: str, version: str) -> dict[str, Any]:
    """The ``status`` payload for one render."""
    return {
        "type": "status",
        "renderId": render_id,
        "bucketName": bucket_name,
        "version": version,
        "logLevel": "info",
        "forcePathStyle": False,
        "s3OutputProvider": None,
    }


def parse_payload(raw: bytes | str) -> dict[str, Any]:
    """The last JSON object of a (possibly streamed, concatenated) Lambda response payload."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    decoder = json.JSONDecoder()
    last: Any = None
    index = 0
    try:
        while index < len(text):
            while index < len(text) and text[index].isspace():
                index += 1
            if index >= len(text):
                break
            last, index = decoder.raw_decode(text, index)
    except json.JSONDecodeError as exc:
        raise MalformedResponseError(
            f"{NAME}: the Lambda answered a payload that is not JSON: {text[:200]!r}",
            provider=NAME,
        ) from exc
    if not isinstance(last, dict):
        raise MalformedResponseError(
            f"{NAME}: the Lambda answered {text[:200]!r}, not a JSON object", provider=NAME
        )
    return last


def job_id_for(*, bucket_name: str, render_id: str) -> str:
    """The job id of a render: ``"{bucket}:{renderId}"``."""
    return f"{bucket_name}:{render_id}"


def split_job_id(job_id: str) -> tuple[str, str]:
    """``(bucket_name, render_id)`` of a job id from :func:`job_id_for`."""
    bucket, sep, render_id = job_id.partition(":")
    if not sep or not bucket or not render_id:
        raise PermanentError(f"{NAME}: malformed job id {job_id!r}", provider=NAME)
    return bucket, render_id


def parse_progress(body: Mapping[str, Any]) -> JobStatus:
    """The :class:`JobStatus` of a ``status`` response."""
    costs = body.get("costs")
    accrued = costs.get("accruedSoFar") if isinstance(costs, dict) else None
    cost = float(accrued) if isinstance(accrued, int | float) else None
    progress = body.get("overallProgress")
    progress = float(progress) if isinstance(progress, int | float) else None
    if body.get("fatalErrorEncountered"):
        errors = body.get("errors") or []
        messages = [
            str(e.get("message") or e.get("name") or e) if isinstance(e, dict) else str(e)
            for e in errors
        ]
        return JobStatus(
            state="failed",
            progress=progress,
            error="; ".join(messages) or "Remotion reported a fatal error",
            raw=body,
            cost_usd=cost,
        )
    if body.get("done"):
        url = body.get("outputFile")
        if not isinstance(url, str) or not url:
            raise MalformedResponseError(f"{NAME}: done render without outputFile", provider=NAME)
        return JobStatus(state="completed", progress=1.0, result_url=url, raw=body, cost_usd=cost)
    state: JobState = "running" if progress else "queued"
    return JobStatus(state=state, progress=progress, raw=body, cost_usd=cost)
