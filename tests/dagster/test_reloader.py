"""The reloader: debounced, never blocking, one reload of a location at a time."""

from __future__ import annotations

import threading
import time

import pytest

from vidpipe_dagster.runs.reload import Reloader, ReloadError, ReloadPending

URL = "http://dagster.invalid"


class SlowReload:
    """A reload that takes until released, recording each start and the overlap."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.release = threading.Event()
        self.running = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def __call__(self, *, dagster_url: str, location: str) -> None:
        with self._lock:
            self.started.append(location)
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            assert self.release.wait(timeout=30)
        finally:
            with self._lock:
                self.running -= 1


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_requests_during_a_running_reload_are_answered_by_one_more() -> None:
    slow = SlowReload()
    reloader = Reloader(debounce_seconds=0.05, reload=slow)
    began = time.monotonic()
    reloader.request(dagster_url="http://d", location="vidpipe")
    assert time.monotonic() - began < 0.05  # the caller never waits for the reload
    wait_for(lambda: slow.started == ["vidpipe"])

    for _ in range(5):  # writes landing while the first reload reads the tables
        reloader.request(dagster_url="http://d", location="vidpipe")
    time.sleep(0.2)
    assert slow.started == ["vidpipe"]  # no second reload beside the running one

    slow.release.set()
    assert reloader.wait_idle(timeout=10)
    assert slow.started == ["vidpipe", "vidpipe"]
    assert slow.most_at_once == 1


def test_locations_reload_independently() -> None:
    slow = SlowReload()
    reloader = Reloader(debounce_seconds=0.01, reload=slow)
    reloader.request(dagster_url="http://d", location="vidpipe_0")
    reloader.request(dagster_url="http://d", location="vidpipe_1")
    wait_for(lambda: sorted(slow.started) == ["vidpipe_0", "vidpipe_1"])
    assert slow.most_at_once == 2
    slow.release.set()
    assert reloader.wait_idle(timeout=10)
    assert len(slow.started) == 2


def test_a_burst_before_the_debounce_costs_one_reload_and_failures_do_not_stick() -> None:
    calls: list[str] = []

    def failing_once(*, dagster_url: str, location: str) -> None:
        calls.append(location)
        if len(calls) == 1:
            raise ReloadError("webserver down")

    reloader = Reloader(debounce_seconds=0.2, reload=failing_once)
    for _ in range(10):
        reloader.request(dagster_url="http://d", location="vidpipe")
    assert reloader.wait_idle(timeout=10)
    assert calls == ["vidpipe"]
    reloader.request(dagster_url="http://d", location="vidpipe")
    assert reloader.wait_idle(timeout=10)
    assert calls == ["vidpipe", "vidpipe"]


def test_asking_an_unreachable_webserver_is_a_reload_error() -> None:
    from vidpipe_dagster.runs.reload import location_view, reload_location

    with pytest.raises(ReloadError, match="ask Dagster about location 'vidpipe'"):
        location_view(dagster_url="http://127.0.0.1:9", location="vidpipe", sensor="s", timeout=2)
    with pytest.raises(ReloadError, match="reload Dagster location 'vidpipe'"):
        reload_location(dagster_url="http://127.0.0.1:9", location="vidpipe", timeout=2)


def test_a_waiter_joins_the_pending_reload_or_the_one_after_a_running_one() -> None:
    slow = SlowReload()
    reloader = Reloader(debounce_seconds=1.0, reload=slow)
    target = {"dagster_url": "http://d", "location": "vidpipe"}
    first = reloader.request(**target)
    assert reloader.request(**target) == first  # joins the reload not yet started
    wait_for(lambda: slow.started == ["vidpipe"])
    after = reloader.request(**target)  # the running reload may predate this write
    assert after == first + 1
    with pytest.raises(ReloadPending) as pending:
        reloader.wait(**target, ticket=first, timeout=0.1)
    assert pending.value.retry_after >= 1

    done = threading.Event()

    def waiter() -> None:
        reloader.wait(**target, ticket=after, timeout=10)
        done.set()

    threading.Thread(target=waiter, daemon=True).start()
    slow.release.set()
    reloader.wait(**target, ticket=first, timeout=10)
    assert done.wait(timeout=10) and slow.started == ["vidpipe", "vidpipe"]


def test_a_waiter_gets_the_reload_s_error() -> None:
    def broken(*, dagster_url: str, location: str) -> None:
        raise ReloadError(f"Location {location!r} failed to load: boom")

    reloader = Reloader(debounce_seconds=0.01, reload=broken)
    ticket = reloader.request(dagster_url="http://d", location="vidpipe")
    with pytest.raises(ReloadError, match="boom"):
        reloader.wait(dagster_url="http://d", location="vidpipe", ticket=ticket, timeout=10)


def test_a_hold_delays_a_pending_reload_and_an_urgent_request_ends_it() -> None:
    """A launch holds the edit's reload back until its run worker is up; an execute that
    needs the reload (an urgent request) gets it after the debounce, not the hold."""
    fired: list[float] = []
    reloader = Reloader(debounce_seconds=0.05, reload=lambda **_: fired.append(time.monotonic()))
    begun = time.monotonic()
    reloader.request(dagster_url=URL, location="vidpipe")
    reloader.hold(dagster_url=URL, location="vidpipe", seconds=0.6)
    assert reloader.wait_idle(timeout=5)
    assert len(fired) == 1 and fired[0] - begun >= 0.6

    reloader.request(dagster_url=URL, location="vidpipe")
    reloader.hold(dagster_url=URL, location="vidpipe", seconds=30)
    time.sleep(0.2)
    assert len(fired) == 1
    asked = time.monotonic()
    ticket = reloader.request(dagster_url=URL, location="vidpipe", urgent=True)
    reloader.wait(dagster_url=URL, location="vidpipe", ticket=ticket, timeout=5)
    assert len(fired) == 2 and fired[1] - asked < 2
    assert reloader.wait_idle(timeout=5)
