"""Executor for ``talking-head`` nodes: a presenter video reading the ``script``.

The script comes from the ``script`` input (a text node) or ``config.script``. The ``local``
provider renders a 1280x720 placeholder as long as the script takes to read.
"""

from __future__ import annotations

from collections.abc import Mapping

from vidpipe_dagster.assets.base import (
    ExecutionContext,
    NodeSpec,
    UpstreamNode,
    required_text,
    select_provider,
    store_file,
)
from vidpipe_dagster.resources.providers import local


def execute(node: NodeSpec, upstream: Mapping[str, UpstreamNode], ctx: ExecutionContext) -> dict:
    """Render the talking head and return its video output dict."""
    provider = select_provider(node, ctx.settings)
    script = required_text(node, "script", upstream, ctx)
    ctx.log(f"Rendering talking head locally ({len(script.split())} words)")
    rendered = local.render_talking_head(script, ctx.workdir / "talking-head.mp4")
    return store_file(
        node,
        ctx,
        rendered.path,
        media_type="video",
        content_type="video/mp4",
        duration=rendered.duration,
        extra={"provider": provider, "cost": 0.0},
    )
