"""Executor for ``generate-animation`` nodes: a short video from a ``prompt``.

The prompt comes from the ``prompt`` input (a text node) or ``config.prompt``;
``config.duration`` sets the length in seconds (default 8). The ``local`` provider renders
a moving pattern with the prompt text; it does not use ``referenceImage``.
"""

from __future__ import annotations

from collections.abc import Mapping

from vidpipe_dagster.assets.base import (
    ExecutionContext,
    NodeSpec,
    UpstreamNode,
    config_number,
    required_text,
    select_provider,
    store_file,
)
from vidpipe_dagster.resources.providers import local

MAX_SECONDS = 120.0


def execute(node: NodeSpec, upstream: Mapping[str, UpstreamNode], ctx: ExecutionContext) -> dict:
    """Render the animation and return its video output dict."""
    provider = select_provider(node, ctx.settings)
    prompt = required_text(node, "prompt", upstream, ctx)
    duration = config_number(
        node,
        "duration",
        default=local.DEFAULT_ANIMATION_SECONDS,
        minimum=0.5,
        maximum=MAX_SECONDS,
    )
    ctx.log(f"Rendering a {duration:g} s animation locally")
    rendered = local.render_animation(prompt, ctx.workdir / "animation.mp4", duration=duration)
    return store_file(
        node,
        ctx,
        rendered.path,
        media_type="video",
        content_type="video/mp4",
        duration=rendered.duration,
        extra={"provider": provider, "cost": 0.0},
    )
