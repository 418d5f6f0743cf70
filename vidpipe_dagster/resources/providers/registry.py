"""The providers vidpipe knows: one :class:`~.unit.ProviderUnit` per provider module.

Adding a provider is adding one module that ends with ``UNIT = ProviderUnit(...)`` and
registering it: list the module in :data:`BUILTIN_MODULES`, or call :func:`register` (tests
and plugins). Everything else (executors, the polling sensor, webhooks, prices, limits)
asks the registry:

- :func:`get_unit` / :func:`require_unit`: the unit named by ``config.provider``;
- :func:`providers_for`: which providers can render a node type;
- :data:`ASYNC_PROVIDERS` and :data:`PAID_PROVIDERS`: live views of the registered names;
- :func:`max_wait_seconds`, :func:`jobs_limit`: a provider's limits under the settings.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterator
from collections.abc import Set as AbstractSet
from typing import Any

from vidpipe_dagster.resources.providers.unit import ProviderUnit

BUILTIN_MODULES: tuple[str, ...] = ("heygen", "elevenlabs", "veo", "runway", "remotion", "local")
"""Provider modules under ``vidpipe_dagster.resources.providers`` registered at first use."""

_units: dict[str, ProviderUnit] = {}
_lock = threading.RLock()
_loaded = False


def _ensure_builtin() -> None:
    global _loaded
    if _loaded:
        return
    with _lock:
        if _loaded:
            return
        for module in BUILTIN_MODULES:
            unit = importlib.import_module(f"vidpipe_dagster.resources.providers.{module}").UNIT
            _units.setdefault(unit.name, unit)
        _loaded = True


def register(unit: ProviderUnit) -> ProviderUnit:
    """Make ``unit`` known under ``unit.name`` (replacing a unit of that name)."""
    _ensure_builtin()
    with _lock:
        _units[unit.name] = unit
    return unit


def unregister(name: str) -> None:
    """Forget the provider ``name`` (tests that registered one of their own)."""
    _ensure_builtin()
    with _lock:
        _units.pop(name, None)


def units() -> tuple[ProviderUnit, ...]:
    """Every registered unit."""
    _ensure_builtin()
    with _lock:
        return tuple(_units.values())


def get_unit(name: str) -> ProviderUnit | None:
    """The unit named ``name``, else ``None``."""
    _ensure_builtin()
    return _units.get(name)


def require_unit(name: str) -> ProviderUnit:
    """The unit named ``name``; ``ValueError`` naming the known ones otherwise."""
    unit = get_unit(name)
    if unit is None:
        known = ", ".join(sorted(u.name for u in units()))
        raise ValueError(f"unknown provider {name!r}; known providers: {known}")
    return unit


def providers_for(node_type: str) -> frozenset[str]:
    """The providers that can render ``node_type``."""
    return frozenset(u.name for u in units() if node_type in u.node_types)


class _LiveNames(AbstractSet[str]):
    """The names of the registered units that satisfy a predicate, read at each use."""

    def __init__(self, predicate: Callable[[ProviderUnit], bool], description: str) -> None:
        self._predicate = predicate
        self._description = description

    def _names(self) -> frozenset[str]:
        return frozenset(u.name for u in units() if self._predicate(u))

    def __contains__(self, name: object) -> bool:
        unit = get_unit(name) if isinstance(name, str) else None
        return unit is not None and self._predicate(unit)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._names()))

    def __len__(self) -> int:
        return len(self._names())

    def __repr__(self) -> str:
        return f"<{self._description}: {', '.join(self)}>"


ASYNC_PROVIDERS: AbstractSet[str] = _LiveNames(lambda u: u.mode == "async", "async providers")
"""Providers whose jobs are submitted in a run and finished later (poll or webhook)."""

PAID_PROVIDERS: AbstractSet[str] = _LiveNames(lambda u: u.paid, "paid providers")
"""Providers that cost money per job."""


def max_wait_seconds(provider: str, settings: Any) -> float:
    """How long a job of ``provider`` may stay unfinished before it is failed."""
    return require_unit(provider).settings(settings).max_wait_seconds


def jobs_limit(provider: str, settings: Any) -> int:
    """How many jobs of ``provider`` may be in flight at once."""
    unit = get_unit(provider)
    if unit is None:
        return 5
    return unit.settings(settings).in_flight_limit
