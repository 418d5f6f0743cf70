"""Retries decided per operation: capped exponential backoff honouring ``Retry-After``.

:class:`RetryPolicy` says how often and how long to wait; :func:`retry_call` /
:func:`aretry_call` apply it to any call raising :class:`~.errors.ProviderError`, retrying
only errors whose ``retryable`` is true. Which errors are retryable is the operation's
business: a read or a poll turns every timeout into a retryable
:class:`~.errors.TransientError`; a submission of paid work turns a timeout after the request
went out into :class:`~.errors.SubmissionOutcomeUnknown`, which is never retried
(:mod:`.http`). :class:`OperationRetries` holds one policy per operation.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeVar

from vidpipe_dagster.resources.providers.errors import ProviderError

T = TypeVar("T")

Operation = Literal["read", "submit", "download"]


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with jitter.

    The delay before attempt ``n + 1`` is ``min(max_delay, base_delay * 2 ** (n - 1))`` plus
    up to ``jitter`` of itself, unless the provider sent ``Retry-After``, which wins (capped
    at ``retry_after_cap``).
    """

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 20.0
    retry_after_cap: float = 60.0
    jitter: float = 0.5

    def delay(self, attempt: int, *, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if retry_after is not None:
            return max(0.0, min(retry_after, self.retry_after_cap))
        backoff = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return backoff + random.uniform(0, backoff * self.jitter)


def retry_call(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``fn`` until it succeeds, retrying :class:`ProviderError` with ``retryable``.

    Non-retryable errors propagate at once; the last retryable one propagates once
    ``policy.max_attempts`` is used up. ``error.attempts`` tells how many calls were made.
    """
    attempt = 1
    while True:
        try:
            return fn()
        except ProviderError as exc:
            exc.attempts = attempt
            if not exc.retryable or attempt >= policy.max_attempts:
                raise
            sleep(policy.delay(attempt, retry_after=getattr(exc, "retry_after", None)))
            attempt += 1


async def aretry_call(
    fn: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """The async twin of :func:`retry_call`."""
    attempt = 1
    while True:
        try:
            return await fn()
        except ProviderError as exc:
            exc.attempts = attempt
            if not exc.retryable or attempt >= policy.max_attempts:
                raise
            await sleep(policy.delay(attempt, retry_after=getattr(exc, "retry_after", None)))
            attempt += 1


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
