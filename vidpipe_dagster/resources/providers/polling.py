"""Asynchronous provider jobs: the submit/poll/fetch client base and concurrent polling.

- :class:`PollingHttpProvider`: a provider whose work is a job: ``submit(...) -> job_id``,
  :meth:`~PollingHttpProvider.poll` / :meth:`~PollingHttpProvider.apoll` -> :class:`JobStatus`,
  :meth:`~PollingHttpProvider.fetch_result` downloads the media, re-polling for a fresh URL.
- :func:`apoll_many` / :func:`poll_many` poll many jobs concurrently over one
  ``httpx.AsyncClient`` on the ``httpx-aiohttp`` transport, time-boxed for sensors.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import httpx

from vidpipe_dagster.resources.providers.errors import (
    PermanentError,
    ProviderError,
    ResultExpiredError,
    TransientError,
)
from vidpipe_dagster.resources.providers.http import HttpProvider
from vidpipe_dagster.resources.providers.responses import require_json
from vidpipe_dagster.resources.providers.status import JobStatus


class AsyncJobProvider(Protocol):
    """What :func:`apoll_many` needs: a name and an async poll on a shared client."""

    name: str

    async def apoll(self, client: httpx.AsyncClient, job_id: str) -> JobStatus:
        """Poll one job."""
        ...


PollOutcome = JobStatus | ProviderError


def make_async_client(*, concurrency: int = 100, timeout: float = 30.0) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` on the aiohttp transport, sized for ``concurrency``.

    httpx's own async pool slows down sharply beyond ~50 connections; the aiohttp transport
    keeps the httpx API and stays at the latency floor with hundreds.
    """
    from httpx_aiohttp import AiohttpTransport

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(
        transport=AiohttpTransport(limits=limits), timeout=httpx.Timeout(timeout)
    )


async def apoll_many(
    provider: AsyncJobProvider,
    job_ids: Iterable[str],
    *,
    concurrency: int = 50,
    time_budget: float | None = None,
    client: httpx.AsyncClient | None = None,
) -> dict[str, PollOutcome]:
    """Poll every job in ``job_ids`` at most ``concurrency`` at a time.

    Returns ``{job_id: JobStatus | ProviderError}``: an error is returned, not raised, so one
    bad job never hides the others. Jobs still unanswered after ``time_budget`` seconds are
    cancelled and reported as :class:`TransientError` (poll them on the next tick). ``client``
    defaults to :func:`make_async_client`, closed on return.
    """
    ids = list(dict.fromkeys(job_ids))
    results: dict[str, PollOutcome] = {}
    if not ids:
        return results
    owns = client is None
    aclient = client or make_async_client(concurrency=concurrency)
    semaphore = asyncio.Semaphore(concurrency)

    async def one(job_id: str) -> None:
        async with semaphore:
            try:
                results[job_id] = await provider.apoll(aclient, job_id)
            except ProviderError as exc:
                results[job_id] = exc

    try:
        tasks = [asyncio.create_task(one(job_id)) for job_id in ids]
        _, pending = await asyncio.wait(tasks, timeout=time_budget)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
    finally:
        if owns:
            await aclient.aclose()
    for job_id in ids:
        results.setdefault(
            job_id,
            TransientError(
                f"{provider.name}: job {job_id} not polled within the {time_budget} s budget",
                provider=provider.name,
            ),
        )
    return results


def poll_many(
    provider: AsyncJobProvider,
    job_ids: Iterable[str],
    *,
    concurrency: int = 50,
    time_budget: float | None = None,
) -> dict[str, PollOutcome]:
    """Synchronous entry point to :func:`apoll_many` for sensors (runs its own event loop)."""
    return asyncio.run(
        apoll_many(provider, job_ids, concurrency=concurrency, time_budget=time_budget)
    )


class PollingHttpProvider(HttpProvider):
    """Base for asynchronous HTTP providers: submit a job, poll it, fetch its result.

    Subclasses implement ``submit(...) -> job_id`` (sending with ``operation="submit"``),
    :meth:`status_path` and :meth:`parse_status` (a pure function of the status body);
    :meth:`poll`, :meth:`apoll` and :meth:`fetch_result` come from here. A provider that
    keeps a reference of ours on its jobs also implements ``find_submission(reference)``.
    """

    result_needs_auth: bool = False

    def status_path(self, job_id: str) -> tuple[str, dict[str, str] | None]:
        """``(path, query params)`` of the status call for ``job_id``."""
        raise NotImplementedError

    def parse_status(self, body: dict[str, Any]) -> JobStatus:
        """The :class:`JobStatus` in a status response body."""
        raise NotImplementedError

    def poll(self, job_id: str) -> JobStatus:
        """The job's current status (retrying transient failures)."""
        path, params = self.status_path(job_id)
        response = self.request("GET", path, params=params, ok=(200,))
        return self.parse_status(require_json(response, provider=self.name, what="job status"))

    async def apoll(self, client: httpx.AsyncClient, job_id: str) -> JobStatus:
        """:meth:`poll` on a shared ``httpx.AsyncClient`` (see :func:`apoll_many`)."""
        path, params = self.status_path(job_id)
        response = await self.arequest(client, "GET", path, params=params)
        return self.parse_status(require_json(response, provider=self.name, what="job status"))

    def fetch_result(self, job_id: str, dest: Path, *, refetches: int = 2) -> JobStatus:
        """Download a completed job's media to ``dest``; return the status it came from.

        Polls for a freshly signed URL first; when the URL is refused as expired, polls again
        and retries up to ``refetches`` times. :class:`PermanentError` if the job is not
        completed or has no result URL.
        """
        for attempt in range(refetches + 1):
            status = self.poll(job_id)
            if status.state != "completed" or not status.result_url:
                raise PermanentError(
                    f"{self.name}: job {job_id} has no result to fetch (state {status.state}"
                    + (f": {status.error}" if status.error else "")
                    + ")",
                    provider=self.name,
                )
            try:
                self.download(status.result_url, dest, auth=self.result_needs_auth)
                return status
            except ResultExpiredError as exc:
                exc.attempts = attempt + 1
                if attempt >= refetches:
                    raise
                self.sleep(self.http.retry.delay(attempt + 1))
        raise AssertionError("unreachable")

    def fetch_completed(
        self, job_id: str, dest: Path, *, status: JobStatus | None = None
    ) -> JobStatus:
        """Copy a completed job's media to ``dest``; return the status it was fetched from.

        ``status`` (from a poll or a webhook) is tried first; an expired or missing URL falls
        back to polling for a freshly signed one (:meth:`fetch_result`).
        """
        if status is not None and status.result_url:
            try:
                self.download(status.result_url, dest, auth=self.result_needs_auth)
                return status
            except ResultExpiredError:
                pass
        return self.fetch_result(job_id, dest)
