"""Reading a provider's HTTP answers: JSON bodies, and the errors a status or a transport
failure maps to (:mod:`.errors`).

A failed submission maps differently from a failed read: a transport failure after the
request left this process means its outcome is unknown
(:class:`~.errors.SubmissionOutcomeUnknown`), never that it may be sent again.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import httpx

from vidpipe_dagster.resources.providers.errors import (
    AuthError,
    MalformedResponseError,
    PermanentError,
    ProviderError,
    RateLimitedError,
    SubmissionOutcomeUnknown,
    TransientError,
)
from vidpipe_dagster.resources.providers.retry import parse_retry_after

NOT_SENT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
"""Transport failures that happen before a request leaves this process."""


def json_body(response: httpx.Response) -> Any:
    """The response's JSON, or ``None`` when it is not JSON."""
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        return None


def require_json(response: httpx.Response, *, provider: str, what: str) -> dict[str, Any]:
    """The response's JSON object, or :class:`MalformedResponseError` saying what was expected."""
    body = json_body(response)
    if not isinstance(body, dict):
        snippet = response.text[:200] if response.content else "<empty>"
        raise MalformedResponseError(
            f"{provider}: expected a JSON object from {what} "
            f"(HTTP {response.status_code}), got: {snippet!r}",
            provider=provider,
            status_code=response.status_code,
        )
    return body


def dig(body: Any, *path: str | int) -> Any:
    """``body[path[0]][path[1]]...`` or ``None`` when any step is missing."""
    for step in path:
        if isinstance(step, int):
            if not isinstance(body, list) or len(body) <= step:
                return None
        elif not isinstance(body, dict) or step not in body:
            return None
        body = body[step]
    return body


def error_for_status(
    response: httpx.Response,
    *,
    provider: str,
    code: str | None,
    message: str,
) -> ProviderError:
    """The :class:`ProviderError` subclass an HTTP error status maps to.

    401/403 -> :class:`AuthError`; 429 -> :class:`RateLimitedError` (with ``Retry-After``);
    408 and 5xx -> :class:`TransientError`; any other status -> :class:`PermanentError`.
    """
    status = response.status_code
    text = f"{provider}: HTTP {status}" + (f" {code}" if code else "") + f": {message}"
    kwargs: dict[str, Any] = {
        "provider": provider,
        "status_code": status,
        "code": code,
        "body": json_body(response),
    }
    if status == 429:
        return RateLimitedError(text, retry_after=parse_retry_after(response.headers), **kwargs)
    if status == 408 or status >= 500:
        return TransientError(text, **kwargs)
    if status in (401, 403):
        return AuthError(text, **kwargs)
    return PermanentError(text, **kwargs)


def transport_error(exc: httpx.TransportError, *, provider: str, what: str) -> TransientError:
    """A :class:`TransientError` for a timeout or a connection failure."""
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "connection failed"
    detail = str(exc) or type(exc).__name__
    return TransientError(f"{provider}: {what} {kind}: {detail}", provider=provider)


def submission_transport_error(
    exc: httpx.TransportError, *, provider: str, what: str, sent_at: datetime
) -> ProviderError:
    """What a transport failure of a submission means: retryable before it was sent, else
    :class:`SubmissionOutcomeUnknown`."""
    if isinstance(exc, NOT_SENT_ERRORS):
        return transport_error(exc, provider=provider, what=what)
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "connection lost"
    return SubmissionOutcomeUnknown(
        provider=provider, what=what, sent_at=sent_at, cause=f"{kind}: {str(exc) or 'no detail'}"
    )
