"""What can go wrong talking to a provider, in a form a caller can act on.

:class:`PermanentError` (bad input, auth, credits: do not retry), :class:`TransientError`
(5xx, timeouts, connection errors: try again later), :class:`RateLimitedError` (429: try
again after ``retry_after``) and :class:`SubmissionOutcomeUnknown` (a paid submission was
sent but its answer was lost: never send it again blindly). ``error.retryable`` is the one
flag a retry loop needs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

LOCAL_HINT = "use config.provider 'local' (or VIDPIPE_PROVIDERS=local)"


class ProviderError(Exception):
    """A provider call failed. ``str(error)`` is a message a user can act on.

    Attributes:
        provider: the provider name (``heygen``, ``elevenlabs``, ``veo3``, ``runway``,
            ``remotion``).
        status_code: the HTTP status, when the failure was an HTTP answer.
        code: the provider's own error code (``invalid_api_key``, ``RESOURCE_EXHAUSTED``...).
        retryable: whether trying again later may succeed.
        attempts: how many attempts were made before giving up (set by the retry helpers).
    """

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status_code: int | None = None,
        code: str | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.status_code = status_code
        self.code = code
        self.body = body
        self.attempts = 1


class PermanentError(ProviderError):
    """The request cannot succeed as sent (invalid input, unknown voice, no credits)."""


class AuthError(PermanentError):
    """The provider rejected the credentials (401/403, or an invalid key)."""


class MissingApiKeyError(AuthError):
    """The provider's API key is not configured; the message names the variable to set."""

    def __init__(self, env_var: str, *, provider: str = "") -> None:
        super().__init__(f"{env_var} is not set: set it or {LOCAL_HINT}", provider=provider)
        self.env_var = env_var


class MalformedResponseError(PermanentError):
    """The provider answered with a body this client cannot understand."""


class ResultExpiredError(PermanentError):
    """A result URL was refused (403/404/410), typically because its signature expired.

    Poll the job again for a freshly signed URL.
    """


class TransientError(ProviderError):
    """A failure that may go away: 5xx, 408, timeouts, connection errors."""

    retryable = True


class RateLimitedError(TransientError):
    """The provider asked us to slow down (429). ``retry_after`` is its hint, in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class SubmissionOutcomeUnknown(ProviderError):
    """A request that creates paid work was sent, and its answer was lost.

    The provider may or may not have accepted the job (a timeout, a dropped connection or a
    5xx after the request went out), so it is never sent again blindly. ``sent_at`` is when
    it went out; ``cause`` what happened; the message names the provider, the time and what
    to check.
    """

    retryable = False

    def __init__(
        self,
        *,
        provider: str,
        what: str,
        sent_at: datetime,
        cause: str,
        check: str = "",
        status_code: int | None = None,
    ) -> None:
        self.sent_at = sent_at
        self.cause = cause
        self.what = what
        self.check = check
        self.provider = provider
        super().__init__(self.describe(), provider=provider, status_code=status_code)

    def describe(self) -> str:
        """The one-line message (recomputed when ``check`` is filled in later)."""
        where = self.check or f"the {self.provider} account's job list"
        return (
            f"{self.provider}: submission outcome unknown: {self.what} sent at "
            f"{self.sent_at:%Y-%m-%d %H:%M:%S} UTC got no answer ({self.cause}), so it was not "
            f"sent again; check {where} for that job before running the node again"
        )

    def with_check(self, check: str) -> SubmissionOutcomeUnknown:
        """This error, its message naming ``check`` as the place to look."""
        self.check = check
        self.message = self.describe()
        self.args = (self.message,)
        return self
