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
from dataclasses import replace
from functools import partial
from typing import Any

from vidpipe_dagster.domain.costs import Pricer
from vidpipe_dagster.domain.prices import CostEstimate, Rate, Unit, free


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


def pricer(settings: Any) -> Pricer:
    """:func:`estimate_cost` with the settings' price table bound: what the budget rules in
    ``domain.costs`` are given to price a node."""
    return partial(estimate_cost, prices=prices_from_settings(settings))
