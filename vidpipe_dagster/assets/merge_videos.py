"""Executor for ``merge-videos`` nodes: concatenate the ``segments`` in order.

Runs the ``video_merger`` function. ``config.transition`` (``"fade"``) and
``config.transitionDuration`` (seconds) pass through to it.
"""

from __future__ import annotations

from collections.abc import Mapping

from vidpipe_dagster.assets.base import ExecutionContext, ExecutorError, NodeSpec, UpstreamNode
from vidpipe_dagster.assets.inputs import media_output, upstream_nodes, uri_of
from vidpipe_dagster.assets.outputs import invoke_ffmpeg_function


def execute(node: NodeSpec, upstream: Mapping[str, UpstreamNode], ctx: ExecutionContext) -> dict:
    """Merge the segment videos and return the merged video's output dict."""
    segments = upstream_nodes(node, "segments", upstream)
    if len(segments) < 2:
        raise ExecutorError(
            f"Node {node.describe()} needs at least 2 segments, got {len(segments)}; "
            "connect more video nodes to 'segments'."
        )
    uris = [uri_of(ctx, media_output(node, "segments", s, types=("video",))) for s in segments]
    payload: dict = {"input_videos": uris}
    config = node.config or {}
    if config.get("transition"):
        payload["transition"] = config["transition"]
        if config.get("transitionDuration") is not None:
            payload["transitionDuration"] = config["transitionDuration"]
    return invoke_ffmpeg_function(node, ctx, role="video_merger", payload=payload)
