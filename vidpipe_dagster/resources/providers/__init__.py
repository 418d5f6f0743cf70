"""AI providers: one module per provider; ``local`` renders placeholder media with ffmpeg.

Remote clients: :mod:`.elevenlabs` (synchronous TTS), :mod:`.heygen`, :mod:`.veo`,
:mod:`.runway` and :mod:`.remotion` (asynchronous jobs: ``submit`` -> job id, ``poll`` /
``apoll`` -> :class:`~.base.JobStatus`). Shared errors, retries and concurrent polling live in
:mod:`.base`; prices and estimates in :mod:`.prices`.
"""

from vidpipe_dagster.resources.providers.base import (
    AuthError,
    JobStatus,
    MalformedResponseError,
    MissingApiKeyError,
    PermanentError,
    ProviderError,
    RateLimitedError,
    ResultExpiredError,
    RetryPolicy,
    TransientError,
    apoll_many,
    poll_many,
)
from vidpipe_dagster.resources.providers.prices import CostEstimate, estimate_cost

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
    "TransientError",
    "apoll_many",
    "estimate_cost",
    "poll_many",
]
