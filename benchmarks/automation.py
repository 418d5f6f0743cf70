"""Declarative automation at scale: how long one evaluation pass over every node takes.

Usage::

    python benchmarks/automation.py --sizes 10 100 1000

For each size, in a fresh subprocess: the synthetic pipelines of ``definitions.py`` (20
nodes each, every node carrying ``eager() | code_version_changed()``), a temporary Dagster
instance, then two passes of ``dagster.evaluate_automation_conditions`` over every asset and
check (the first from no cursor, the second from the first's), which is the work the
daemon's ``vidpipe_automation`` sensor does on each tick. Each size runs with CPython's GC
thresholds (what the daemon process uses) and with vidpipe's code-server thresholds.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def child(pipelines: int, tuned: bool) -> dict[str, float]:
    import dagster as dg

    from benchmarks.definitions import _definitions, synthetic_snapshot
    from vidpipe_dagster.orchestration.code_server import GC_THRESHOLDS

    if tuned:
        gc.set_threshold(*GC_THRESHOLDS)
    defs = _definitions("multi", synthetic_snapshot(pipelines))
    passes = []
    with dg.instance_for_test() as instance:
        cursor = None
        for _ in range(2):
            began = time.perf_counter()
            result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
            passes.append(time.perf_counter() - began)
            cursor = result.cursor
    return {"first_s": passes[0], "second_s": passes[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(int(args.child[0]), args.child[1] == "tuned")))
        return
    print("| pipelines | assets | GC thresholds | first pass s | second pass s | assets/s |")
    print("|---|---|---|---|---|---|")
    for size in args.sizes:
        for mode in ("default", "tuned"):
            output = subprocess.run(
                [sys.executable, __file__, "--child", str(size), mode],
                check=True,
                capture_output=True,
                text=True,
                cwd=ROOT,
            ).stdout
            figures = json.loads(output.strip().splitlines()[-1])
            label = "CPython default" if mode == "default" else "vidpipe's"
            rate = size * 20 / figures["second_s"]
            print(
                f"| {size:,} | {size * 20:,} | {label} | {figures['first_s']:.2f} "
                f"| {figures['second_s']:.2f} | {rate:,.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
