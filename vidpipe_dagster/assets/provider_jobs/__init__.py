"""Provider jobs: admitting paid work, submitting it once, and finishing it.

- :mod:`.admission`: budget and per-provider limit before paid work starts;
- :mod:`.submission`: exactly one provider job per execution (a lost answer is looked up or
  fails the node, never sent again blindly);
- :mod:`.in_flight`: the nodes waiting on a provider job;
- :mod:`.finishing`: the one path (sensor and webhooks) that stores a finished job's media
  and completes or fails the node;
- :mod:`.reporting`: reporting completions made outside a run to Dagster exactly once;
- :mod:`.step_retries`: what a retried run step may redo.
"""

from vidpipe_dagster.assets.provider_jobs.admission import (
    ProviderLimitReached,
    admit_submission,
    in_flight_count,
    provider_slot,
)
from vidpipe_dagster.assets.provider_jobs.finishing import Outcome, finish_job, store_result
from vidpipe_dagster.assets.provider_jobs.in_flight import (
    InFlightJob,
    find_job,
    in_flight_jobs,
)
from vidpipe_dagster.assets.provider_jobs.reporting import (
    Unreported,
    claim_unreported,
    unreported_completions,
)
from vidpipe_dagster.assets.provider_jobs.step_retries import (
    settled_in_run,
    transient_provider_failure,
)

__all__ = [
    "InFlightJob",
    "Outcome",
    "ProviderLimitReached",
    "Unreported",
    "admit_submission",
    "claim_unreported",
    "find_job",
    "finish_job",
    "in_flight_count",
    "in_flight_jobs",
    "provider_slot",
    "settled_in_run",
    "store_result",
    "transient_provider_failure",
    "unreported_completions",
]
