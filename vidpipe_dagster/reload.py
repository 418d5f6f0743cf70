"""Reloading the code location after pipeline rows change: debounced and non-blocking.

``request_reload(settings)`` returns at once. Requests for the same location within the
debounce window collapse into one ``reloadRepositoryLocation`` GraphQL call made on a
background thread, so a burst of API writes costs one reload and never delays a response.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import httpx

from vidpipe_dagster.settings import Settings

log = logging.getLogger(__name__)

DEBOUNCE_SECONDS = 1.0
RELOAD_TIMEOUT_SECONDS = 300.0

RELOAD_MUTATION = """
mutation Reload($location: String!) {
  reloadRepositoryLocation(repositoryLocationName: $location) {
    __typename
    ... on WorkspaceLocationEntry {
      locationOrLoadError { __typename ... on PythonError { message } }
    }
    ... on ReloadNotSupported { message }
    ... on RepositoryLocationNotFound { message }
    ... on PythonError { message }
  }
}
"""


class ReloadError(RuntimeError):
    """The webserver could not be reached or refused to reload the location."""


def reload_location(
    *, dagster_url: str, location: str, timeout: float = RELOAD_TIMEOUT_SECONDS
) -> None:
    """Reload ``location`` on the webserver at ``dagster_url`` and wait for the result."""
    url = dagster_url.rstrip("/") + "/graphql"
    try:
        response = httpx.post(
            url,
            json={"query": RELOAD_MUTATION, "variables": {"location": location}},
            timeout=httpx.Timeout(timeout, connect=3.0),
        )
        response.raise_for_status()
        body = response.json()
    except (httpx.HTTPError, ValueError) as error:
        raise ReloadError(
            f"Cannot reload Dagster location {location!r} at {url}: {error}"
        ) from error
    result = (body.get("data") or {}).get("reloadRepositoryLocation") or {}
    if result.get("__typename") != "WorkspaceLocationEntry":
        detail = result.get("message") or body.get("errors") or result
        raise ReloadError(f"Dagster did not reload location {location!r}: {detail}")
    loaded = result.get("locationOrLoadError") or {}
    if loaded.get("__typename") == "PythonError":
        raise ReloadError(f"Location {location!r} failed to load: {loaded.get('message')}")


class Reloader:
    """Debounces reload requests per location and runs them on a background thread."""

    def __init__(
        self,
        *,
        debounce_seconds: float = DEBOUNCE_SECONDS,
        reload: Callable[..., None] = reload_location,
    ) -> None:
        self.debounce_seconds = debounce_seconds
        self._reload = reload
        self._lock = threading.Lock()
        self._timers: dict[tuple[str, str], threading.Timer] = {}
        self._done = threading.Condition(self._lock)
        self._busy = 0
        self._failing: set[tuple[str, str]] = set()

    def request(self, *, dagster_url: str, location: str) -> None:
        """Schedule a reload of ``location``; a pending one for it absorbs this request."""
        target = (dagster_url, location)
        with self._lock:
            if target in self._timers:
                return
            timer = threading.Timer(self.debounce_seconds, self._fire, args=(target,))
            timer.daemon = True
            self._timers[target] = timer
            self._busy += 1
            timer.start()

    def _fire(self, target: tuple[str, str]) -> None:
        with self._lock:
            self._timers.pop(target, None)
        try:
            self._reload(dagster_url=target[0], location=target[1])
            self._failing.discard(target)
        except ReloadError as error:
            level = logging.DEBUG if target in self._failing else logging.WARNING
            self._failing.add(target)
            log.log(level, "%s (further failures are logged at debug level)", error)
        finally:
            with self._done:
                self._busy -= 1
                self._done.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no reload is pending; True when idle (for tests and shutdown)."""
        with self._done:
            return self._done.wait_for(lambda: self._busy == 0, timeout=timeout)


_reloader = Reloader()


def request_reload(settings: Settings, *, location: str | None = None) -> None:
    """Ask the webserver at ``settings.dagster_url`` to reload a location; returns at once.

    Without ``location``: the vidpipe location, or with ``VIDPIPE_DAGSTER_SHARDS`` > 1 every
    shard's location (the caller does not say which pipeline changed).
    """
    from vidpipe_dagster.compiler import location_name

    shards = settings.dagster_shards
    if location is not None:
        targets = [location]
    else:
        targets = [
            location_name(
                settings.dagster_location, shard=shard if shards > 1 else None, shards=shards
            )
            for shard in range(shards)
        ]
    for target in targets:
        _reloader.request(dagster_url=settings.dagster_url, location=target)
