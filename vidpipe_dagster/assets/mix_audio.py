"""Executor for ``mix-audio`` nodes: put the ``audio`` input's sound on the ``video`` input.

Runs the ``audio_mixer`` function with ``config.mode`` (``replace``, the default, or
``overlay``), ``config.volume`` (default 1.0; the editor writes ``audioVolume``) and the
editor's ``fadeIn`` / ``fadeOut`` in seconds, and ``config.length``: ``video`` (the default,
the output lasts as long as the video) or ``audio`` (as long as the audio: a narration is
never cut, the video's last frame is held if it is shorter). The audio input may be an
audio node or a video with sound.
"""

from __future__ import annotations

from collections.abc import Mapping

from vidpipe_dagster.assets.base import ExecutionContext, NodeSpec, UpstreamNode
from vidpipe_dagster.assets.inputs import media_output, upstream_nodes, uri_of
from vidpipe_dagster.assets.outputs import invoke_ffmpeg_function


def execute(node: NodeSpec, upstream: Mapping[str, UpstreamNode], ctx: ExecutionContext) -> dict:
    """Mix the audio into the video and return the new video's output dict."""
    video = upstream_nodes(node, "video", upstream)[0]
    audio = upstream_nodes(node, "audio", upstream)[0]
    config = node.config or {}
    payload = {
        "video": uri_of(ctx, media_output(node, "video", video, types=("video",))),
        "audio": uri_of(ctx, media_output(node, "audio", audio, types=("audio", "video"))),
        "mode": config.get("mode") or "replace",
        "volume": config.get("volume", config.get("audioVolume", 1.0)),
    }
    for name, wire in (("fadeIn", "fade_in"), ("fadeOut", "fade_out"), ("length", "length")):
        if config.get(name):
            payload[wire] = config[name]
    return invoke_ffmpeg_function(node, ctx, role="audio_mixer", payload=payload)
