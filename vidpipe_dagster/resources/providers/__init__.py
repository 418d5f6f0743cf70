"""AI providers: one module per provider, each declaring itself as a ``UNIT``.

Provider modules: :mod:`.elevenlabs` (synchronous TTS), :mod:`.heygen`, :mod:`.veo`,
:mod:`.runway` and :mod:`.remotion` (asynchronous jobs: ``submit`` -> job id, ``poll`` /
``apoll`` -> :class:`~.status.JobStatus`), :mod:`.local` (placeholder media with ffmpeg). Each
ends with a :class:`~.unit.ProviderUnit` that :mod:`.registry` collects; :mod:`.clients` builds
each client once per process. Shared parts: :mod:`.errors`, :mod:`.status`, :mod:`.retry`,
:mod:`.http`, :mod:`.polling`, :mod:`.prices`.
"""

from vidpipe_dagster.domain.prices import CostEstimate
from vidpipe_dagster.resources.providers.errors import (
    AuthError,
    MalformedResponseError,
    MissingApiKeyError,
    PermanentError,
    ProviderError,
    RateLimitedError,
    ResultExpiredError,
    SubmissionOutcomeUnknown,
    TransientError,
)
from vidpipe_dagster.resources.providers.polling import apoll_many, poll_many
from vidpipe_dagster.resources.providers.prices import estimate_cost
from vidpipe_dagster.resources.providers.retry import RetryPolicy
from vidpipe_dagster.resources.providers.status import JobStatus

__all__ = [
    "AuthError",
    "CostEstimate",
    "JobStatus",
    "MalformedResponseError",
    "MissingApiKeyError",
    "PermanentError",
    "ProviderError",
    "RateLimitedError",
    "ResultExpiredError",
    "RetryPolicy",
    "SubmissionOutcomeUnknown",
    "TransientError",
    "apoll_many",
    "estimate_cost",
    "poll_many",
]
