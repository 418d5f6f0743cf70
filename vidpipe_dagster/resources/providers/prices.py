"""Provider price table and cost estimates.

Every rate carries its source and the date it was read (``reference/providers.md`` section 8);
providers change prices often, so treat them as configuration: override any rate with the
``VIDPIPE_PRICE_OVERRIDES`` setting, a JSON object ``{"provider": {"key": usd}}`` (e.g.
``{"veo3": {"veo-3.1-generate-preview": 0.35}}``), via :func:`prices_from_settings`.

Usage::

    estimate = estimate_cost("elevenlabs", "generate-voiceover", config, script_chars=1200)
    estimate.usd            # 0.12
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

Unit = Literal["1k_chars", "second", "render"]

CHARS_PER_SECOND_OF_SPEECH = 1000 / 60
DEFAULT_ANIMATION_SECONDS = {"veo3": 8, "runway": 5}


@dataclass(frozen=True)
class Rate:
    """A price: ``usd`` per ``unit``, where it comes from and when it was read."""

    usd: float
    unit: Unit
    source: str
    as_of: str


@dataclass(frozen=True)
class CostEstimate:
    """An estimated cost in USD and how it was computed."""

    provider: str
    usd: float
    quantity: float
    unit: Unit | None
    rate: Rate | None
    note: str = ""

    def as_metadata(self) -> dict[str, Any]:
        """A JSON-friendly dict for node metadata and the estimate endpoint."""
        return {
            "provider": self.provider,
            "usd": round(self.usd, 4),
            "quantity": round(self.quantity, 3),
            "unit": self.unit,
            "rate": self.rate.usd if self.rate else None,
            "source": self.rate.source if self.rate else None,
            "as_of": self.rate.as_of if self.rate else None,
            "note": self.note,
        }


_EL = "3P developer.puter.com ElevenLabs API pricing"
_HG = "DOC developers.heygen.com pricing (v3 self-serve)"
_VEO = "3P transcription of ai.google.dev/gemini-api/docs/pricing"
_VEO_FAST = "3P reapi.ai, citing the Gemini docs"
_RW = "runwayml/skills; 3P toolcolumn.com ($0.01/credit)"

PRICES: dict[str, dict[str, Rate]] = {
    "elevenlabs": {
        "eleven_multilingual_v2": Rate(0.10, "1k_chars", _EL, "2026-06"),
        "eleven_v3": Rate(0.10, "1k_chars", _EL, "2026-06"),
        "eleven_flash_v2_5": Rate(0.05, "1k_chars", _EL, "2026-06"),
        "eleven_flash_v2": Rate(0.05, "1k_chars", _EL, "2026-06"),
        "eleven_turbo_v2_5": Rate(0.05, "1k_chars", _EL, "2026-06"),
        "eleven_turbo_v2": Rate(0.05, "1k_chars", _EL, "2026-06"),
    },
    "heygen": {
        "photo_avatar": Rate(0.05, "second", _HG, "2026"),
        "photo_avatar_4k": Rate(0.0667, "second", _HG, "2026"),
        "digital_twin": Rate(0.0667, "second", _HG, "2026"),
        "digital_twin_4k": Rate(0.0833, "second", _HG, "2026"),
    },
    "veo3": {
        "veo-3.1-generate-preview": Rate(0.40, "second", _VEO, "2026-09-20"),
        "veo-3.1-generate-preview_4k": Rate(0.60, "second", _VEO, "2026-09-20"),
        "veo-3.1-fast-generate-preview": Rate(0.10, "second", _VEO_FAST, "2026-05"),
        "veo-3.1-fast-generate-preview_1080p": Rate(0.12, "second", _VEO_FAST, "2026-05"),
        "veo-3.1-fast-generate-preview_4k": Rate(0.30, "second", _VEO_FAST, "2026-05"),
        "veo-3.1-lite-generate-preview": Rate(0.05, "second", _VEO_FAST, "2026-05"),
    },
    "runway": {
        "gen4_turbo": Rate(0.05, "second", _RW, "2026-05"),
        "gen4.5": Rate(0.12, "second", _RW, "2026-05"),
        "veo3": Rate(0.40, "second", _RW, "2026-05"),
        "veo3.1": Rate(0.40, "second", _RW, "2026-05"),
        "veo3.1_fast": Rate(0.15, "second", _RW, "2026-05"),
    },
    "remotion": {},
    "local": {},
}

DEFAULT_KEYS = {
    "elevenlabs": "eleven_multilingual_v2",
    "heygen": "digital_twin",
    "veo3": "veo-3.1-generate-preview",
    "runway": "gen4_turbo",
}


def prices_from_settings(settings: Any) -> dict[str, dict[str, Rate]]:
    """:data:`PRICES` with ``settings.price_overrides`` (``{provider: {key: usd}}``) applied."""
    table = {provider: dict(rates) for provider, rates in PRICES.items()}
    for provider, rates in (getattr(settings, "price_overrides", None) or {}).items():
        target = table.setdefault(provider, {})
        for key, usd in rates.items():
            base = target.get(key) or target.get(DEFAULT_KEYS.get(provider, ""))
            unit: Unit = base.unit if base else "second"
            target[key] = (
                replace(base, usd=float(usd), source="VIDPIPE_PRICE_OVERRIDES", as_of="override")
                if base
                else Rate(float(usd), unit, "VIDPIPE_PRICE_OVERRIDES", "override")
            )
    return table


def _rate(table: Mapping[str, Mapping[str, Rate]], provider: str, *keys: str) -> Rate | None:
    rates = table.get(provider, {})
    for key in keys:
        if key in rates:
            return rates[key]
    return rates.get(DEFAULT_KEYS.get(provider, ""))


def _resolution_suffix(config: Mapping[str, Any]) -> str:
    resolution = str(config.get("resolution") or "").lower()
    height = min(int(config.get("width") or 0), int(config.get("height") or 0))
    if resolution == "4k" or height >= 2160:
        return "_4k"
    if resolution == "1080p" or height >= 1080:
        return "_1080p"
    return ""


def estimate_cost(
    provider: str,
    node_type: str,
    config: Mapping[str, Any] | None,
    *,
    script_chars: int | None = None,
    seconds: float | None = None,
    prices: Mapping[str, Mapping[str, Rate]] | None = None,
) -> CostEstimate:
    """Estimate what one run of a node costs with ``provider``.

    - ``elevenlabs``: per 1,000 characters of script (``script_chars``), by ``modelId``.
    - ``heygen``: per second of output: ``seconds``, else the script's speaking time
      (about 1,000 characters a minute); ``config.avatarType`` ``photo_avatar`` or
      ``digital_twin`` (default), 4K when ``width``/``height`` say so.
    - ``veo3`` / ``runway``: per second of output: ``seconds`` or ``config.duration``, by
      ``model`` (and resolution for Veo).
    - ``remotion`` and ``local``: 0 (Remotion's actual cost comes from ``costs.accruedSoFar``).
    """
    config = config or {}
    table = prices if prices is not None else PRICES
    if provider in ("local", "remotion") or provider not in table:
        note = {
            "local": "rendered locally, free",
            "remotion": "no published per-render price; actual cost from costs.accruedSoFar",
        }.get(provider, f"no price table for provider {provider!r}")
        return CostEstimate(provider, 0.0, 0.0, None, None, note)
    if provider == "elevenlabs":
        model = str(config.get("modelId") or DEFAULT_KEYS["elevenlabs"])
        rate = _rate(table, provider, model)
        chars = float(script_chars or 0)
        note = "" if script_chars is not None else "script length unknown"
        usd = (rate.usd * chars / 1000) if rate else 0.0
        return CostEstimate(provider, usd, chars, "1k_chars", rate, note)
    suffix = _resolution_suffix(config)
    note = ""
    if provider == "heygen":
        kind = str(config.get("avatarType") or DEFAULT_KEYS["heygen"])
        rate = _rate(table, provider, kind + ("_4k" if suffix == "_4k" else ""), kind)
        if seconds is None:
            if script_chars is not None:
                seconds = script_chars / CHARS_PER_SECOND_OF_SPEECH
                note = "duration estimated from the script length"
            else:
                seconds = 0.0
                note = "duration unknown"
    else:
        model = str(config.get("model") or DEFAULT_KEYS[provider])
        rate = _rate(table, provider, model + suffix, model)
        if seconds is None:
            seconds = float(config.get("duration") or DEFAULT_ANIMATION_SECONDS.get(provider, 8))
    usd = rate.usd * seconds if rate else 0.0
    return CostEstimate(provider, usd, float(seconds), "second", rate, note)
