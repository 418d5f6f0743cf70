"""Reloading the code location after pipeline rows change: debounced and non-blocking.

``request_reload(settings, pipeline_uuid=...)`` returns at once and reloads only the
location holding that pipeline (its shard). Requests for the same location within the
debounce window collapse into one ``reloadRepositoryLocation`` GraphQL call made on a
background thread, so a burst of API writes costs one reload and never delays a response.
A location reloads one at a time: requests arriving while its reload runs (a 1,000-pipeline
location takes about a minute) are answered by one more reload when it ends, since the
running one may have read the tables before their write.

``reload_and_wait`` is the same reload for a caller that needs its outcome (an execute whose
nodes the location has not compiled yet): it joins the pending or next reload of the
location, one that starts after the call, and waits for it, bounded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from vidpipe_dagster.settings import Settings

log = logging.getLogger(__name__)

DEBOUNCE_SECONDS = 1.0
RELOAD_TIMEOUT_SECONDS = 300.0
UNKNOWN_RETRY_SECONDS = 5.0

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


LOCATION_VIEW_QUERY = """
query View($location: String!, $sensor: String!) {
  workspaceLocationEntryOrError(name: $location) {
    __typename
    ... on WorkspaceLocationEntry { loadStatus }
  }
  sensorOrError(sensorSelector: {
    repositoryLocationName: $location, repositoryName: "__repository__", sensorName: $sensor
  }) {
    __typename
    ... on Sensor { metadataEntries { label ... on TextMetadataEntry { text } } }
  }
}
"""


class ReloadError(RuntimeError):
    """The webserver could not be reached or refused to reload the location."""


def _graphql(dagster_url: str, query: str, variables: dict, *, timeout: float, doing: str) -> dict:
    """The JSON body of one GraphQL request; ``ReloadError`` naming ``doing`` when it fails."""
    url = dagster_url.rstrip("/") + "/graphql"
    try:
        response = httpx.post(
            url,
            json={"query": query, "variables": variables},
            timeout=httpx.Timeout(timeout, connect=3.0),
        )
        response.raise_for_status()
        body = response.json()
    except (httpx.HTTPError, ValueError) as error:
        raise ReloadError(f"Cannot {doing} at {url}: {error}") from error
    if not isinstance(body, dict):
        raise ReloadError(f"Cannot {doing} at {url}: the answer is not a JSON object")
    return body


def reload_location(
    *, dagster_url: str, location: str, timeout: float = RELOAD_TIMEOUT_SECONDS
) -> None:
    """Reload ``location`` on the webserver at ``dagster_url`` and wait for the result."""
    body = _graphql(
        dagster_url,
        RELOAD_MUTATION,
        {"location": location},
        timeout=timeout,
        doing=f"reload Dagster location {location!r}",
    )
    result = (body.get("data") or {}).get("reloadRepositoryLocation") or {}
    if result.get("__typename") != "WorkspaceLocationEntry":
        detail = result.get("message") or body.get("errors") or result
        raise ReloadError(f"Dagster did not reload location {location!r}: {detail}")
    loaded = result.get("locationOrLoadError") or {}
    if loaded.get("__typename") == "PythonError":
        raise ReloadError(f"Location {location!r} failed to load: {loaded.get('message')}")


@dataclass(frozen=True)
class LocationView:
    """What the webserver holds of a location: loading now, and the sensor's metadata."""

    loading: bool
    metadata: dict[str, str]


def location_view(
    *, dagster_url: str, location: str, sensor: str, timeout: float = 10.0
) -> LocationView:
    """Ask the webserver whether ``location`` is loading and for ``sensor``'s text metadata."""
    body = _graphql(
        dagster_url,
        LOCATION_VIEW_QUERY,
        {"location": location, "sensor": sensor},
        timeout=timeout,
        doing=f"ask Dagster about location {location!r}",
    )
    data = body.get("data")
    if not isinstance(data, dict):
        raise ReloadError(f"Dagster answered no data about {location!r}: {body.get('errors')}")
    entry = data.get("workspaceLocationEntryOrError") or {}
    found = data.get("sensorOrError") or {}
    metadata = {
        item["label"]: item["text"]
        for item in found.get("metadataEntries") or []
        if isinstance(item, dict) and "text" in item
    }
    return LocationView(loading=entry.get("loadStatus") == "LOADING", metadata=metadata)


@dataclass
class _Target:
    timer: threading.Timer | None = None
    running: bool = False
    again: bool = False
    started: int = 0
    finished: int = 0
    error: ReloadError | None = None
    seconds: float = 0.0
    hold_until: float = 0.0


class ReloadPending(ReloadError):
    """The reload a caller waits for did not finish within its bound."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Reloader:
    """Debounces reload requests per location and runs them on a background thread.

    At most one reload of a location runs at a time; requests made while it runs are
    answered by a single further reload once it ends.
    """

    def __init__(
        self,
        *,
        debounce_seconds: float = DEBOUNCE_SECONDS,
        reload: Callable[..., None] = reload_location,
    ) -> None:
        self.debounce_seconds = debounce_seconds
        self._reload = reload
        self._lock = threading.Lock()
        self._targets: dict[tuple[str, str], _Target] = {}
        self._done = threading.Condition(self._lock)
        self._busy = 0
        self._failing: set[tuple[str, str]] = set()

    def request(self, *, dagster_url: str, location: str, urgent: bool = False) -> int:
        """Schedule a reload of ``location``; a pending one for it absorbs this request.

        ``urgent`` (a caller waiting for the outcome) ends a :meth:`hold`. Returns the
        ticket of the reload that answers it, for :meth:`wait`.
        """
        target = (dagster_url, location)
        with self._lock:
            state = self._targets.setdefault(target, _Target())
            if urgent and state.hold_until:
                state.hold_until = 0.0
                if state.timer is not None and not state.running:
                    state.timer.cancel()
                    state.timer = None
                    self._busy -= 1
            if state.running:
                state.again = True
            elif state.timer is None:
                self._arm(target, state)
            return state.started + 1

    def wait(self, *, dagster_url: str, location: str, ticket: int, timeout: float) -> None:
        """Wait for the reload ``ticket`` names (or a later one) and raise what it raised.

        ``ReloadPending`` when it has not finished within ``timeout`` seconds; its
        ``retry_after`` is what the location's last reload took, less the time waited
        (``UNKNOWN_RETRY_SECONDS`` before any reload of it finished).
        """
        begun = time.monotonic()
        with self._done:
            state = self._targets[(dagster_url, location)]
            if not self._done.wait_for(lambda: state.finished >= ticket, timeout=timeout):
                waited = time.monotonic() - begun
                estimate = state.seconds - waited if state.seconds else UNKNOWN_RETRY_SECONDS
                raise ReloadPending(
                    f"Dagster location {location!r} is still reloading after {waited:.0f} s",
                    retry_after=max(1.0, estimate),
                )
            if state.error is not None:
                raise state.error

    def hold(self, *, dagster_url: str, location: str, seconds: float) -> None:
        """Keep a reload of ``location`` that has not begun from beginning for ``seconds``.

        A run just launched on the location's current definitions starts its worker
        through the location's code server; a reload begun meanwhile would make that start
        wait for the new server. An urgent request ends the hold.
        """
        with self._lock:
            state = self._targets.setdefault((dagster_url, location), _Target())
            state.hold_until = max(state.hold_until, time.monotonic() + seconds)

    def _arm(self, target: tuple[str, str], state: _Target, *, delay: float | None = None) -> None:
        # called with the lock held
        wait = self.debounce_seconds if delay is None else delay
        state.timer = threading.Timer(wait, self._fire, args=(target,))
        state.timer.daemon = True
        self._busy += 1
        state.timer.start()

    def _fire(self, target: tuple[str, str]) -> None:
        with self._lock:
            state = self._targets[target]
            held = state.hold_until - time.monotonic()
            if held > 0:
                self._busy -= 1
                self._arm(target, state, delay=held)
                return
            state.timer = None
            state.running = True
            state.started += 1
            ticket = state.started
        begun = time.monotonic()
        error: ReloadError | None = None
        try:
            self._reload(dagster_url=target[0], location=target[1])
            self._failing.discard(target)
        except ReloadError as failure:
            error = failure
            level = logging.DEBUG if target in self._failing else logging.WARNING
            self._failing.add(target)
            log.log(level, "%s (further failures are logged at debug level)", failure)
        finally:
            with self._done:
                state.finished = ticket
                state.error = error
                state.seconds = time.monotonic() - begun
                state.running = False
                self._busy -= 1
                if state.again:
                    state.again = False
                    self._arm(target, state)
                self._done.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no reload is pending; True when idle (for tests and shutdown)."""
        with self._done:
            return self._done.wait_for(lambda: self._busy == 0, timeout=timeout)


_reloader = Reloader()


def reload_and_wait(*, dagster_url: str, location: str, timeout: float) -> None:
    """Reload ``location`` (joining a reload requested but not yet started) and wait for it.

    Raises ``ReloadError`` when the reload failed, ``ReloadPending`` when it did not finish
    within ``timeout`` seconds (it goes on in the background).
    """
    ticket = _reloader.request(dagster_url=dagster_url, location=location, urgent=True)
    _reloader.wait(dagster_url=dagster_url, location=location, ticket=ticket, timeout=timeout)


def hold_reload(settings: Settings, *, pipeline_uuid: str, seconds: float) -> None:
    """Hold a pending reload of the location holding ``pipeline_uuid`` for ``seconds``
    (:meth:`Reloader.hold`): a run was just launched there."""
    from vidpipe_dagster.domain.naming import pipeline_location

    location = pipeline_location(
        settings.dagster_location, pipeline_uuid, shards=settings.dagster_shards
    )
    _reloader.hold(dagster_url=settings.dagster_url, location=location, seconds=seconds)


def request_reload(
    settings: Settings, *, location: str | None = None, pipeline_uuid: str | None = None
) -> None:
    """Ask the webserver at ``settings.dagster_url`` to reload a location; returns at once.

    ``location`` names it; else ``pipeline_uuid`` picks the location holding that pipeline
    (its shard with ``VIDPIPE_DAGSTER_SHARDS`` > 1); with neither, every location reloads.
    """
    from vidpipe_dagster.domain.naming import location_name, pipeline_location

    shards = settings.dagster_shards
    if location is not None:
        targets = [location]
    elif pipeline_uuid is not None:
        targets = [pipeline_location(settings.dagster_location, pipeline_uuid, shards=shards)]
    else:
        targets = [
            location_name(
                settings.dagster_location, shard=shard if shards > 1 else None, shards=shards
            )
            for shard in range(shards)
        ]
    for target in targets:
        _reloader.request(dagster_url=settings.dagster_url, location=target)
