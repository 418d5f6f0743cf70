"""The names every remote provider client shares, gathered for importers in one place.

The concepts live in their own modules: :mod:`.errors` (what can go wrong), :mod:`.status`
(:class:`JobStatus`), :mod:`.retry` (policies per operation), :mod:`.http` (requests and
auth), :mod:`.responses` (bodies and error mapping), :mod:`.keys` (API keys),
:mod:`.http_settings` (timeouts and retries), :mod:`.polling` (job clients and concurrent
polling), :mod:`.unit` (the provider declaration). This module only re-exports them.
"""

from vidpipe_dagster.resources.providers.errors import (
    LOCAL_HINT,
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
from vidpipe_dagster.resources.providers.http import HttpProvider
from vidpipe_dagster.resources.providers.http_settings import HttpSettings, http_settings_from
from vidpipe_dagster.resources.providers.keys import require_key, reveal
from vidpipe_dagster.resources.providers.polling import (
    AsyncJobProvider,
    PollingHttpProvider,
    PollOutcome,
    apoll_many,
    make_async_client,
    poll_many,
)
from vidpipe_dagster.resources.providers.responses import (
    dig,
    error_for_status,
    json_body,
    require_json,
    transport_error,
)
from vidpipe_dagster.resources.providers.retry import (
    RetryPolicy,
    aretry_call,
    parse_retry_after,
    retry_call,
)
from vidpipe_dagster.resources.providers.status import JobState, JobStatus

__all__ = [
    "LOCAL_HINT",
    "AsyncJobProvider",
    "AuthError",
    "HttpProvider",
    "HttpSettings",
    "JobState",
    "JobStatus",
    "MalformedResponseError",
    "MissingApiKeyError",
    "PermanentError",
    "PollOutcome",
    "PollingHttpProvider",
    "ProviderError",
    "RateLimitedError",
    "ResultExpiredError",
    "RetryPolicy",
    "SubmissionOutcomeUnknown",
    "TransientError",
    "aretry_call",
    "apoll_many",
    "dig",
    "error_for_status",
    "http_settings_from",
    "json_body",
    "make_async_client",
    "parse_retry_after",
    "poll_many",
    "require_json",
    "require_key",
    "retry_call",
    "reveal",
    "transport_error",
]
