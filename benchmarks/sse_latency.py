"""Live-status delivery latency: from a lifecycle write to the Server-Sent Event at the client.

uvicorn serves the app in its own process (as in production); this process opens
``--streams`` event streams on one pipeline and, as the Dagster side does from its own
process, calls ``Lifecycle.updated`` ``--writes`` times on a running node. For each write it
records when the call returned (committed) and when every stream received the event. The
baseline beside it is the write itself (the lifecycle transaction, event row included).

    python benchmarks/sse_latency.py [--writes 200] [--streams 1 10] [--db postgresql sqlite]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import psycopg

from vidpipe_dagster.db import migrate
from vidpipe_dagster.db.session import make_engine, make_sessionmaker
from vidpipe_dagster.domain.lifecycle import Lifecycle
from vidpipe_dagster.domain.nodes import create_node
from vidpipe_dagster.domain.pipelines import create_pipeline
from vidpipe_dagster.domain.tokens import create_token

ADMIN_URL = os.environ.get(
    "VIDPIPE_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BASE = "/v1/admin/video_production/pipelines"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


class Stream(threading.Thread):
    """Reads one event stream; records when each ``progress`` value arrived."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"}
        self.arrivals: dict[int, float] = {}
        self.ready = threading.Event()

    def run(self) -> None:
        try:
            self._read()
        except httpx.HTTPError:
            pass

    def _read(self) -> None:
        with (
            httpx.Client(timeout=httpx.Timeout(10.0, read=None)) as client,
            client.stream("GET", self.url, headers=self.headers) as response,
        ):
            kind = None
            for line in response.iter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind == "snapshot":
                    self.ready.set()
                elif line.startswith("data: ") and kind == "node":
                    progress = (json.loads(line[6:])["node"]["metadata"] or {}).get("progress")
                    if isinstance(progress, int):
                        self.arrivals[progress] = time.perf_counter()


def measure(url: str, *, writes: int, streams: int) -> dict[str, list[float]]:
    sessions = make_sessionmaker(make_engine(url))
    with sessions() as session, session.begin():
        token = create_token(session, name=f"bench-{uuid.uuid4().hex[:6]}", admin=True)
        pipeline = create_pipeline(session, title="Benchmark")
        node = create_node(session, pipeline, title="Voiceover", type="asset")
        pipeline_uuid, node_uuid = pipeline.uuid, node.uuid
    lifecycle = Lifecycle(sessions)
    process = lifecycle.started(node_uuid)
    port = free_port()
    env = {**os.environ, "VIDPIPE_DATABASE_URL": url, "PYTHONPATH": os.getcwd()}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "api.main:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--timeout-graceful-shutdown",
            "1",
        ],
        env=env,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        readers = [Stream(f"{base}{BASE}/{pipeline_uuid}/events", token) for _ in range(streams)]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.ready.wait(30)
        committed: dict[int, float] = {}
        write_seconds: list[float] = []
        for step in range(writes):
            started = time.perf_counter()
            lifecycle.updated(node_uuid, {"progress": step}, process)
            committed[step] = time.perf_counter()
            write_seconds.append(committed[step] - started)
            time.sleep(0.02)
        time.sleep(1.0)
        delays = [
            reader.arrivals[step] - committed[step]
            for reader in readers
            for step in range(writes)
            if step in reader.arrivals
        ]
        missing = writes * streams - len(delays)
        return {"write": write_seconds, "delivery": delays, "missing": [missing]}
    finally:
        server.terminate()
        server.wait(10)
        sessions.kw["bind"].dispose()


def postgres_url() -> tuple[str, str]:
    name = f"vidpipe_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    migrate.upgrade(url)
    return url.replace("postgresql://", "postgresql+psycopg://", 1), name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--db", nargs="+", default=["postgresql", "sqlite"])
    args = parser.parse_args()
    print(
        "| database | streams | write p50 ms | write p99 ms "
        "| delivery p50 ms | delivery p99 ms | missed |"
    )
    print("|---|---|---|---|---|---|---|")
    for db in args.db:
        for streams in args.streams:
            if db == "postgresql":
                url, name = postgres_url()
            else:
                directory = tempfile.mkdtemp(prefix="vidpipe-bench-")
                url = f"sqlite:///{Path(directory) / 'vidpipe.db'}"
                migrate.upgrade(url)
                name = None
            try:
                result = measure(url, writes=args.writes, streams=streams)
            finally:
                if name:
                    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
                        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            write, delivery = result["write"], result["delivery"]
            figures = [
                statistics.median(write),
                percentile(write, 0.99),
                statistics.median(delivery),
                percentile(delivery, 0.99),
            ]
            cells = " | ".join(f"{value * 1000:.1f}" for value in figures)
            print(f"| {db} | {streams} | {cells} | {result['missing'][0]} |", flush=True)


if __name__ == "__main__":
    main()
