"""What an executor writes: its output files, stored under this execution's own key
(``node_output_key``), probed, or written by one of the FFmpeg functions, and returned as the
node's ``output`` dict."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lambdas.ffmpeg import FFmpegError, MediaInfo, probe
from vidpipe_dagster.assets.base import ExecutionContext, ExecutorError, NodeSpec
from vidpipe_dagster.resources.lambda_invoker import LambdaInvocationError
from vidpipe_dagster.resources.providers.local import Rendered
from vidpipe_dagster.resources.storage import node_output_key


def new_output_key(node: NodeSpec, ctx: ExecutionContext, ext: str) -> str:
    """This execution's output key; refuses a key that is already taken."""
    key = node_output_key(node.pipeline_uuid, node.uuid, ctx.process_uuid, ext)
    if ctx.storage.exists(key):
        raise ExecutorError(
            f"Node {node.describe()}: output {key} already exists (process {ctx.process_uuid} "
            "ran before); start a new execution."
        )
    return key


def store_file(
    node: NodeSpec,
    ctx: ExecutionContext,
    path: Path,
    *,
    media_type: str,
    content_type: str,
    duration: float | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict:
    """Store a produced file as this execution's output and return the output dict."""
    ext = path.suffix.lstrip(".") or "bin"
    key = new_output_key(node, ctx, ext)
    if duration is None and media_type in ("video", "audio"):
        duration = measure(node, str(path)).duration
    size = ctx.storage.put_file(key, path, content_type=content_type)
    ctx.log(f"Stored {media_type} output {key} ({size} bytes)")
    return {
        "type": media_type,
        "s3_key": key,
        "size": size,
        "duration": round(duration or 0.0, 3),
        "content_type": content_type,
        **(extra or {}),
    }


def store_local_video(
    node: NodeSpec, ctx: ExecutionContext, rendered: Rendered, *, provider: str
) -> dict:
    """Store an MP4 the ``local`` provider rendered as the output; it cost nothing."""
    return store_file(
        node,
        ctx,
        rendered.path,
        media_type="video",
        content_type="video/mp4",
        duration=rendered.duration,
        extra={"provider": provider, "cost": 0.0},
    )


def invoke_ffmpeg_function(
    node: NodeSpec,
    ctx: ExecutionContext,
    *,
    role: str,
    payload: Mapping[str, Any],
) -> dict:
    """Run one of the FFmpeg functions writing a new MP4 output; return the output dict."""
    key = new_output_key(node, ctx, "mp4")
    bucket, object_key = ctx.storage.lambda_destination(key)
    ctx.log(f"Invoking {role} for node {node.describe()}")
    try:
        result = ctx.invoker.invoke(
            role, {**payload, "output_bucket": bucket, "output_key": object_key}
        )
    except LambdaInvocationError as exc:
        raise ExecutorError(f"Node {node.describe()}: {role} failed: {exc}") from exc
    size = result.get("size")
    if not isinstance(size, int) or not ctx.storage.exists(key):
        raise ExecutorError(
            f"Node {node.describe()}: {role} reported success but wrote no file at {key}; "
            "check the function's logs and run again."
        )
    ctx.log(f"{role} wrote {key} ({size} bytes, {result.get('duration')} s)")
    return {
        "type": "video",
        "s3_key": key,
        "size": size,
        "duration": float(result.get("duration") or 0.0),
        "content_type": "video/mp4",
        "cost": 0.0,
    }


def measure(node: NodeSpec, location: str) -> MediaInfo:
    """Probe media for ``node``, turning ffmpeg's refusal into an :class:`ExecutorError`."""
    try:
        return probe(location)
    except FFmpegError as exc:
        raise ExecutorError(
            f"Node {node.describe()}: the media is unreadable ({exc.reason or exc}); "
            "replace the file."
        ) from exc
