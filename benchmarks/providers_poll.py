"""One provider polling pass over many in-flight jobs: wall time and peak memory.

A fake HeyGen server runs in a child process (so its threads and memory do not count),
answering every status call after ``--latency`` seconds. The parent creates nothing but the
client: it polls ``--jobs`` job ids once with :func:`poll_many` (httpx over the
``httpx-aiohttp`` transport), as the polling sensor does on each tick, and prints the wall
time, the Python heap peak (tracemalloc) and the process's peak RSS growth.

    python benchmarks/providers_poll.py --jobs 1000 --latency 0.2 --concurrency 50 100 200

``--compare-httpx`` adds a row with httpx's own async transport at the same concurrency.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidpipe_dagster.resources.providers.base import apoll_many  # noqa: E402
from vidpipe_dagster.resources.providers.heygen import HeyGenClient  # noqa: E402

API_KEY = "bench-key"


def job_ids(count: int) -> list[str]:
    """Deterministic 32-hex job ids shared by the server and the client."""
    return [f"{n:032x}" for n in range(count)]


def serve(port_queue: mp.Queue, stop: mp.Event, jobs: int, latency: float) -> None:
    """Child process: a fake HeyGen with ``jobs`` in-flight jobs (every tenth completes)."""
    from tests.fakes.heygen import FakeHeyGen

    fake = FakeHeyGen(api_key=API_KEY)
    fake.latency = latency
    for n, job_id in enumerate(job_ids(jobs)):
        fake.jobs.create(job_id, outcome="succeed" if n % 10 == 0 else "never", steps=0)
    fake.start()
    port_queue.put(fake.url)
    stop.wait()
    fake.stop()


def rss_mb() -> float:
    """Peak resident set size of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one_pass(url: str, ids: list[str], concurrency: int, transport: str) -> dict[str, float]:
    """Poll every id once; return timings and memory."""
    client = HeyGenClient(api_key=API_KEY, base_url=url)
    rss_before = rss_mb()
    tracemalloc.start()
    start = time.perf_counter()
    if transport == "aiohttp":
        results = asyncio.run(apoll_many(client, ids, concurrency=concurrency))
    else:

        async def native() -> dict:
            limits = httpx.Limits(max_connections=concurrency)
            async with httpx.AsyncClient(limits=limits, timeout=30) as aclient:
                return await apoll_many(client, ids, concurrency=concurrency, client=aclient)

        results = asyncio.run(native())
    wall = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    client.close()
    states: dict[str, int] = {}
    for outcome in results.values():
        key = getattr(outcome, "state", type(outcome).__name__)
        states[key] = states.get(key, 0) + 1
    return {
        "wall": wall,
        "heap_mb": peak / 1e6,
        "rss_growth_mb": rss_mb() - rss_before,
        "rss_mb": rss_mb(),
        "states": states,
    }


def main() -> None:
    """Parse arguments, start the fake, run one pass per concurrency and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--compare-httpx", action="store_true")
    args = parser.parse_args()

    ctx = mp.get_context("spawn")
    port_queue: mp.Queue = ctx.Queue()
    stop = ctx.Event()
    server = ctx.Process(target=serve, args=(port_queue, stop, args.jobs, args.latency))
    server.start()
    try:
        url = port_queue.get(timeout=60)
        ids = job_ids(args.jobs)
        runs = [("aiohttp", c) for c in args.concurrency]
        if args.compare_httpx:
            runs += [("httpx", c) for c in args.concurrency]
        print(f"{args.jobs} jobs, {args.latency * 1000:.0f} ms fake latency, one pass each")
        print("| transport | concurrency | wall s | floor s | Python heap peak MB | RSS MB |")
        print("|---|---|---|---|---|---|")
        for transport, concurrency in runs:
            figures = one_pass(url, ids, concurrency, transport)
            floor = -(-args.jobs // concurrency) * args.latency
            print(
                f"| {transport} | {concurrency} | {figures['wall']:.2f} | {floor:.2f} | "
                f"{figures['heap_mb']:.1f} | {figures['rss_mb']:.0f} |  {figures['states']}",
                flush=True,
            )
    finally:
        stop.set()
        server.join(timeout=10)


if __name__ == "__main__":
    main()
