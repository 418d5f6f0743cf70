"""Provider prices: the rate type, the estimate type and the one entry point.

Each provider module declares its own rates (``UNIT.rates``, each with its source and the date
it was read, ``reference/providers.md`` section 8) and its price function (``UNIT.price``);
:func:`estimate_cost` dispatches to it. Providers change prices often, so treat them as
configuration: override any rate with the ``VIDPIPE_PRICE_OVERRIDES`` setting, a JSON object
``{"provider": {"key": usd}}`` (e.g. ``{"veo3": {"veo-3.1-generate-preview": 0.35}}``), via
:func:`prices_from_settings`.

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


def price_table() -> dict[str, dict[str, Rate]]:
    """Every registered provider's default rates: ``{provider: {key: Rate}}``."""
    from vidpipe_dagster.resources.providers.registry import units

    return {unit.name: dict(unit.rates) for unit in units()}


def _default_key(provider: str) -> str:
    from vidpipe_dagster.resources.providers.registry import get_unit

    unit = get_unit(provider)
    return unit.default_rate_key if unit else ""


def prices_from_settings(settings: Any) -> dict[str, dict[str, Rate]]:
    """:func:`price_table` with ``settings.price_overrides`` (``{provider: {key: usd}}``)."""
    table = price_table()
    for provider, rates in (getattr(settings, "price_overrides", None) or {}).items():
        target = table.setdefault(provider, {})
        for key, usd in rates.items():
            base = target.get(key) or target.get(_default_key(provider))
            unit: Unit = base.unit if base else "second"
            target[key] = (
                replace(base, usd=float(usd), source="VIDPIPE_PRICE_OVERRIDES", as_of="override")
                if base
                else Rate(float(usd), unit, "VIDPIPE_PRICE_OVERRIDES", "override")
            )
    return table


def pick_rate(rates: Mapping[str, Rate], *keys: str, default: str = "") -> Rate | None:
    """The first of ``keys`` found in ``rates``, else the ``default`` key's rate."""
    for key in keys:
        if key in rates:
            return rates[key]
    return rates.get(default)


def resolution_suffix(config: Mapping[str, Any]) -> str:
    """``_4k``, ``_1080p`` or ``""`` from ``config.resolution`` or ``width``/``height``."""
    resolution = str(config.get("resolution") or "").lower()
    height = min(int(config.get("width") or 0), int(config.get("height") or 0))
    if resolution == "4k" or height >= 2160:
        return "_4k"
    if resolution == "1080p" or height >= 1080:
        return "_1080p"
    return ""


def per_second_of_video(*, provider: str, default_model: str, default_seconds: float):
    """A price function billing each second of output (``seconds``, else
    ``config.duration``, else ``default_seconds``) at the rate of ``config.model`` and its
    resolution (``model_4k``, ``model_1080p``), falling back to ``default_model``."""

    def estimate(
        node_type: str,
        config: Mapping[str, Any],
        *,
        script_chars: int | None,
        seconds: float | None,
        rates: Mapping[str, Rate],
    ) -> CostEstimate:
        model = str(config.get("model") or default_model)
        rate = pick_rate(rates, model + resolution_suffix(config), model, default=default_model)
        if seconds is None:
            seconds = float(config.get("duration") or default_seconds)
        usd = rate.usd * seconds if rate else 0.0
        return CostEstimate(provider, usd, float(seconds), "second", rate, "")

    return estimate


def free(provider: str, note: str) -> CostEstimate:
    """A zero estimate with the reason."""
    return CostEstimate(provider, 0.0, 0.0, None, None, note)


def estimate_cost(
    provider: str,
    node_type: str,
    config: Mapping[str, Any] | None,
    *,
    script_chars: int | None = None,
    seconds: float | None = None,
    prices: Mapping[str, Mapping[str, Rate]] | None = None,
) -> CostEstimate:
    """Estimate what one run of a node costs with ``provider`` (its unit's price function).

    ``script_chars`` is the script's length where the price depends on it; ``seconds`` the
    output's length when known. ``prices`` defaults to :func:`price_table`.
    """
    from vidpipe_dagster.resources.providers.registry import get_unit

    unit = get_unit(provider)
    if unit is None or unit.price is None:
        return free(provider, f"no price table for provider {provider!r}")
    table = prices if prices is not None else price_table()
    rates = table.get(provider, unit.rates)
    return unit.price(
        node_type, config or {}, script_chars=script_chars, seconds=seconds, rates=rates
    )
