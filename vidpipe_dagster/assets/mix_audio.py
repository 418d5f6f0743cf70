"""Executor for ``mix-audio`` nodes: put the ``audio`` input's sound on the ``video`` input.

Runs the ``audio_mixer`` function with ``config.mode`` (``replace``, the default, or
``overlay``) and ``config.volume`` (default 1.0). The audio input may be an audio node or a
video with sound.
"""

from __future__ import annotations

from collections.abc import Mapping

from vidpipe_dagster.assets.base import (
    ExecutionContext,
    NodeSpec,
    UpstreamNode,
    invoke_ffmpeg_function,
    media_output,
    upstream_nodes,
    uri_of,
)


def execute(node: NodeSpec, upstream: Mapping[str, UpstreamNode], ctx: ExecutionContext) -> dict:
    """Mix the audio into the video and return the new video's output dict."""
    video = upstream_nodes(node, "video", upstream)[0]
    audio = upstream_nodes(node, "audio", upstream)[0]
    config = node.config or {}
    payload = {
        "video": uri_of(ctx, media_output(node, "video", video, types=("video",))),
        "audio": uri_of(ctx, media_output(node, "audio", audio, types=("audio", "video"))),
        "mode": config.get("mode") or "replace",
        "volume": config.get("volume", 1.0),
    }
    return invoke_ffmpeg_function(node, ctx, role="audio_mixer", payload=payload)
