"""Which remote provider runs how: client construction, limits, waits and result fetching.

One place maps a provider name (``config.provider``) to its client and its operating
settings, so the executors, the polling sensor and the webhooks agree:

- :data:`ASYNC_PROVIDERS`: providers whose jobs are submitted in a run and finished later;
- :func:`job_client`: the client that polls and fetches a provider's jobs, built from the
  settings (:class:`~.base.MissingApiKeyError` when its key is not set);
- :func:`fetch_job_result`: copy a completed job's media to a local file, re-polling for a
  fresh URL when the one at hand has expired;
- :func:`max_wait_seconds` and :func:`jobs_limit`: how long a job may run and how many may
  be in flight at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vidpipe_dagster.resources.providers.base import (
    JobStatus,
    PollingHttpProvider,
    ResultExpiredError,
)
from vidpipe_dagster.resources.providers.heygen import HeyGenClient
from vidpipe_dagster.resources.providers.remotion import RemotionClient
from vidpipe_dagster.resources.providers.runway import RunwayClient
from vidpipe_dagster.resources.providers.veo import VeoClient

ASYNC_PROVIDERS: frozenset[str] = frozenset({"heygen", "veo3", "runway", "remotion"})
PAID_PROVIDERS: frozenset[str] = ASYNC_PROVIDERS | {"elevenlabs"}

DEFAULT_JOB_LIMITS: dict[str, int] = {
    "heygen": 10,
    "veo3": 10,
    "runway": 5,
    "remotion": 20,
    "elevenlabs": 5,
}
"""Concurrent jobs per provider unless ``VIDPIPE_PROVIDER_LIMITS`` says otherwise (HeyGen v3
pay-as-you-go and Veo allow 10, Runway tier 4 allows 10 and tier 2 allows 3, ElevenLabs
Creator allows 5 concurrent requests)."""

MAX_WAIT_SETTINGS: dict[str, str] = {
    "heygen": "heygen_max_wait_seconds",
    "veo3": "veo_max_wait_seconds",
    "runway": "runway_max_wait_seconds",
    "remotion": "remotion_max_wait_seconds",
}

MEDIA_EXTENSIONS: dict[str, str] = {
    "heygen": "mp4",
    "veo3": "mp4",
    "runway": "mp4",
    "remotion": "mp4",
}

JobClient = PollingHttpProvider | RemotionClient


def job_client(provider: str, settings: Any) -> JobClient:
    """The client for ``provider``'s jobs; the caller closes it (``close`` when present)."""
    if provider == "heygen":
        return HeyGenClient.from_settings(settings)
    if provider == "veo3":
        return VeoClient.from_settings(settings)
    if provider == "runway":
        return RunwayClient.from_settings(settings)
    if provider == "remotion":
        return RemotionClient.from_settings(settings)
    raise ValueError(f"{provider!r} is not an asynchronous provider")


def close_client(client: Any) -> None:
    """Close a client built by :func:`job_client` (Remotion's boto3 clients need nothing)."""
    close = getattr(client, "close", None)
    if callable(close):
        close()


def max_wait_seconds(provider: str, settings: Any) -> float:
    """How long a job of ``provider`` may stay unfinished before it is failed."""
    name = MAX_WAIT_SETTINGS.get(provider)
    return float(getattr(settings, name)) if name else 900.0


def jobs_limit(provider: str, settings: Any) -> int:
    """How many jobs of ``provider`` may be in flight at once."""
    configured = (getattr(settings, "provider_limits", None) or {}).get(provider)
    if isinstance(configured, int) and configured > 0:
        return configured
    return DEFAULT_JOB_LIMITS.get(provider, 5)


def fetch_job_result(
    client: JobClient, job_id: str, dest: Path, *, status: JobStatus | None = None
) -> JobStatus:
    """Copy a completed job's media to ``dest``; return the status it was fetched from.

    ``status`` (from a poll or a webhook) is tried first; an expired or missing URL falls
    back to polling the provider for a freshly signed one.
    """
    if isinstance(client, RemotionClient):
        if status is None or status.state != "completed":
            status = client.poll(job_id)
        client.download_output(job_id, dest, status=status)
        return status
    if status is not None and status.result_url:
        try:
            client.download(status.result_url, dest, auth=client.result_needs_auth)
            return status
        except ResultExpiredError:
            pass
    return client.fetch_result(job_id, dest)
