"""API throughput and latency on loopback: uvicorn + PostgreSQL, 50 concurrent connections.

Measures ``GET /pipelines/{uuid}`` of a 50-node pipeline and ``POST .../nodes`` with a
two-reference merge-videos body, and in the same run two baselines serving the GET's exact
body (``benchmarks/api_baselines.py``): FastAPI returning pre-encoded bytes (the floor) and
FastAPI returning it as a plain dict. Prints requests/s, p50/p99 latency and the ratios.

The load comes from ``wrk`` (Debian's package) when it is installed, else from an asyncio
httpx client, which on a small machine takes much of the CPU itself.

    python benchmarks/api.py [--seconds 10] [--concurrency 50] [--workers 1] [--client httpx]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
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


def report(name: str, latencies: list[float], wall: float) -> tuple[float, float, float]:
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    return len(latencies) / wall, p50, p99


WRK_POST = """
counter = 0
request = function()
  counter = counter + 1
  local body = string.format(
    '{"node":{"title":"Merge %d","type":"merge-videos","inputs":{"segments":["%s","%s"]}}}',
    counter, "{a}", "{b}")
  return wrk.format("POST", "{path}", {["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer {token}"}, body)
end
"""
WRK_GET = """
request = function()
  return wrk.format("GET", "{path}", {["Authorization"] = "Bearer {token}"})
end
"""


def _seconds(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    assert match, value
    number, unit = float(match.group(1)), match.group(2)
    return number * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def run_wrk(url: str, script: str, *, seconds: int, concurrency: int) -> tuple[float, float, float]:
    """``(requests/s, p50 ms, p99 ms)`` of wrk driving ``script`` against ``url``."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script)
    threads = min(concurrency, max(1, (os.cpu_count() or 2) // 2))
    output = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{seconds}s", "--latency", "-s", lua.name]
        + [url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(lua.name)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        raise RuntimeError(f"{errors.group(1)} failed requests:\n{output}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p50 = _seconds(re.search(r"\s50%\s+(\S+)", output).group(1)) * 1000
    p99 = _seconds(re.search(r"\s99%\s+(\S+)", output).group(1)) * 1000
    return rps, p50, p99


def start(app: str, *, env: dict[str, str], workers: int) -> tuple[subprocess.Popen, int]:
    """uvicorn serving ``app`` on a free port, once it answers."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", app, "--port", str(port), "--workers", str(workers)]
        + ["--log-level", "warning", "--no-access-log", "--timeout-keep-alive", "75"],
        env=env,
    )
    for _ in range(200):
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return server, port
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{app} did not start")


def measure(args, base: str, token: str, path: str, *, post: tuple[str, str] | None = None):
    """One row of figures, after a warm-up, with the client the arguments chose."""
    if args.client == "wrk":
        template = WRK_POST if post else WRK_GET
        a, b = post or ("", "")
        script = (
            template.replace("{path}", path)
            .replace("{token}", token)
            .replace("{a}", a)
            .replace("{b}", b)
        )
        run_wrk(base, script, seconds=2, concurrency=args.concurrency)
        return run_wrk(base, script, seconds=args.seconds, concurrency=args.concurrency)

    async def call(client, i):
        if post is None:
            return await client.get(path)
        body = {
            "node": {
                "title": f"Merge {i}",
                "type": "merge-videos",
                "inputs": {"segments": list(post)},
            }
        }
        return await client.post(path, json=body)

    asyncio.run(hammer(base, token, 100, args.concurrency, call))
    began = time.perf_counter()
    latencies = asyncio.run(hammer(base, token, args.requests, args.concurrency, call))
    return report(path, latencies, time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10, help="per figure, with wrk")
    parser.add_argument("--requests", type=int, default=2000, help="per figure, with httpx")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--app", default="api.main:app", help="the app measured (module:name)")
    parser.add_argument(
        "--client", choices=("wrk", "httpx"), default="wrk" if shutil.which("wrk") else "httpx"
    )
    args = parser.parse_args()

    name = f"vidpipe_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    servers: list[subprocess.Popen] = []
    body_file = tempfile.NamedTemporaryFile(suffix=".json", delete=False)
    try:
        migrate.upgrade(url)
        token, pipeline, clips = seed(url)
        env = {
            **os.environ,
            "VIDPIPE_DATABASE_URL": url,
            "VIDPIPE_DAGSTER_URL": "http://127.0.0.1:9",
            "VIDPIPE_BENCH_BODY": body_file.name,
        }
        prefix = "/v1/admin/video_production"
        server, port = start(args.app, env=env, workers=args.workers)
        servers.append(server)
        base = f"http://127.0.0.1:{port}"
        answer = httpx.get(
            f"{base}{prefix}/pipelines/{pipeline}", headers={"Authorization": f"Bearer {token}"}
        )
        body_file.write(answer.content)
        body_file.close()
        baselines = {}
        for label, app in (("floor", "floor"), ("dict", "plain_dict")):
            baseline, baseline_port = start(
                f"benchmarks.api_baselines:{app}", env=env, workers=args.workers
            )
            servers.append(baseline)
            baselines[label] = f"http://127.0.0.1:{baseline_port}"

        print(
            f"client={args.client}, uvicorn workers={args.workers}, "
            f"connections={args.concurrency}, PostgreSQL on loopback, {os.cpu_count()} cores, "
            f"GET body {len(answer.content):,} bytes"
        )
        get_path = f"{prefix}/pipelines/{pipeline}"
        rows = {
            "FastAPI, pre-encoded bytes (floor)": measure(
                args, baselines["floor"], token, get_path
            ),
            "FastAPI, plain dict": measure(args, baselines["dict"], token, get_path),
            "GET /pipelines/{uuid} (50 nodes)": measure(args, base, token, get_path),
            "POST /pipelines/{p}/nodes (merge, 2 refs)": measure(
                args, base, token, f"{prefix}/pipelines/{pipeline}/nodes", post=(clips[0], clips[1])
            ),
        }
        floor = rows["FastAPI, pre-encoded bytes (floor)"][0]
        plain = rows["FastAPI, plain dict"][0]
        for label, (rps, p50, p99) in rows.items():
            print(
                f"{label:<44} {rps:8.1f} req/s   p50 {p50:7.1f} ms   p99 {p99:7.1f} ms"
                f"   {rps / floor:6.1%} of floor   {rps / plain:6.2f}x dict"
            )
    finally:
        for server in servers:
            server.terminate()
            server.wait()
        os.unlink(body_file.name)
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
