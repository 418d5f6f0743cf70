"""Provider client tests: fake servers from tests/fakes plus a sleep recorder."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from vidpipe_dagster.resources.providers.base import HttpSettings, RetryPolicy


class Sleeps(list[float]):
    """Records requested sleeps instead of sleeping (sync and async)."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)

    async def asleep(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    """A sleep recorder to inject as ``sleep=`` / ``asleep=``."""
    return Sleeps()


@pytest.fixture(scope="session")
def http_client() -> Iterator[httpx.Client]:
    """One ``httpx.Client`` for the session (building one loads the CA bundle)."""
    with httpx.Client() as client:
        yield client


@pytest.fixture
def http() -> HttpSettings:
    """Short timeouts and three attempts with tiny backoff, so error tests stay fast."""
    return HttpSettings(
        timeout=0.3,
        connect_timeout=0.5,
        retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05, retry_after_cap=30),
    )
