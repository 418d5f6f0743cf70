"""Executor for ``render-code`` nodes: a code screen video.

The code comes from the ``config`` input (a text node; a JSON document with a ``code``
field works too) or from ``config.code``. ``config.duration`` sets the length in seconds
(default: from the number of lines). The ``local`` provider typesets the code on a dark
background.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from vidpipe_dagster.assets.base import (
    ExecutionContext,
    ExecutorError,
    NodeSpec,
    UpstreamNode,
    config_number,
    select_provider,
    store_file,
    text_input,
)
from vidpipe_dagster.resources.providers import local

MAX_SECONDS = 300.0


def execute(node: NodeSpec, upstream: Mapping[str, UpstreamNode], ctx: ExecutionContext) -> dict:
    """Render the code screen and return its video output dict."""
    provider = select_provider(node, ctx.settings)
    code = code_text(node, upstream, ctx)
    duration = None
    if (node.config or {}).get("duration") is not None:
        duration = config_number(node, "duration", default=0, minimum=0.5, maximum=MAX_SECONDS)
    ctx.log(f"Rendering {len(code.splitlines())} lines of code locally")
    rendered = local.render_code(code, ctx.workdir / "code.mp4", duration=duration)
    return store_file(
        node,
        ctx,
        rendered.path,
        media_type="video",
        content_type="video/mp4",
        duration=rendered.duration,
        extra={"provider": provider, "cost": 0.0},
    )


def code_text(node: NodeSpec, upstream: Mapping[str, UpstreamNode], ctx: ExecutionContext) -> str:
    """The code to show: the ``config`` input (plain or JSON with ``code``) or config.code."""
    text = text_input(node, "config", upstream, ctx)
    if text is not None:
        try:
            document = json.loads(text)
        except json.JSONDecodeError:
            document = None
        if isinstance(document, dict) and isinstance(document.get("code"), str):
            text = document["code"]
    else:
        configured = (node.config or {}).get("code")
        text = configured if isinstance(configured, str) else None
    if not text or not text.strip():
        raise ExecutorError(
            f"Node {node.describe()} (render-code) has no code: connect a text node to input "
            "'config' or set config.code."
        )
    return text.rstrip()
