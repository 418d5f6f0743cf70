"""Executor for ``compose-video`` nodes: picture-in-picture of ``overlay`` on ``background``.

Runs the ``video_composer`` function; ``config`` may set ``position``, ``scale``,
``offsetX``, ``offsetY``, ``opacity`` and ``audio`` (see ``lambdas.video_composer``). The
overlay may be a video or an image.
"""

from __future__ import annotations

from collections.abc import Mapping

from vidpipe_dagster.assets.base import ExecutionContext, NodeSpec, UpstreamNode
from vidpipe_dagster.assets.inputs import media_output, upstream_nodes, uri_of
from vidpipe_dagster.assets.outputs import invoke_ffmpeg_function

COMPOSER_OPTIONS = ("position", "scale", "offsetX", "offsetY", "opacity", "audio")


def execute(node: NodeSpec, upstream: Mapping[str, UpstreamNode], ctx: ExecutionContext) -> dict:
    """Compose the overlay on the background and return the new video's output dict."""
    background = upstream_nodes(node, "background", upstream)[0]
    overlay = upstream_nodes(node, "overlay", upstream)[0]
    config = node.config or {}
    payload = {
        "background": uri_of(ctx, media_output(node, "background", background, types=("video",))),
        "overlay": uri_of(ctx, media_output(node, "overlay", overlay, types=("video", "image"))),
        **{name: config[name] for name in COMPOSER_OPTIONS if config.get(name) is not None},
    }
    return invoke_ffmpeg_function(node, ctx, role="video_composer", payload=payload)
