"""API throughput and latency on loopback: uvicorn + PostgreSQL, 50 concurrent clients.

Measures ``GET /pipelines/{uuid}`` of a 50-node pipeline and ``POST .../nodes`` with a
two-reference merge-videos body. Prints requests/s and p50/p99 latency.

    python benchmarks/api.py [--requests 2000] [--concurrency 50] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid

import httpx
import psycopg

from vidpipe_dagster.db import migrate
from vidpipe_dagster.db.session import make_engine, make_sessionmaker
from vidpipe_dagster.domain.nodes import create_node
from vidpipe_dagster.domain.pipelines import create_pipeline
from vidpipe_dagster.domain.tokens import create_token

ADMIN_URL = os.environ.get(
    "VIDPIPE_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def seed(url: str) -> tuple[str, str, list[str]]:
    sessions = make_sessionmaker(make_engine(url))
    with sessions() as session, session.begin():
        token = create_token(session, name="bench", admin=True)
        pipeline = create_pipeline(session, title="Benchmark")
        nodes = [
            create_node(session, pipeline, title=f"Clip {i}", type="asset", asset={"type": "video"})
            for i in range(50)
        ]
        return token, pipeline.uuid, [n.uuid for n in nodes]


async def hammer(
    base: str, token: str, requests: int, concurrency: int, make_request
) -> list[float]:
    latencies: list[float] = []
    queue = iter(range(requests))
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base, headers=headers, limits=limits, timeout=60
    ) as client:

        async def worker() -> None:
            for i in queue:
                start = time.perf_counter()
                response = await make_request(client, i)
                latencies.append(time.perf_counter() - start)
                if response.status_code >= 400:
                    raise RuntimeError(f"{response.status_code}: {response.text}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def report(name: str, latencies: list[float], wall: float) -> None:
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    print(f"{name:<40} {len(latencies) / wall:8.1f} req/s   p50 {p50:7.1f} ms   p99 {p99:7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    name = f"vidpipe_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    server = None
    try:
        migrate.upgrade(url)
        token, pipeline, clips = seed(url)
        port = free_port()
        env = {
            **os.environ,
            "VIDPIPE_DATABASE_URL": url,
            "VIDPIPE_DAGSTER_URL": "http://127.0.0.1:9",
        }
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "api.main:app",
                "--port",
                str(port),
                "--workers",
                str(args.workers),
                "--log-level",
                "warning",
                "--no-access-log",
                "--timeout-keep-alive",
                "75",
            ],
            env=env,
        )
        base = f"http://127.0.0.1:{port}/v1/admin/video_production"
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)

        async def get_pipeline(client, _i):
            return await client.get(f"/pipelines/{pipeline}")

        async def post_node(client, i):
            body = {
                "node": {
                    "title": f"Merge {i}",
                    "type": "merge-videos",
                    "inputs": {"segments": [clips[i % 50], clips[(i + 1) % 50]]},
                }
            }
            return await client.post(f"/pipelines/{pipeline}/nodes", json=body)

        print(
            f"uvicorn workers={args.workers}, concurrency={args.concurrency}, "
            f"requests={args.requests}, PostgreSQL on loopback, {os.cpu_count()} cores"
        )
        for label, fn in (
            ("GET /pipelines/{uuid} (50 nodes)", get_pipeline),
            ("POST /pipelines/{p}/nodes (merge, 2 refs)", post_node),
        ):
            asyncio.run(hammer(base, token, 100, args.concurrency, fn))
            start = time.perf_counter()
            latencies = asyncio.run(hammer(base, token, args.requests, args.concurrency, fn))
            report(label, latencies, time.perf_counter() - start)
    finally:
        if server:
            server.terminate()
            server.wait()
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
