"""Run workers forked from a warm fork server (:mod:`vidpipe_dagster.orchestration.run_workers`).

Each probe runs in a new interpreter, as a code server does, so the wrap and the fork server
never leak into the test process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster

from vidpipe_dagster.orchestration import code_server, run_workers

ROOT = Path(__file__).resolve().parents[2]
DEFS_FILE = Path(__file__).parent / "fixtures_defs" / "tiny.py"

PROBE = """
import json, logging, os, sys, threading
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._grpc.__generated__ import dagster_api_pb2
from dagster._grpc.server import DagsterApiServer, FuturesAwareThreadPoolExecutor
from vidpipe_dagster.orchestration import run_workers


def child(queue):
    queue.put({
        "preloaded": [m for m in run_workers.PRELOAD if m in sys.modules],
        "parent": os.getppid(),
    })


if __name__ == "__main__":
    if sys.argv[2] == "on":
        run_workers.install()
    origin = LoadableTargetOrigin(python_file=sys.argv[1], attribute="defs")
    server = DagsterApiServer(
        threading.Event(), logging.getLogger("probe"), FuturesAwareThreadPoolExecutor(2),
        loadable_target_origin=origin,
    )
    server.ListRepositories(dagster_api_pb2.ListRepositoriesRequest(), None)
    # an unreadable request is refused with an error reply, after the context is chosen
    server.StartRun(dagster_api_pb2.StartRunRequest(serialized_execute_run_args="{}"), None)
    queue = server._mp_ctx.Queue()
    worker = server._mp_ctx.Process(target=child, args=(queue,))
    worker.start()
    seen = queue.get(timeout=60)
    worker.join(timeout=60)
    print(json.dumps({
        "method": server._mp_ctx.get_start_method(),
        "is_context": server._mp_ctx is run_workers.context(),
        "parent_is_server": seen["parent"] == os.getpid(),
        "preloaded": seen["preloaded"],
    }))
"""


def _probe(tmp_path: Path, forkserver: str) -> dict:
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    done = subprocess.run(
        [sys.executable, str(script), str(DEFS_FILE), forkserver],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_fork_server_is_written_for_the_pinned_dagster() -> None:
    assert dagster.__version__ == code_server.TESTED_DAGSTER


def test_a_code_server_forks_run_workers_with_dagster_and_vidpipe_imported(tmp_path) -> None:
    state = _probe(tmp_path, "on")
    assert state["method"] == "forkserver"
    assert state["is_context"] is True
    assert state["parent_is_server"] is False  # a fork of the fork server
    assert state["preloaded"] == run_workers.PRELOAD


def test_off_run_workers_are_spawned_as_dagster_does(tmp_path) -> None:
    state = _probe(tmp_path, "off")
    assert state["method"] == "spawn"
    assert state["parent_is_server"] is True
    assert "vidpipe_dagster.definitions" not in state["preloaded"]
