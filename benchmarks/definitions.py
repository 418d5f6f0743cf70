"""Definitions at scale: build time, snapshot size, memory and run start-up overhead.

Usage::

    python benchmarks/definitions.py                       # 100, 1000, 5000 pipelines
    python benchmarks/definitions.py --sizes 10 1000 --shapes multi

For each size (pipelines of 20 nodes, 2 inputs per non-root node) and shape, each figure
comes from a fresh subprocess so memory and import costs are honest:

- ``build``: compiling the snapshot into ``Definitions`` and resolving the repository (what
  a code server does on load and on every reload), the JSON snapshot's size, and max RSS;
- ``snap``: serializing the repository snapshot the webserver loads (the UI's cost);
- ``run``: what a run worker pays before its first step, from process start: imports,
  rebuilding the definitions from the state its run carried, resolving the asset job subset
  for one pipeline's nodes and planning it.

Shapes: ``multi`` is vidpipe's compiler (one ``multi_asset`` per pipeline, ``can_subset``);
``per-node`` builds one single-asset definition per node, the shape DESIGN section 6 started
from, for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

NODES_PER_PIPELINE = 20
TYPES = ["generate-voiceover", "talking-head", "render-code", "generate-animation"]


def synthetic_snapshot(pipelines: int, *, nodes: int = NODES_PER_PIPELINE) -> dict[str, Any]:
    """A snapshot shaped like ``take_snapshot``'s: each pipeline a DAG of ``nodes`` nodes."""
    out = []
    for p in range(pipelines):
        ids = [str(uuid.UUID(int=(p << 32) + n + 1)) for n in range(nodes)]
        rows = [
            {
                "uuid": ids[0],
                "title": "Script",
                "type": "asset",
                "inputs": {},
                "config": {},
                "asset": {"type": "text", "text": "x" * 200},
            }
        ]
        for n in range(1, nodes):
            if n < 5:
                node_type, inputs = TYPES[n - 1], {"script": [ids[0]]} if n != 3 else {}
            else:
                node_type, inputs = "merge-videos", {"segments": [ids[n - 1], ids[n - 2]]}
            rows.append(
                {
                    "uuid": ids[n],
                    "title": f"Node {n}",
                    "type": node_type,
                    "inputs": inputs,
                    "config": {"provider": "local", "prompt": "a calm sea at dawn " * 4},
                    "asset": None,
                }
            )
        out.append(
            {
                "uuid": str(uuid.UUID(int=p + 1)),
                "title": f"Pipeline {p}",
                "version": "1.0",
                "config": {},
                "updated_at": None,
                "nodes": rows,
            }
        )
    return {"version": 1, "taken_at": None, "latest_updated_at": None, "pipelines": out}


def _max_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _per_node_definitions(snapshot: dict[str, Any]) -> Any:
    import dagster as dg

    from vidpipe_dagster.domain.naming import resolve_names
    from vidpipe_dagster.orchestration import compiler

    assets = []
    for pipeline in snapshot["pipelines"]:
        names = resolve_names(pipeline)
        for node in pipeline["nodes"]:
            spec = compiler._node_spec(names, node)

            @dg.multi_asset(name="__".join(spec.key.path), specs=[spec])
            def _node(context):
                yield dg.MaterializeResult()

            assets.append(_node)
    return dg.Definitions(assets=assets)


def _definitions(shape: str, snapshot: dict[str, Any]) -> Any:
    import dagster as dg

    from vidpipe_dagster.orchestration.compiler import compile_snapshot
    from vidpipe_dagster.resources.dagster_resources import VidpipeResource

    pipelines = (
        compile_snapshot(snapshot).definitions()
        if shape == "multi"
        else _per_node_definitions(snapshot)
    )
    return dg.Definitions.merge(
        pipelines,
        dg.Definitions(resources={"vidpipe": VidpipeResource()}, executor=dg.in_process_executor),
    )


def child_build(shape: str, state_path: str) -> dict[str, Any]:
    """Code-server side: compile and resolve the repository; then serialize its snapshot."""
    from dagster._core.remote_representation.external_data import RepositorySnap
    from dagster_shared.serdes import serialize_value

    snapshot = json.loads(Path(state_path).read_text())
    rss_before = _max_rss_mb()
    started = time.perf_counter()
    defs = _definitions(shape, snapshot)
    built = time.perf_counter()
    repo = defs.get_repository_def()
    repo.get_all_jobs()
    resolved = time.perf_counter()
    snap_bytes = len(serialize_value(RepositorySnap.from_def(repo)))
    serialized = time.perf_counter()
    return {
        "compile_s": built - started,
        "resolve_s": resolved - built,
        "load_s": resolved - started,
        "ui_snapshot_s": serialized - resolved,
        "ui_snapshot_mb": snap_bytes / 1e6,
        "rss_mb": _max_rss_mb(),
        "rss_growth_mb": _max_rss_mb() - rss_before,
    }


def child_run(shape: str, state_path: str, spawned_at: float) -> dict[str, Any]:
    """Run-worker side: rebuild from the state, resolve the asset job subset, plan it."""
    imported_at = None
    import dagster as dg
    from dagster._core.definitions.definitions_load_context import (
        DefinitionsLoadContext,
        DefinitionsLoadType,
    )
    from dagster._core.execution.api import create_execution_plan

    from vidpipe_dagster.assets.asset_keys import node_asset_key
    from vidpipe_dagster.domain.naming import resolve_names

    imported_at = time.time()
    DefinitionsLoadContext.set(DefinitionsLoadContext(load_type=DefinitionsLoadType.RECONSTRUCTION))
    snapshot = json.loads(Path(state_path).read_text())
    defs = _definitions(shape, snapshot)
    pipeline = snapshot["pipelines"][len(snapshot["pipelines"]) // 2]
    names = resolve_names(pipeline)
    keys = {node_asset_key(names, node["uuid"]) for node in pipeline["nodes"]}
    job = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection=keys)
    plan = create_execution_plan(job)
    assert plan.step_keys_to_execute, "nothing to execute"
    done = time.time()
    del dg
    return {
        "import_s": imported_at - spawned_at,
        "rebuild_and_plan_s": done - imported_at,
        "run_overhead_s": done - spawned_at,
        "rss_mb": _max_rss_mb(),
    }


def _spawn(*args: str) -> dict[str, Any]:
    env = {**os.environ, "DAGSTER_HOME": tempfile.mkdtemp(prefix="bench-dagster-")}
    output = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    """Print one table row per (size, shape)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--shapes", nargs="+", default=["multi", "per-node"])
    parser.add_argument("--per-node-max", type=int, default=1000, help="skip per-node above")
    parser.add_argument("--runs", type=int, default=2, help="run-overhead samples (min kept)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        from vidpipe_dagster.orchestration import code_server

        code_server.tune_gc()  # as vidpipe's code location does in code servers and run workers
        mode, shape, state = args.child[:3]
        if mode == "build":
            result = child_build(shape, state)
        else:
            result = child_run(shape, state, float(args.child[3]))
        print(json.dumps(result))
        return

    header = (
        "| pipelines | nodes | shape | snapshot MB | compile s | resolve s | code-server RSS MB "
        "| UI snapshot s / MB | run overhead s (import + rebuild/plan) |"
    )
    print(header)
    print("|" + "---|" * 9)
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            state = Path(tmp) / f"state-{size}.json"
            state.write_text(json.dumps(synthetic_snapshot(size)))
            snapshot_mb = state.stat().st_size / 1e6
            for shape in args.shapes:
                if shape == "per-node" and size > args.per_node_max:
                    continue
                build = _spawn("build", shape, str(state))
                runs = [
                    _spawn("run", shape, str(state), repr(time.time())) for _ in range(args.runs)
                ]
                run = min(runs, key=lambda r: r["run_overhead_s"])
                print(
                    f"| {size:,} | {size * NODES_PER_PIPELINE:,} | {shape} | {snapshot_mb:.1f} "
                    f"| {build['compile_s']:.2f} | {build['resolve_s']:.2f} "
                    f"| {build['rss_mb']:.0f} "
                    f"| {build['ui_snapshot_s']:.2f} / {build['ui_snapshot_mb']:.1f} "
                    f"| {run['run_overhead_s']:.2f} ({run['import_s']:.2f} + "
                    f"{run['rebuild_and_plan_s']:.2f}) |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
