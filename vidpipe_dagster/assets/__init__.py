"""Executors: what materializing each node type does (see ``base`` for the contract).

``EXECUTORS[node.type](node, upstream, ctx) -> output dict``.
"""

from __future__ import annotations

from vidpipe_dagster.assets import (
    asset_node,
    compose_video,
    generate_animation,
    generate_voiceover,
    merge_videos,
    mix_audio,
    render_code,
    talking_head,
)
from vidpipe_dagster.assets.base import (
    ExecutionContext,
    Executor,
    ExecutorError,
    NodeSpec,
    UpstreamNode,
)

EXECUTORS: dict[str, Executor] = {
    "asset": asset_node.execute,
    "merge-videos": merge_videos.execute,
    "mix-audio": mix_audio.execute,
    "compose-video": compose_video.execute,
    "talking-head": talking_head.execute,
    "generate-animation": generate_animation.execute,
    "generate-voiceover": generate_voiceover.execute,
    "render-code": render_code.execute,
}

__all__ = [
    "EXECUTORS",
    "ExecutionContext",
    "Executor",
    "ExecutorError",
    "NodeSpec",
    "UpstreamNode",
]
