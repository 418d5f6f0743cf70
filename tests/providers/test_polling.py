"""Concurrent polling of many jobs over the aiohttp transport."""

from __future__ import annotations

import asyncio

import pytest

from tests.fakes.heygen import FakeHeyGen
from tests.fakes.runway import FakeRunway
from tests.providers.conftest import Sleeps
from vidpipe_dagster.resources.providers.base import (
    HttpSettings,
    MalformedResponseError,
    PermanentError,
    TransientError,
    apoll_many,
    make_async_client,
    poll_many,
)
from vidpipe_dagster.resources.providers.heygen import HeyGenClient
from vidpipe_dagster.resources.providers.runway import RunwayClient


def test_poll_many_over_many_jobs(fake_heygen: FakeHeyGen, http: HttpSettings, http_client) -> None:
    fake_heygen.latency = 0.02
    outcomes = {"succeed": 0, "fail": 0, "never": 1}
    ids: dict[str, str] = {}
    for n in range(300):
        outcome = ("succeed", "fail", "never")[n % 3]
        job = fake_heygen.jobs.create(outcome=outcome, steps=outcomes[outcome])
        ids[job.id] = outcome
    with HeyGenClient(
        api_key=fake_heygen.api_key, base_url=fake_heygen.url, http=http, client=http_client
    ) as client:
        results = poll_many(client, [*ids, "f" * 32], concurrency=40)

    expected_state = {"succeed": "completed", "fail": "failed", "never": "queued"}
    for job_id, outcome in ids.items():
        assert results[job_id].state == expected_state[outcome]
    assert all(results[j].result_url for j, o in ids.items() if o == "succeed")
    assert isinstance(results["f" * 32], PermanentError)
    polls = fake_heygen.requests_to("/v3/videos/")
    assert len(polls) == 301
    assert all(r.headers["x-api-key"] == fake_heygen.api_key for r in polls)


def test_apoll_many_keeps_errors_per_job(
    fake_runway: FakeRunway, http, sleeps: Sleeps, http_client
):
    jobs = [fake_runway.jobs.create(f"00000000-0000-0000-0000-{n:012d}", steps=0) for n in range(5)]
    fake_runway.malformed(times=1, path=jobs[0].id)
    fake_runway.server_error(503, times=10, path=jobs[1].id)
    fake_runway.rate_limit(retry_after=2, times=1, path=jobs[2].id)
    client = RunwayClient(
        api_key=fake_runway.api_key,
        base_url=fake_runway.url,
        http=http,
        asleep=sleeps.asleep,
        client=http_client,
    )

    async def run():
        async with make_async_client(concurrency=5) as aclient:
            return await apoll_many(client, [j.id for j in jobs], concurrency=5, client=aclient)

    results = asyncio.run(run())
    assert isinstance(results[jobs[0].id], MalformedResponseError)
    assert isinstance(results[jobs[1].id], TransientError) and results[jobs[1].id].attempts == 3
    assert results[jobs[2].id].state == "completed" and 2 in sleeps
    assert results[jobs[3].id].state == results[jobs[4].id].state == "completed"


def test_time_budget_reports_unfinished_polls_as_transient(fake_heygen: FakeHeyGen, http_client):
    fast = [fake_heygen.jobs.create(steps=0) for _ in range(3)]
    stuck = fake_heygen.jobs.create(steps=0)
    fake_heygen.hang(times=1, path=stuck.id)
    http = HttpSettings(timeout=30)
    with HeyGenClient(
        api_key=fake_heygen.api_key, base_url=fake_heygen.url, http=http, client=http_client
    ) as client:
        results = poll_many(client, [j.id for j in [*fast, stuck]], time_budget=1.0)
    assert all(results[j.id].state == "completed" for j in fast)
    assert isinstance(results[stuck.id], TransientError)
    assert "not polled within the 1.0 s budget" in str(results[stuck.id])


def test_empty_poll() -> None:
    assert poll_many(None, []) == {}  # type: ignore[arg-type]


@pytest.mark.parametrize("concurrency", [1, 7])
def test_duplicates_are_polled_once(fake_heygen: FakeHeyGen, concurrency: int, http_client):
    job = fake_heygen.jobs.create(steps=5)
    with HeyGenClient(
        api_key=fake_heygen.api_key, base_url=fake_heygen.url, client=http_client
    ) as client:
        results = poll_many(client, [job.id, job.id, job.id], concurrency=concurrency)
    assert list(results) == [job.id] and job.polls == 1
