"""One provider-sensor tick over many in-flight jobs: wall time and peak memory.

Fake HeyGen, Veo and Runway servers run in a child process (their threads and memory do
not count), answering every call after ``--latency`` seconds. A fresh PostgreSQL database
(``VIDPIPE_BENCH_PG_ADMIN_URL``, default ``postgresql://postgres@127.0.0.1:5432/postgres``)
holds ``--jobs`` nodes in flight, spread over the three providers; ``--completing`` percent
of the jobs have finished. The parent first polls every job once with the same clients and
concurrency and nothing else (the *baseline*: what the polls alone cost on this machine, in
the same run), then runs ``provider_sensor.poll_provider_jobs`` once (poll everything,
record progress, download and store the finished media, report them) and prints the wall
time, the peak RSS growth and, with ``--heap``, the Python heap peak (tracemalloc, which
slows the tick 2-3x, so its wall time is not comparable). ``--profile`` prints the tick's top
functions by cumulative time.

    python benchmarks/sensor_tick.py --jobs 1000 --latency 0.2 --completing 10
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PROVIDERS = ("heygen", "veo3", "runway")
VEO_MODEL = "veo-3.1-generate-preview"


def job_id(provider: str, n: int) -> str:
    """The job id of job ``n`` as the provider would hand it out."""
    if provider == "veo3":
        return f"models/{VEO_MODEL}/operations/op{n:08d}"
    if provider == "runway":
        return str(uuid.UUID(int=n))
    return f"{n:032x}"


def serve(queue: mp.Queue, stop: mp.Event, jobs: int, latency: float, completing: int) -> None:
    """Child process: the three fakes with their share of the jobs."""
    from tests.fakes.heygen import FakeHeyGen
    from tests.fakes.runway import FakeRunway
    from tests.fakes.veo import FakeVeo

    fakes = {"heygen": FakeHeyGen(), "veo3": FakeVeo(), "runway": FakeRunway()}
    for n in range(jobs):
        provider = PROVIDERS[n % 3]
        outcome = "succeed" if (n // 3) % 100 < completing else "never"
        key = job_id(provider, n)
        if provider == "veo3":
            key = key.removeprefix("models/").replace("/operations/", "/")
        fakes[provider].jobs.create(key, outcome=outcome, steps=0)
    fakes["runway"].throttled_polls = 0
    for fake in fakes.values():
        fake.latency = latency
        fake.start()
    queue.put({name: (fake.url, fake.api_key) for name, fake in fakes.items()})
    stop.wait()
    for fake in fakes.values():
        fake.stop()


def make_database() -> tuple[str, str]:
    """A fresh migrated database: ``(sqlalchemy url, name)``."""
    import psycopg

    from vidpipe_dagster.db import migrate

    admin = os.environ.get(
        "VIDPIPE_BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    name = f"vidpipe_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin.rsplit("/", 1)[0] + f"/{name}"
    migrate.upgrade(url)
    return url.replace("postgresql://", "postgresql+psycopg://", 1), name


def drop_database(name: str) -> None:
    """Drop the benchmark database."""
    import psycopg

    admin = os.environ.get(
        "VIDPIPE_BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def insert_jobs(url: str, jobs: int) -> None:
    """``jobs`` talking-head / animation nodes in flight, 50 per pipeline."""
    from vidpipe_dagster.db.models import Node, Pipeline
    from vidpipe_dagster.db.session import make_engine, make_sessionmaker

    sessions = make_sessionmaker(make_engine(url))
    now = datetime.now(UTC).isoformat()
    with sessions() as session, session.begin():
        pipeline = None
        for n in range(jobs):
            if n % 50 == 0:
                pipeline = Pipeline(title=f"bench {n // 50}", config={})
                session.add(pipeline)
                session.flush()
            provider = PROVIDERS[n % 3]
            node_type = "talking-head" if provider == "heygen" else "generate-animation"
            session.add(
                Node(
                    pipeline_id=pipeline.id,
                    title=f"node {n}",
                    type=node_type,
                    config={"provider": provider},
                    status="in_progress",
                    metadata_={
                        "process_uuid": str(uuid.uuid4()),
                        "provider": provider,
                        "provider_job_id": job_id(provider, n),
                        "stage": "submitted",
                        "submitted_at": now,
                        "started_at": now,
                        "poll_attempts": 0,
                    },
                )
            )


def polls_only(vidpipe, jobs: int, concurrency: int) -> float:
    """Seconds to poll every job once over the tick's clients, without the database."""
    import asyncio

    from vidpipe_dagster.resources.providers.polling import apoll_many, make_async_client

    clients = vidpipe.provider_clients()
    ids = {p: [job_id(p, n) for n in range(jobs) if PROVIDERS[n % 3] == p] for p in PROVIDERS}

    async def everything() -> None:
        async with make_async_client(concurrency=concurrency * len(PROVIDERS)) as aclient:
            await asyncio.gather(
                *(
                    apoll_many(clients.client(p), ids[p], concurrency=concurrency, client=aclient)
                    for p in PROVIDERS
                )
            )

    begun = time.perf_counter()
    asyncio.run(everything())
    return time.perf_counter() - begun


def main() -> None:
    """Run one tick and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--completing", type=int, default=10, help="percent of jobs finished")
    parser.add_argument("--concurrency", type=int, default=50, help="polls per provider")
    parser.add_argument("--profile", action="store_true", help="profile the tick")
    parser.add_argument(
        "--heap", action="store_true", help="trace the Python heap (slows the tick 2-3x)"
    )
    args = parser.parse_args()

    ctx = mp.get_context("spawn")
    queue, stop = ctx.Queue(), ctx.Event()
    child = ctx.Process(target=serve, args=(queue, stop, args.jobs, args.latency, args.completing))
    child.start()
    servers = queue.get(timeout=120)
    url, db_name = make_database()
    try:
        insert_jobs(url, args.jobs)
        heygen, veo, runway = servers["heygen"], servers["veo3"], servers["runway"]
        env = {
            "VIDPIPE_HEYGEN_BASE_URL": heygen[0],
            "VIDPIPE_HEYGEN_API_KEY": heygen[1],
            "VIDPIPE_GEMINI_BASE_URL": f"{veo[0]}/v1beta",
            "VIDPIPE_GEMINI_API_KEY": veo[1],
            "VIDPIPE_RUNWAY_BASE_URL": runway[0],
            "VIDPIPE_RUNWAY_API_KEY": runway[1],
            "VIDPIPE_POLL_CONCURRENCY": str(args.concurrency),
        }
        os.environ.update(env)
        from vidpipe_dagster.orchestration.provider_sensor import poll_provider_jobs
        from vidpipe_dagster.resources.dagster_resources import VidpipeResource

        with tempfile.TemporaryDirectory() as storage:
            vidpipe = VidpipeResource(database_url=url, storage_url=Path(storage).as_uri())
            vidpipe.sessions()
            baseline = polls_only(vidpipe, args.jobs, args.concurrency)
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            if args.heap:
                tracemalloc.start()
            profiler = None
            if args.profile:
                import cProfile

                profiler = cProfile.Profile()
                profiler.enable()
            begun = time.perf_counter()
            tick = poll_provider_jobs(vidpipe)
            wall = time.perf_counter() - begun
            if profiler is not None:
                profiler.disable()
            heap_peak = tracemalloc.get_traced_memory()[1] if args.heap else None
            tracemalloc.stop()
            rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        counts = dict(tick.counts)
        counts.pop("seconds_x1000", None)
        print(
            f"jobs={args.jobs} latency={args.latency}s completing={args.completing}% "
            f"concurrency={args.concurrency}/provider"
        )
        floor = -(-args.jobs // (args.concurrency * len(PROVIDERS))) * args.latency
        print(
            f"baseline: the polls alone {baseline:.2f} s "
            f"(floor {floor:.2f} s = jobs / {args.concurrency * len(PROVIDERS)} connections "
            f"x {args.latency} s)"
        )
        print(
            f"tick: wall {wall:.2f} s | heap peak "
            + (f"{heap_peak / 2**20:.1f} MB" if heap_peak is not None else "not traced")
            + " | "
            f"RSS growth {rss_after - rss_before:.1f} MB (peak RSS {rss_after:.0f} MB)"
        )
        print(f"events={len(tick.asset_events)} run_requests={len(tick.run_requests)} {counts}")
        if profiler is not None:
            import pstats

            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    finally:
        stop.set()
        child.join(timeout=30)
        drop_database(db_name)


if __name__ == "__main__":
    main()
