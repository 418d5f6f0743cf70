"""Price table and cost estimates."""

from __future__ import annotations

import pytest

from vidpipe_dagster.resources.providers.prices import (
    estimate_cost,
    price_table,
    prices_from_settings,
)
from vidpipe_dagster.settings import Settings


def test_every_rate_has_a_source_and_date() -> None:
    for rates in price_table().values():
        for rate in rates.values():
            assert rate.usd > 0 and rate.source and rate.as_of


FLASH = {"modelId": "eleven_flash_v2_5"}
FAST_1080 = {"model": "veo-3.1-fast-generate-preview", "resolution": "1080p"}


@pytest.mark.parametrize(
    ("provider", "node_type", "config", "kwargs", "usd"),
    [
        ("elevenlabs", "generate-voiceover", {}, {"script_chars": 1200}, 0.12),
        ("elevenlabs", "generate-voiceover", FLASH, {"script_chars": 1200}, 0.06),
        ("heygen", "talking-head", {}, {"seconds": 30}, 2.001),
        ("heygen", "talking-head", {"avatarType": "photo_avatar"}, {"seconds": 30}, 1.5),
        ("heygen", "talking-head", {"width": 3840, "height": 2160}, {"seconds": 10}, 0.833),
        ("heygen", "talking-head", {}, {"script_chars": 1000}, 4.002),
        ("veo3", "generate-animation", {}, {}, 3.2),
        ("veo3", "generate-animation", {"duration": 4, "resolution": "4k"}, {}, 2.4),
        ("veo3", "generate-animation", FAST_1080, {}, 0.96),
        ("runway", "generate-animation", {"duration": 10}, {}, 0.5),
        ("runway", "generate-animation", {"model": "gen4.5"}, {"seconds": 5}, 0.6),
        ("remotion", "render-code", {}, {}, 0.0),
        ("local", "talking-head", {}, {"seconds": 60}, 0.0),
    ],
)
def test_estimates(provider, node_type, config, kwargs, usd) -> None:
    estimate = estimate_cost(provider, node_type, config, **kwargs)
    assert estimate.usd == pytest.approx(usd)
    assert estimate.as_metadata()["usd"] == pytest.approx(usd, abs=1e-4)


def test_unknown_script_length_is_noted() -> None:
    estimate = estimate_cost("elevenlabs", "generate-voiceover", None)
    assert estimate.usd == 0 and estimate.note == "script length unknown"


def test_overrides_from_settings() -> None:
    settings = Settings(
        _env_file=None,
        price_overrides={"veo3": {"veo-3.1-generate-preview": 0.5}, "runway": {"newmodel": 0.2}},
    )
    table = prices_from_settings(settings)
    estimate = estimate_cost("veo3", "generate-animation", {}, prices=table)
    assert estimate.usd == pytest.approx(4.0)
    assert estimate.as_metadata()["source"] == "VIDPIPE_PRICE_OVERRIDES"
    runway = estimate_cost("runway", "generate-animation", {"model": "newmodel"}, prices=table)
    assert runway.usd == pytest.approx(1.0)
    assert price_table()["veo3"]["veo-3.1-generate-preview"].usd == 0.40
