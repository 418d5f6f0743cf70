"""Executor for ``generate-voiceover`` nodes: speech audio for a ``script``.

The script comes from the ``script`` input (a text node) or ``config.script``. The ``local``
provider renders a voice-like MP3 as long as the script takes to read; ``elevenlabs``
synthesises it (synchronously: the audio is stored before the node completes) and records
the actual cost from the characters billed.
"""

from __future__ import annotations

from collections.abc import Mapping

from vidpipe_dagster.assets.base import ExecutionContext, NodeSpec, UpstreamNode
from vidpipe_dagster.assets.inputs import required_text
from vidpipe_dagster.assets.outputs import measure, store_file
from vidpipe_dagster.assets.provider_calls import select_provider, send_paid
from vidpipe_dagster.resources.providers import local
from vidpipe_dagster.resources.providers.prices import estimate_cost, prices_from_settings


def execute(node: NodeSpec, upstream: Mapping[str, UpstreamNode], ctx: ExecutionContext) -> dict:
    """Render the voiceover and return its audio output dict."""
    provider = select_provider(node, ctx.settings)
    script = required_text(node, "script", upstream, ctx)
    if provider == "elevenlabs":
        return synthesize(node, script, ctx)
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


def synthesize(node: NodeSpec, script: str, ctx: ExecutionContext) -> dict:
    """Speak ``script`` with ElevenLabs, store the audio and return the output dict."""
    config = node.config or {}
    ctx.log(f"Synthesising {len(script)} characters with ElevenLabs")
    speech = send_paid(
        node,
        ctx,
        provider="elevenlabs",
        send=lambda client: client.synthesize(text=script, config=config),
    )
    path = ctx.workdir / f"voiceover.{speech.extension}"
    path.write_bytes(speech.audio)
    characters = speech.character_cost or speech.characters
    cost = estimate_cost(
        "elevenlabs",
        node.type,
        config,
        script_chars=characters,
        prices=prices_from_settings(ctx.settings),
    )
    return store_file(
        node,
        ctx,
        path,
        media_type="audio",
        content_type=speech.content_type.split(";")[0].strip() or "audio/mpeg",
        duration=measure(node, str(path)).duration,
        extra={
            "provider": "elevenlabs",
            "cost": round(cost.usd, 6),
            "characters": characters,
            **({"request_id": speech.request_id} if speech.request_id else {}),
        },
    )
