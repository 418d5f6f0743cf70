"""How a provider client talks HTTP: its timeouts and its retry policy per operation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from vidpipe_dagster.resources.providers.retry import Operation, RetryPolicy


@dataclass(frozen=True)
class HttpSettings:
    """How a client talks HTTP: timeouts (seconds) and the retry policy per operation.

    ``retry`` applies to reads, polls and downloads; ``submit_retry`` (default: ``retry``) to
    submissions, where only failures that cannot have reached the provider are retried.
    """

    timeout: float = 30.0
    connect_timeout: float = 10.0
    retry: RetryPolicy = RetryPolicy()
    submit_retry: RetryPolicy | None = None

    def httpx_timeout(self) -> httpx.Timeout:
        """The matching ``httpx.Timeout``."""
        return httpx.Timeout(self.timeout, connect=self.connect_timeout)

    def policy(self, operation: Operation) -> RetryPolicy:
        """The retry policy of ``operation``."""
        if operation == "submit" and self.submit_retry is not None:
            return self.submit_retry
        return self.retry


def http_settings_from(settings: Any) -> HttpSettings:
    """:class:`HttpSettings` from vidpipe's ``Settings`` (timeouts, attempts, Retry-After cap)."""
    policy = RetryPolicy(
        max_attempts=settings.provider_max_attempts,
        retry_after_cap=settings.provider_retry_after_cap_seconds,
    )
    return HttpSettings(
        timeout=settings.provider_timeout_seconds,
        connect_timeout=settings.provider_connect_timeout_seconds,
        retry=policy,
        submit_retry=policy,
    )
