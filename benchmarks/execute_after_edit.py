"""Execute-after-edit latency on a real ``dagster dev``: how soon a run starts after an edit.

Usage::

    python benchmarks/execute_after_edit.py --pipelines 10 100 1000 [--trials 3] \
        [--per-location 100]

For each size: a fresh PostgreSQL database filled with the synthetic pipelines of
``benchmarks/definitions.py`` (20 nodes each), a fresh DAGSTER_HOME with
``deploy/dagster.yaml`` (the production instance: PostgreSQL storage in a second fresh
database, the daemon's ``QueuedRunCoordinator``), ``dagster dev`` on the vidpipe code
location, sharded at ``--per-location`` pipelines per location (``VIDPIPE_DAGSTER_SHARDS``:
1,000 pipelines are 10 code servers of 100, as ``benchmarks/dagster_latency.py --shards``
starts them), and the API app in this process with its default change notification (a
debounced reload of the pipeline's location after every write). Each trial uses another
pipeline's ``Script`` asset node; times run from the edit's request to the node's
``metadata.started_at`` (lifecycle ``started``, inside the run) and to ``completed``:

- *baseline*: no edit, execute a node the location compiled as it is (the floor: queueing,
  the run worker starting and rebuilding the location's definitions);
- *config edit*: ``PATCH`` the node's ``asset`` content, then execute at once. The shape is
  unchanged, so the launch does not wait for a reload; the run executes the row's fields
  (the output is checked to hold the new content);
- *new node*: ``POST`` an asset node, then execute it at once: a shape the location has not
  compiled, so the execute reloads the location and waits for it (the path an edit of
  inputs, type or provider takes).

Medians of ``--trials`` trials; *answer* is the edit's and the execute's requests together
(``VIDPIPE_EXECUTE_WAIT_SECONDS`` is raised so the new-node path measures the reload rather
than answering 503). A second table splits each run's start from its Dagster event log
(:data:`PHASES`): the daemon's dequeue and launch, the run worker up, the step begun. The
config edit follows the baseline's run of the same node, so its run may queue behind that
run's wind-down (one run at a time per pipeline).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.dagster_latency import (  # noqa: E402
    ADMIN_URL,
    LOCATIONS,
    fill_database,
    free_port,
    gql,
    start,
    start_code_servers,
    stop,
    wait_until,
)

BASE = "/v1/admin/video_production/pipelines"
SCRIPT = "x" * 200


def _node(sessions, node_uuid: str):
    from sqlalchemy import select

    from vidpipe_dagster.db.models import Node

    with sessions() as session:
        return session.scalars(select(Node).where(Node.id == uuid.UUID(node_uuid))).one()


def _started_after(sessions, node_uuid: str, began: datetime, storage_root: Path, *, text: str):
    """``(seconds to started_at, seconds to completed)`` of the node's next execution."""

    def done():
        row = _node(sessions, node_uuid)
        if row.status == "failed":
            raise RuntimeError(f"node failed: {row.metadata_.get('error')}")
        started = (row.metadata_ or {}).get("started_at")
        if row.status != "completed" or not started:
            return None
        started_at = datetime.fromisoformat(started)
        if started_at.tzinfo is None:
            started_at = started_at.replace(tzinfo=UTC)
        if started_at < began:
            return None
        return row, started_at

    wait_until(done, timeout=900, what="node completed")
    completed = datetime.now(UTC)
    row, started_at = done()
    stored = (storage_root / row.output["s3_key"]).read_text()
    if stored != text:
        raise AssertionError(f"the run executed {stored[:40]!r}, not the edit {text[:40]!r}")
    return (started_at - began).total_seconds(), (completed - began).total_seconds()


RUN_EVENTS = """
query RunEvents($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run {
      creationTime
      eventConnection { events { __typename ... on MessageEvent { timestamp } } } }
  }
}
"""
PHASES = {
    "RunStartingEvent": "launching",
    "RunStartEvent": "worker_up",
    "ExecutionStepStartEvent": "step",
}
"""Run events whose first occurrence marks a phase: the daemon dequeued the run and the
launcher began starting its worker, the worker process is up, the step began."""


def run_phases(dagster_url: str, run_id: str) -> dict[str, float]:
    """Seconds from the run's creation to each of :data:`PHASES`, from its event log."""
    run = gql(dagster_url, RUN_EVENTS, {"runId": run_id})["runOrError"]
    if run.get("__typename") != "Run":
        return {}
    phases: dict[str, float] = {}
    for event in run["eventConnection"]["events"]:
        phase = PHASES.get(event["__typename"])
        if phase and phase not in phases:
            phases[phase] = int(event["timestamp"]) / 1000 - run["creationTime"]
    return phases


def measure(
    pipelines: int, trials: int, grpc_mb: int, *, per_location: int = 100
) -> dict[str, list[float]]:
    shards = max(1, -(-pipelines // per_location))
    name = f"vidpipe_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        admin.execute(f'CREATE DATABASE "{name}_dagster"')
    raw_url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    url = raw_url.replace("postgresql://", "postgresql+psycopg://", 1)
    processes: list[subprocess.Popen] = []
    try:
        from fastapi.testclient import TestClient

        from api.main import create_app
        from vidpipe_dagster.db import migrate
        from vidpipe_dagster.db.session import make_engine, make_sessionmaker
        from vidpipe_dagster.domain.tokens import create_token
        from vidpipe_dagster.settings import Settings

        migrate.upgrade(raw_url)
        snapshot = fill_database(url, pipelines)
        with psycopg.connect(raw_url, autocommit=True) as connection:
            connection.execute(
                "UPDATE video_production_nodes SET asset = %s::jsonb WHERE type = 'asset'",
                [json.dumps({"type": "text", "content": SCRIPT})],
            )
        work = Path(tempfile.mkdtemp(prefix="vidpipe-execute-edit-"))
        home = work / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").write_text((ROOT / "deploy" / "dagster.yaml").read_text())
        server = psycopg.conninfo.conninfo_to_dict(ADMIN_URL)
        port = free_port()
        dagster_url = f"http://127.0.0.1:{port}"
        storage_root = work / "storage"
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "VIDPIPE_HOME": str(work / "vidpipe"),
            "VIDPIPE_DATABASE_URL": url,
            "VIDPIPE_DAGSTER_URL": dagster_url,
            "VIDPIPE_STORAGE_URL": storage_root.as_uri(),
            "VIDPIPE_PROVIDERS": "local",
            "DAGSTER_PG_USERNAME": str(server.get("user", "postgres")),
            "DAGSTER_PG_PASSWORD": str(server.get("password", "")),
            "DAGSTER_PG_HOST": str(server.get("host", "127.0.0.1")),
            "DAGSTER_PG_PORT": str(server.get("port", 5432)),
            "DAGSTER_PG_DB": f"{name}_dagster",
            "DAGSTER_GRPC_MAX_RX_BYTES": str(grpc_mb * 10**6),
            "DAGSTER_GRPC_MAX_SEND_BYTES": str(grpc_mb * 10**6),
            "VIDPIPE_DAGSTER_SHARDS": str(shards),
        }
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
            entries = gql(dagster_url, LOCATIONS, timeout=10)["workspaceOrError"]["locationEntries"]
            return len(entries) == shards and all(e["loadStatus"] == "LOADED" for e in entries)

        wait_until(loaded, timeout=1200, what="location LOADED")
        settings = Settings(
            dagster_url=dagster_url,
            database_url=url,
            home=work / "vidpipe",
            storage_url=storage_root.as_uri(),
            providers="local",
            execute_wait_seconds=600,
            dagster_shards=shards,
        )
        engine = make_engine(url)
        sessions = make_sessionmaker(engine)
        with sessions() as session, session.begin():
            token = create_token(session, name="bench", admin=True)
        app = create_app(settings=settings, sessions=sessions)
        figures: dict[str, list[float]] = {}

        runs: list[str] = []

        def record(kind: str, answer: float, started: float, completed: float) -> None:
            phases = run_phases(dagster_url, runs[-1])
            parts = {"answer": answer, "started": started, "done": completed}
            for part, value in {**parts, **phases}.items():
                figures.setdefault(f"{kind}_{part}", []).append(value)
            print(
                f"  {kind}: answer {answer:.2f} s, started {started:.2f} s, "
                f"completed {completed:.2f} s; from the run's creation: "
                + ", ".join(f"{name} {value:.2f} s" for name, value in phases.items()),
                flush=True,
            )

        with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:

            def execute(pipeline: str, node: str) -> float:
                began = time.monotonic()
                response = client.post(f"{BASE}/{pipeline}/nodes/{node}/execute")
                if response.status_code != 202:
                    raise RuntimeError(f"execute answered {response.status_code}: {response.text}")
                runs.append(response.json()["run_id"])
                return time.monotonic() - began

            for trial in range(trials + 1):
                pipeline = snapshot[trial]
                script = pipeline["nodes"][0]
                began = datetime.now(UTC)
                answer = execute(pipeline["uuid"], script["uuid"])
                timing = _started_after(sessions, script["uuid"], began, storage_root, text=SCRIPT)
                if trial:  # the first run warms the instance up and is not counted
                    record("baseline", answer, *timing)

                text = f"Edited in trial {trial}."
                began = datetime.now(UTC)
                edited = time.monotonic()
                response = client.patch(
                    f"{BASE}/{pipeline['uuid']}/nodes/{script['uuid']}",
                    json={"node": {"asset": {"type": "text", "content": text}}},
                )
                response.raise_for_status()
                answer = execute(pipeline["uuid"], script["uuid"]) + time.monotonic() - edited
                timing = _started_after(sessions, script["uuid"], began, storage_root, text=text)
                if trial:
                    record("config", answer, *timing)

                text = f"Added in trial {trial}."
                began = datetime.now(UTC)
                added = time.monotonic()
                response = client.post(
                    f"{BASE}/{pipeline['uuid']}/nodes",
                    json={
                        "node": {
                            "title": f"Added {trial}",
                            "type": "asset",
                            "asset": {"type": "text", "content": text},
                        }
                    },
                )
                response.raise_for_status()
                node = response.json()["node"]["uuid"]
                answer = execute(pipeline["uuid"], node) + time.monotonic() - added
                timing = _started_after(sessions, node, began, storage_root, text=text)
                if trial:
                    record("new_node", answer, *timing)
        engine.dispose()
        return figures
    finally:
        stop(processes)
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'DROP DATABASE IF EXISTS "{name}_dagster" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipelines", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--grpc-mb", type=int, default=400)
    parser.add_argument("--per-location", type=int, default=100)
    args = parser.parse_args()
    rows = []
    for pipelines in args.pipelines:
        print(f"{pipelines} pipelines (load average {_load()}):", flush=True)
        f = measure(pipelines, args.trials, args.grpc_mb, per_location=args.per_location)
        rows.append((pipelines, {k: statistics.median(v) for k, v in f.items()}))
    print()
    print(
        "| pipelines | nodes | baseline: answer / started / done s "
        "| config edit: answer / started / done s | new node: answer / started / done s |"
    )
    print("|---|---|---|---|---|")
    for pipelines, m in rows:
        cells = [
            " / ".join(f"{m[f'{kind}_{part}']:.1f}" for part in ("answer", "started", "done"))
            for kind in ("baseline", "config", "new_node")
        ]
        print(f"| {pipelines:,} | {pipelines * 20:,} | " + " | ".join(cells) + " |", flush=True)
    print()
    print("Seconds from the run's creation to: " + ", ".join(PHASES.values()))
    for pipelines, m in rows:
        for kind in ("baseline", "config", "new_node"):
            cells = " / ".join(
                f"{m[f'{kind}_{phase}']:.1f}" if f"{kind}_{phase}" in m else "-"
                for phase in PHASES.values()
            )
            print(f"  {pipelines:,} pipelines, {kind}: {cells}")
    print(f"load average at the end: {_load()}")


def _load() -> str:
    """The 1, 5 and 15 minute load averages (figures are upper bounds on a busy machine)."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


if __name__ == "__main__":
    main()
