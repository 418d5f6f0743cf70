"""Executor for ``generate-animation`` nodes: a short video from a ``prompt``.

The prompt comes from the ``prompt`` input (a text node) or ``config.prompt``;
``config.duration`` sets the length in seconds (default 8). The ``local`` provider renders
a moving pattern with the prompt text and does not use ``referenceImage``. ``veo3`` (Gemini
API) and ``runway`` submit a generation, with the ``referenceImage`` input as the first
frame, and return an :class:`AsyncSubmission`.
"""

from __future__ import annotations

from collections.abc import Mapping

from vidpipe_dagster.assets.base import AsyncSubmission, ExecutionContext, NodeSpec, UpstreamNode
from vidpipe_dagster.assets.inputs import config_number, image_input, required_text, text_input
from vidpipe_dagster.assets.outputs import store_local_video
from vidpipe_dagster.assets.provider_calls import select_provider, send_paid, submitted
from vidpipe_dagster.resources.providers import local
from vidpipe_dagster.resources.providers.prices import estimate_cost, prices_from_settings
from vidpipe_dagster.resources.providers.registry import require_unit

MAX_SECONDS = 120.0


def execute(
    node: NodeSpec, upstream: Mapping[str, UpstreamNode], ctx: ExecutionContext
) -> dict | AsyncSubmission:
    """Render the animation (local) or submit it to Veo or Runway."""
    provider = select_provider(node, ctx.settings)
    if provider != local.UNIT.name and require_unit(provider).mode == "async":
        return submit(node, upstream, ctx, provider=provider)
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
    return store_local_video(node, ctx, rendered, provider=provider)


def submit(
    node: NodeSpec,
    upstream: Mapping[str, UpstreamNode],
    ctx: ExecutionContext,
    *,
    provider: str,
) -> AsyncSubmission:
    """Submit the generation to ``provider`` (``veo3``, ``runway`` or any asynchronous
    provider of animations: its client's ``submit(config=, prompt=, image=,
    image_mime_type=)`` returns the job id)."""
    config = node.config or {}
    image = image_input(node, "referenceImage", upstream, ctx)
    if provider == "veo3" or image is None:
        prompt: str | None = required_text(node, "prompt", upstream, ctx)
    else:
        prompt = text_input(node, "prompt", upstream, ctx) or config.get("prompt")
    ctx.log(
        f"Submitting a {provider} generation"
        + (" with a reference image" if image is not None else "")
    )
    job_id = send_paid(
        node,
        ctx,
        provider=provider,
        send=lambda client: client.submit(
            config=config,
            prompt=prompt,
            image=image[0] if image else None,
            image_mime_type=image[1] if image else "image/png",
        ),
    )
    estimate = estimate_cost(provider, node.type, config, prices=prices_from_settings(ctx.settings))
    return submitted(provider, job_id, estimated_cost=estimate.usd)
