"""What a price is: rates, estimates and the price-function helpers providers share.

Each provider module declares its own rates and price function (``UNIT.rates``,
``UNIT.price``); ``resources.providers.prices`` looks them up. These types and helpers are
plain data and arithmetic, so the domain's budget rules (``domain.costs``) use them without
knowing any provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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
