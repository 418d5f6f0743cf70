"""Executor for ``generate-voiceover`` nodes: speech audio for a ``script``.

The script comes from the ``script`` input (a text node) or ``config.script``. The ``local``
provider renders a voice-like MP3 as long as the script takes to read.
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
    """Render the voiceover and return its audio output dict."""
    provider = select_provider(node, ctx.settings)
    script = required_text(node, "script", upstream, ctx)
    ctx.log(f"Rendering voiceover locally ({len(script.split())} words)")
    rendered = local.render_voiceover(script, ctx.workdir / "voiceover.mp3")
    return store_file(
        node,
        ctx,
        rendered.path,
        media_type="audio",
        content_type="audio/mpeg",
        duration=rendered.duration,
        extra={"provider": provider, "cost": 0.0, "characters": len(script)},
    )
