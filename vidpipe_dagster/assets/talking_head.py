"""Executor for ``talking-head`` nodes: a presenter video reading the ``script``.

The script comes from the ``script`` input (a text node) or ``config.script``. The ``local``
provider renders a 1280x720 placeholder as long as the script takes to read. ``heygen``
submits an avatar video and returns an :class:`AsyncSubmission`; when the ``script`` input
is a voiceover node, its audio is handed to HeyGen as a short-lived storage URL so the
avatar speaks that voice.
"""

from __future__ import annotations

from collections.abc import Mapping

from vidpipe_dagster.assets.base import AsyncSubmission, ExecutionContext, NodeSpec, UpstreamNode
from vidpipe_dagster.assets.inputs import required_text, script_audio, upstream_nodes
from vidpipe_dagster.assets.outputs import store_local_video
from vidpipe_dagster.assets.provider_calls import select_provider, send_paid, submitted, webhook_url
from vidpipe_dagster.resources.providers import local
from vidpipe_dagster.resources.providers.prices import estimate_cost, prices_from_settings

AUDIO_URL_SECONDS = 6 * 3600
"""How long HeyGen may take to fetch a voiceover's audio."""


def execute(
    node: NodeSpec, upstream: Mapping[str, UpstreamNode], ctx: ExecutionContext
) -> dict | AsyncSubmission:
    """Render the talking head (local) or submit it to HeyGen."""
    provider = select_provider(node, ctx.settings)
    if provider == "heygen":
        return submit(node, upstream, ctx)
    script = required_text(node, "script", upstream, ctx)
    ctx.log(f"Rendering talking head locally ({len(script.split())} words)")
    rendered = local.render_talking_head(script, ctx.workdir / "talking-head.mp4")
    return store_local_video(node, ctx, rendered, provider=provider)


def submit(
    node: NodeSpec, upstream: Mapping[str, UpstreamNode], ctx: ExecutionContext
) -> AsyncSubmission:
    """Submit the avatar video to HeyGen with the voiceover's audio or the script text."""
    voice = script_audio(upstream_nodes(node, "script", upstream, required=False))
    script: str | None = None
    audio_url: str | None = None
    seconds: float | None = None
    if voice is not None:
        stored = voice.output or {}
        audio_url = ctx.storage.browser_url(stored["s3_key"], expires_in=AUDIO_URL_SECONDS)
        seconds = float(stored.get("duration") or 0.0) or None
    else:
        script = required_text(node, "script", upstream, ctx)
    callback_url = webhook_url(ctx.settings, "heygen")
    ctx.log(
        "Submitting a HeyGen avatar video "
        + ("speaking the voiceover's audio" if audio_url else f"reading {len(script or '')} chars")
    )
    video_id = send_paid(
        node,
        ctx,
        provider="heygen",
        send=lambda client: client.submit(
            config=node.config or {},
            script=script,
            audio_url=audio_url,
            title=node.title or None,
            callback_url=callback_url,
            reference=ctx.process_uuid,
        ),
    )
    estimate = estimate_cost(
        "heygen",
        node.type,
        node.config or {},
        script_chars=len(script) if script else None,
        seconds=seconds,
        prices=prices_from_settings(ctx.settings),
    )
    return submitted(
        "heygen",
        video_id,
        estimated_cost=estimate.usd,
        extra={"voice": "audio" if audio_url else "text"},
    )
