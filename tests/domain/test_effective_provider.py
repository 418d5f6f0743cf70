"""One rule for which provider runs a node, and for ``VIDPIPE_PROVIDERS=local``.

Executors, admission, estimates, pools and the compiled assets' kinds all read the provider
through ``node_types.effective_provider`` and the forcing through ``Settings.force_local``.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from vidpipe_dagster.domain.node_types import effective_provider
from vidpipe_dagster.orchestration.compiler import compile_pipeline
from vidpipe_dagster.runs.plans import step_pool
from vidpipe_dagster.settings import Settings


@pytest.mark.parametrize(
    ("node_type", "config", "force_local", "expected"),
    [
        ("talking-head", {"provider": "heygen"}, False, "heygen"),
        ("talking-head", {"provider": "HeyGen"}, False, "heygen"),
        ("talking-head", {"provider": "  ELEVENLABS "}, False, "elevenlabs"),
        ("generate-talking-head", {"provider": "HeyGen"}, False, "heygen"),
        ("talking-head", {"provider": "heygen"}, True, "local"),
        ("talking-head", {}, False, "local"),
        ("talking-head", None, False, "local"),
        ("talking-head", {"provider": ""}, False, "local"),
        ("talking-head", {"provider": 7}, False, "local"),
        ("generate-animation", {"provider": "Veo3"}, False, "veo3"),
        ("merge-videos", {"provider": "ffmpeg"}, False, "ffmpeg"),
        ("merge-videos", {"provider": "Lambda"}, False, "ffmpeg"),
        ("merge-videos", {"provider": "heygen"}, True, "ffmpeg"),
        ("asset", {"provider": "HeyGen"}, False, "storage"),
        ("no-such-type", {"provider": "heygen"}, False, ""),
    ],
)
def test_effective_provider(
    node_type: str, config: dict[str, Any] | None, force_local: bool, expected: str
) -> None:
    """AI types take ``config.provider`` lower-cased and stripped (forced to ``local`` by
    ``VIDPIPE_PROVIDERS=local``); every other type runs on its type's own provider."""
    assert effective_provider(node_type, config, force_local=force_local) == expected


@pytest.mark.parametrize(
    ("providers", "expected"),
    [("local", True), (" LOCAL ", True), ("Local", True), (None, False), ("", False)]
    + [("heygen", False), ("locally", False)],
)
def test_force_local_setting(providers: str | None, expected: bool) -> None:
    assert Settings(providers=providers).force_local is expected


@pytest.mark.parametrize(
    ("node_type", "config", "force_local"),
    [
        ("talking-head", {"provider": "HeyGen", "avatarId": "a", "voiceId": "v"}, False),
        ("talking-head", {"provider": "HeyGen", "avatarId": "a", "voiceId": "v"}, True),
        ("generate-voiceover", {"provider": "ElevenLabs"}, False),
        ("generate-voiceover", {}, False),
        ("asset", {"provider": "HeyGen"}, False),
    ],
)
def test_compiled_kind_and_pool_follow_the_rule(
    node_type: str, config: dict[str, Any], force_local: bool
) -> None:
    """The asset's kind is the effective provider, and a paid one is also its step's pool."""
    node_uuid = str(uuid.uuid4())
    pipeline = {
        "uuid": str(uuid.uuid4()),
        "title": "kinds",
        "config": {},
        "nodes": [
            {
                "uuid": node_uuid,
                "title": "node",
                "type": node_type,
                "inputs": {},
                "config": config,
                "status": "pending",
            }
        ],
    }
    assets = compile_pipeline(pipeline, automation=False, force_local=force_local)
    specs = [spec for asset in assets for spec in asset.specs]
    assert len(specs) == 1
    provider = effective_provider(node_type, config, force_local=force_local)
    assert specs[0].kinds == {provider}
    expected_pool = provider if provider in ("heygen", "elevenlabs") else None
    assert step_pool(node_type, config, force_local=force_local) == expected_pool
