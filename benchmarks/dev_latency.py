"""``vidpipe dev`` latencies: execute -> run start, idle output, and Ctrl-C -> stopped.

Starts ``vidpipe dev`` on a fresh ``VIDPIPE_HOME`` (the embedded SQLite, as a new user
has it) on free ports, creates a token and a pipeline of ``--runs`` text assets, then
executes them one after another through the API. For each execute it records when the
API answered 202 and when the Dagster run (polled over GraphQL every 20 ms) reached
``STARTING`` (launched) and ``STARTED`` (its worker began). Then it counts the lines the
command prints while idle for ``--idle`` seconds, sends SIGINT and times the exit.

    python benchmarks/dev_latency.py [--runs 5] [--idle 10] [--verbose]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

BASE = "/v1/admin/video_production/pipelines"
LOCATIONS = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
RUN_STATUS = "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"
LAUNCHED = {"STARTING", "STARTED", "SUCCESS", "FAILURE", "CANCELING", "CANCELED"}
BEGUN = LAUNCHED - {"STARTING"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_up(api: str, dagster: str, process: subprocess.Popen, seconds: float = 300) -> None:
    """Until the API answers and the vidpipe location is loaded."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"vidpipe dev exited with {process.returncode}")
        try:
            health = httpx.get(f"{api}/healthz", timeout=5).status_code
            body = httpx.post(f"{dagster}/graphql", json={"query": LOCATIONS}, timeout=5).json()
            entries = body["data"]["workspaceOrError"]["locationEntries"]
            if health == 200 and [e["loadStatus"] for e in entries] == ["LOADED"]:
                return
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            pass
        time.sleep(0.5)
    raise SystemExit("vidpipe dev did not come up")


def run_times(dagster: str, run_id: str, answered: float) -> tuple[float, float]:
    """Seconds from ``answered`` to the run's ``STARTING`` and ``STARTED`` (or later)."""
    launched = begun = None
    deadline = answered + 180
    with httpx.Client(timeout=10) as client:
        while begun is None and time.monotonic() < deadline:
            body = client.post(
                f"{dagster}/graphql", json={"query": RUN_STATUS, "variables": {"id": run_id}}
            ).json()
            status = (body.get("data", {}).get("runOrError") or {}).get("status")
            now = time.monotonic() - answered
            if status in LAUNCHED and launched is None:
                launched = now
            if status in BEGUN:
                begun = now
            time.sleep(0.02)
    if begun is None:
        raise SystemExit(f"run {run_id} did not start within 180 s")
    return launched or begun, begun


def executes(api: str, dagster: str, token: str, runs: int) -> list[tuple[float, float, float]]:
    """(answer s, launched s, started s) per execute of a fresh text asset."""
    figures = []
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=api, headers=headers, timeout=400) as client:
        pipeline = client.post(BASE, json={"pipeline": {"title": "Latency"}}).json()["pipeline"]
        path = f"{BASE}/{pipeline['uuid']}/nodes"
        nodes = [
            client.post(
                path,
                json={
                    "node": {
                        "title": f"Text {i}",
                        "type": "asset",
                        "asset": {"type": "text", "content": f"Line {i}."},
                    }
                },
            ).json()["node"]["uuid"]
            for i in range(runs)
        ]
        for node in nodes:
            begun = time.monotonic()
            response = client.post(f"{path}/{node}/execute")
            answered = time.monotonic()
            if response.status_code != 202:
                raise SystemExit(f"execute answered {response.status_code}: {response.text}")
            launched, started = run_times(dagster, response.json()["run_id"], answered)
            figures.append((answered - begun, launched, started))
            deadline = time.monotonic() + 120
            while client.get(f"{path}/{node}").json()["node"]["status"] != "completed":
                if time.monotonic() > deadline:
                    raise SystemExit(f"node {node} did not complete")
                time.sleep(0.2)
    return figures


def idle_lines(log: Path, seconds: float) -> list[str]:
    """What the command printed during ``seconds`` of doing nothing."""
    before = len(log.read_text())
    time.sleep(seconds)
    return log.read_text()[before:].splitlines()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--idle", type=float, default=10.0)
    parser.add_argument("--verbose", action="store_true", help="run `vidpipe dev --verbose`")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="vidpipe-dev-latency-"))
    env = {**os.environ, "VIDPIPE_HOME": str(work / "home"), "VIDPIPE_EXECUTE_WAIT_SECONDS": "300"}
    for name in ("VIDPIPE_DATABASE_URL", "VIDPIPE_STORAGE_URL", "DAGSTER_HOME"):
        env.pop(name, None)
    api_port, dagster_port = free_port(), free_port()
    log = work / "dev.log"
    command = [sys.executable, "-m", "vidpipe_dagster.cli", "dev"]
    command += ["--api-port", str(api_port), "--dagster-port", str(dagster_port)]
    command += ["--verbose"] if args.verbose else []
    started = time.monotonic()
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    api, dagster = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{dagster_port}"
    try:
        wait_up(api, dagster, process)
        up = time.monotonic() - started
        token = subprocess.run(
            [sys.executable, "-m", "vidpipe_dagster.cli", "tokens", "create", "bench", "--admin"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()[-1]
        figures = executes(api, dagster, token, args.runs)
        idle = idle_lines(log, args.idle)
        process.send_signal(signal.SIGINT)
        interrupted = time.monotonic()
        process.wait(timeout=60)
        stop = time.monotonic() - interrupted
    finally:
        if process.poll() is None:
            process.kill()
    print(f"load average: {Path('/proc/loadavg').read_text().split()[:3]}")
    print(f"up (API + location loaded): {up:.1f} s")
    for i, (answer, launched, begun) in enumerate(figures, 1):
        print(
            f"execute {i}: answered {answer:.2f} s; after the answer, run STARTING "
            f"{launched:.2f} s, STARTED {begun:.2f} s"
        )
    rest = figures[1:] or figures
    print(
        "median after the first: answered "
        f"{statistics.median(f[0] for f in rest):.2f} s, STARTING "
        f"{statistics.median(f[1] for f in rest):.2f} s, STARTED "
        f"{statistics.median(f[2] for f in rest):.2f} s"
    )
    print(f"idle output over {args.idle:.0f} s: {len(idle)} lines")
    for line in idle[:5]:
        print(f"  {line[:140]}")
    print(f"stop (SIGINT -> exited, code {process.returncode}): {stop:.2f} s")


if __name__ == "__main__":
    main()
