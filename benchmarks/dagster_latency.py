"""Dagster latency on a real ``dagster dev``: loading a large location, and an edit showing up.

Usage::

    python benchmarks/dagster_latency.py --pipelines 10 1000
    python benchmarks/dagster_latency.py --pipelines 1000 --shards 10

For each size: a fresh PostgreSQL database (``VIDPIPE_TEST_PG_ADMIN_URL``, default the local
server) filled with pipelines of 20 nodes (``benchmarks/definitions.py``'s shape), a fresh
DAGSTER_HOME (telemetry off), then ``dagster dev`` is started and timed:

- *loaded*: process start -> every code location reports ``LOADED`` over GraphQL;
- *graph*: process start -> the asset graph query (``assetNodes`` keys) answers with every node;
- *graph query*: how long that one query takes once loaded;
- *edit*: one node added through the API (``api.main.create_app`` in this process, default
  change notification: debounced reload of the pipeline's location) -> GraphQL knows the new
  asset. Measured three times.

With ``--shards K`` each shard is its own ``dagster code-server start`` (with
``VIDPIPE_DAGSTER_SHARD``) behind a ``grpc_server`` workspace entry, started together with
``dagster dev``; timings count from the first process start.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.definitions import synthetic_snapshot  # noqa: E402

ADMIN_URL = os.environ.get(
    "VIDPIPE_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
LOCATIONS = """
{ workspaceOrError { ... on Workspace { locationEntries {
    name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""
ASSET_KEYS = "{ assetNodes { assetKey { path } } }"
ONE_ASSET = """
query One($path: [String!]!) {
  assetNodeOrError(assetKey: {path: $path}) { __typename }
}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def gql(url: str, query: str, variables: dict | None = None, timeout: float = 300) -> dict:
    response = httpx.post(
        f"{url}/graphql", json={"query": query, "variables": variables or {}}, timeout=timeout
    )
    response.raise_for_status()
    return response.json()["data"]


def fill_database(url: str, pipelines: int) -> list[dict]:
    """Insert ``pipelines`` synthetic pipelines; return them as snapshot dicts."""
    from sqlalchemy import insert

    from vidpipe_dagster.db.models import Node, Pipeline
    from vidpipe_dagster.db.session import make_engine

    snapshot = synthetic_snapshot(pipelines)["pipelines"]
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(
            insert(Pipeline),
            [{"id": uuid.UUID(p["uuid"]), "title": p["title"], "config": {}} for p in snapshot],
        )
        connection.execute(
            insert(Node),
            [
                {
                    "id": uuid.UUID(n["uuid"]),
                    "pipeline_id": uuid.UUID(p["uuid"]),
                    "title": n["title"],
                    "type": n["type"],
                    "inputs": n["inputs"],
                    "config": n["config"],
                    "asset": n["asset"],
                }
                for p in snapshot
                for n in p["nodes"]
            ],
        )
    engine.dispose()
    return snapshot


def wait_until(predicate, *, timeout: float, what: str) -> float:
    """Poll ``predicate`` until it is truthy; the monotonic time it became so."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return time.monotonic()
        except (httpx.HTTPError, KeyError, TypeError, ValueError):
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{what} not reached in {timeout} s")


def start(command: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        command,
        env=env,
        cwd=ROOT,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def start_code_servers(
    *, env: dict, work: Path, shards: int, processes: list[subprocess.Popen]
) -> str:
    """The workspace.yaml text for ``shards`` locations; with more than one, each shard's
    ``dagster code-server start`` is started (appended to ``processes``) and waited for."""
    if shards == 1:
        return (
            "load_from:\n  - python_module:\n      module_name: vidpipe_dagster.definitions\n"
            "      attribute: defs\n      location_name: vidpipe\n"
        )
    entries = []
    for shard in range(shards):
        grpc_port = free_port()
        location = f"vidpipe_{shard}"
        processes.append(
            start(
                [sys.executable, "-m", "dagster", "code-server", "start"]
                + ["-h", "127.0.0.1", "-p", str(grpc_port)]
                + ["-m", "vidpipe_dagster.definitions", "--location-name", location],
                {**env, "VIDPIPE_DAGSTER_SHARD": str(shard)},
                work / f"code_server_{shard}.log",
            )
        )
        entries.append(
            f"  - grpc_server:\n      host: 127.0.0.1\n      port: {grpc_port}\n"
            f"      location_name: {location}\n"
        )
    for entry in entries:
        grpc_port = entry.split("port: ")[1].split()[0]
        wait_until(
            lambda grpc_port=grpc_port: (
                subprocess.run(
                    [sys.executable, "-m", "dagster", "api", "grpc-health-check"]
                    + ["-p", grpc_port],
                    capture_output=True,
                ).returncode
                == 0
            ),
            timeout=900,
            what=f"code server on port {grpc_port}",
        )
    return "load_from:\n" + "".join(entries)


def measure(pipelines: int, shards: int, edits: int, grpc_mb: int) -> dict[str, float]:
    name = f"vidpipe_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    raw_url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    url = raw_url.replace("postgresql://", "postgresql+psycopg://", 1)
    processes: list[subprocess.Popen] = []
    try:
        from vidpipe_dagster.db import migrate

        migrate.upgrade(raw_url)
        snapshot = fill_database(url, pipelines)
        work = Path(tempfile.mkdtemp(prefix="vidpipe-latency-"))
        home = work / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        port = free_port()
        dagster_url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "VIDPIPE_HOME": str(work / "vidpipe"),
            "VIDPIPE_DATABASE_URL": url,
            "VIDPIPE_DAGSTER_URL": dagster_url,
            "VIDPIPE_DAGSTER_SHARDS": str(shards),
            "DAGSTER_GRPC_MAX_RX_BYTES": str(grpc_mb * 10**6),
            "DAGSTER_GRPC_MAX_SEND_BYTES": str(grpc_mb * 10**6),
        }
        subprocess.run(
            [sys.executable, "-m", "dagster", "instance", "migrate"],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        began = time.monotonic()
        workspace = start_code_servers(env=env, work=work, shards=shards, processes=processes)
        (work / "workspace.yaml").write_text(workspace)
        processes.append(
            start(
                [sys.executable, "-m", "dagster", "dev", "-w", str(work / "workspace.yaml")]
                + ["-h", "127.0.0.1", "-p", str(port)],
                env,
                work / "dagster_dev.log",
            )
        )

        def loaded() -> bool:
            if processes[-1].poll() is not None:
                raise RuntimeError(f"dagster dev exited; see {work / 'dagster_dev.log'}")
            entries = gql(dagster_url, LOCATIONS, timeout=10)["workspaceOrError"]["locationEntries"]
            errors = [
                e["locationOrLoadError"]["message"]
                for e in entries
                if e["locationOrLoadError"]
                and e["locationOrLoadError"]["__typename"] == "PythonError"
            ]
            if errors:
                raise RuntimeError(f"location failed to load: {errors[0][:300]}")
            return len(entries) == shards and all(e["loadStatus"] == "LOADED" for e in entries)

        t_loaded = wait_until(loaded, timeout=900, what="locations LOADED")
        query_began = time.monotonic()
        keys = gql(dagster_url, ASSET_KEYS)["assetNodes"]
        t_graph = time.monotonic()
        assert len(keys) == pipelines * 20, len(keys)
        figures = {
            "loaded_s": t_loaded - began,
            "graph_s": t_graph - began,
            "graph_query_s": t_graph - query_began,
        }
        print(f"loaded after {figures['loaded_s']:.1f} s, graph after {figures['graph_s']:.1f} s")
        if edits:
            figures.update(measure_edits(dagster_url, url, snapshot, edits=edits, home=work))
        return figures
    finally:
        stop(processes)
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def measure_edits(
    dagster_url: str, database_url: str, snapshot: list[dict], *, edits: int, home: Path
) -> dict[str, float]:
    """API write -> debounced reload -> GraphQL shows the new asset, ``edits`` times."""
    from fastapi.testclient import TestClient

    from api.main import create_app
    from vidpipe_dagster.assets.asset_keys import key_of
    from vidpipe_dagster.db.session import make_engine, make_sessionmaker
    from vidpipe_dagster.domain.tokens import create_token
    from vidpipe_dagster.settings import Settings

    settings = Settings(
        dagster_url=dagster_url,
        database_url=database_url,
        home=home / "vidpipe",
        dagster_shards=int(os.environ.get("BENCH_SHARDS", "1")),
    )
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    with sessions() as session, session.begin():
        token = create_token(session, name="bench", admin=True)
    app = create_app(settings=settings, sessions=sessions)
    timings = []
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        for edit in range(edits):
            pipeline = snapshot[edit]["uuid"]
            began = time.monotonic()
            response = client.post(
                f"/v1/admin/video_production/pipelines/{pipeline}/nodes",
                json={"node": {"title": f"Edit {edit}", "type": "asset"}},
            )
            response.raise_for_status()
            node = response.json()["node"]["uuid"]
            path = list(key_of(sessions, pipeline_uuid=pipeline, node_uuid=node).path)
            shown = wait_until(
                lambda path=path: (
                    gql(dagster_url, ONE_ASSET, {"path": path}, timeout=30)["assetNodeOrError"][
                        "__typename"
                    ]
                    == "AssetNode"
                ),
                timeout=600,
                what="new asset visible",
            )
            timings.append(shown - began)
    engine.dispose()
    return {"edit_s": sorted(timings)[len(timings) // 2], "edit_max_s": max(timings)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipelines", type=int, nargs="+", default=[10, 1000])
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--edits", type=int, default=3)
    parser.add_argument(
        "--grpc-mb",
        type=int,
        default=400,
        help="DAGSTER_GRPC_MAX_RX/SEND_BYTES in MB (Dagster's default, 100, is below the "
        "1,000-pipeline repository snapshot)",
    )
    args = parser.parse_args()
    os.environ["BENCH_SHARDS"] = str(args.shards)
    print(
        "| pipelines | nodes | shards | loaded s | graph s | graph query s | edit s (median/max) |"
    )
    print("|---|---|---|---|---|---|---|")
    for pipelines in args.pipelines:
        f = measure(pipelines, args.shards, args.edits, args.grpc_mb)
        edit = f"{f['edit_s']:.1f} / {f['edit_max_s']:.1f}" if "edit_s" in f else "-"
        print(
            f"| {pipelines:,} | {pipelines * 20:,} | {args.shards} | {f['loaded_s']:.1f} | "
            f"{f['graph_s']:.1f} | {f['graph_query_s']:.1f} | {edit} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
