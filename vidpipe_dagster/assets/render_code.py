"""Executor for ``render-code`` nodes: a code screen video.

The code comes from the ``config`` input (a text node; a JSON document with a ``code``
field works too) or from ``config.code``. ``config.duration`` sets the length in seconds
(default: from the number of lines). The ``local`` provider typesets the code on a dark
background. ``remotion`` starts a Remotion Lambda render of ``config.compositionId`` (the
editor writes ``sceneId``) from ``config.serveUrl`` with the ``config`` input's JSON object
as input props, and returns an :class:`AsyncSubmission`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from vidpipe_dagster.assets.base import (
    AsyncSubmission,
    ExecutionContext,
    ExecutorError,
    NodeSpec,
    UpstreamNode,
)
from vidpipe_dagster.assets.inputs import config_number, text_input
from vidpipe_dagster.assets.outputs import store_local_video
from vidpipe_dagster.assets.provider_calls import select_provider, send_paid, submitted, webhook_url
from vidpipe_dagster.resources.providers import local

MAX_SECONDS = 300.0


def execute(
    node: NodeSpec, upstream: Mapping[str, UpstreamNode], ctx: ExecutionContext
) -> dict | AsyncSubmission:
    """Render the code screen (local) or start a Remotion Lambda render."""
    provider = select_provider(node, ctx.settings)
    if provider == "remotion":
        return submit(node, upstream, ctx)
    code = code_text(node, upstream, ctx)
    duration = None
    if (node.config or {}).get("duration") is not None:
        duration = config_number(node, "duration", default=0, minimum=0.5, maximum=MAX_SECONDS)
    ctx.log(f"Rendering {len(code.splitlines())} lines of code locally")
    rendered = local.render_code(code, ctx.workdir / "code.mp4", duration=duration)
    return store_local_video(node, ctx, rendered, provider=provider)


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


def input_props(
    node: NodeSpec, upstream: Mapping[str, UpstreamNode], ctx: ExecutionContext
) -> dict:
    """The render's input props: the ``config`` input's JSON object (``{}`` when unconnected)."""
    text = text_input(node, "config", upstream, ctx)
    if text is None:
        props = (node.config or {}).get("inputProps")
        return dict(props) if isinstance(props, dict) else {}
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ExecutorError(
            f"Node {node.describe()} (render-code): the 'config' input is not JSON ({exc}); "
            "connect a text node holding a JSON object of input props."
        ) from exc
    if not isinstance(document, dict):
        raise ExecutorError(
            f"Node {node.describe()} (render-code): the 'config' input must be a JSON object "
            f"of input props, got {type(document).__name__}."
        )
    return document


def submit(
    node: NodeSpec, upstream: Mapping[str, UpstreamNode], ctx: ExecutionContext
) -> AsyncSubmission:
    """Start the Remotion Lambda render."""
    config = node.config or {}
    props = input_props(node, upstream, ctx)
    composition = config.get("compositionId") or config.get("sceneId")
    ctx.log(f"Starting a Remotion render of {composition!r}")
    job_id = send_paid(
        node,
        ctx,
        provider="remotion",
        send=lambda client: client.submit(
            composition_id=str(composition or ""),
            serve_url=str(config.get("serveUrl") or ""),
            input_props=props,
            webhook=remotion_webhook(node, ctx),
        ),
    )
    return submitted("remotion", job_id, estimated_cost=0.0)


def remotion_webhook(node: NodeSpec, ctx: ExecutionContext) -> dict | None:
    """Remotion's webhook block when ``VIDPIPE_WEBHOOK_BASE_URL`` and its secret are set."""
    url = webhook_url(ctx.settings, "remotion")
    secret = ctx.settings.remotion_webhook_secret
    if not url or secret is None:
        return None
    return {"url": url, "secret": secret.get_secret_value(), "customData": {"node": node.uuid}}
