"""Reuse of finished work: provider calls, renders and seconds of a second run.

Usage::

    python benchmarks/reuse.py [--skip-demo]

Two measurements, each printing the first run (the baseline: everything rendered), the
second run (everything reused) and a forced run (``vidpipe/force``: rendered again):

- *demo*: ``vidpipe demo`` (``run_demo``) on a fresh embedded home (SQLite, local storage,
  the local provider), as a user runs it;
- *20 nodes*: a pipeline of 20 nodes on a fresh PostgreSQL database
  (``VIDPIPE_BENCH_PG_ADMIN_URL``, default ``postgresql://postgres@127.0.0.1:5432/postgres``):
  a script, 4 ElevenLabs voiceovers, 4 HeyGen talking heads speaking them, 3 Veo
  animations, 4 mixes, 3 merges and a final merge, against the fake providers of
  ``tests/fakes`` on loopback. The first run includes the provider sensor ticks that
  finish the HeyGen and Veo jobs and the runs they request; the second run is one in-process run of
  all 20 nodes; the forced one renders them again, with its sensor ticks.

*provider calls* counts the HTTP requests the fakes received; *new files* the objects the
run wrote to storage (every FFmpeg render and provider result writes one); *node seconds*
sums the ``execution time (s)`` of the materializations of the run itself (not of the runs
the sensor requests; a submitted job reports none): vidpipe's own work in the steps.
A run of as many no-op assets on the same kind of Dagster instance gives the floor that
Dagster alone costs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import dagster as dg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")}


def _row(
    label: str,
    run: str,
    seconds: float,
    calls: int | str,
    new_files: int | str,
    usd: float | str,
    node_seconds: float | str = "",
) -> None:
    usd_text = f"{usd:.2f}" if isinstance(usd, float) else usd
    node_text = f"{node_seconds:.2f}" if isinstance(node_seconds, float) else node_seconds
    print(f"| {label} | {run} | {seconds:.2f} | {node_text} | {calls} | {new_files} | {usd_text} |")


def dagster_floor(nodes: int, instance) -> float:
    """Seconds of an in-process run of ``nodes`` no-op assets in one subsettable multi-asset,
    each with an asset check, on ``instance``: what Dagster alone costs a run that size."""

    specs = [dg.AssetSpec(f"noop_{i}", deps=[f"noop_{i - 1}"] if i else []) for i in range(nodes)]
    checks = [dg.AssetCheckSpec("stored_output", asset=spec.key) for spec in specs]

    @dg.multi_asset(specs=specs, check_specs=checks, can_subset=True)
    def noop(context):
        for spec in specs:
            if spec.key in context.selected_asset_keys:
                yield dg.MaterializeResult(asset_key=spec.key)
                yield dg.AssetCheckResult(
                    asset_key=spec.key, check_name="stored_output", passed=True
                )

    job = dg.Definitions(assets=[noop]).resolve_implicit_global_asset_job_def()
    began = time.perf_counter()
    assert job.execute_in_process(instance=instance).success
    return time.perf_counter() - began


def demo() -> None:
    """Three ``run_demo`` calls on one fresh embedded home."""
    from vidpipe_dagster.runtime.demo import run_demo
    from vidpipe_dagster.settings import Settings, get_settings

    with tempfile.TemporaryDirectory(prefix="vidpipe-bench-demo-") as home:
        for name in ("VIDPIPE_DATABASE_URL", "VIDPIPE_STORAGE_URL", "DAGSTER_HOME"):
            os.environ.pop(name, None)
        os.environ["VIDPIPE_HOME"] = home
        get_settings.cache_clear()
        settings = Settings()
        storage = Path(home) / "storage"
        for run, force in (("first (renders)", False), ("second", False), ("forced", True)):
            before = _files(storage) if storage.exists() else set()
            began = time.perf_counter()
            result = run_demo(settings=settings, echo=lambda _line: None, force=force)
            seconds = time.perf_counter() - began
            new = len(_files(storage) - before)
            _row(f"demo (reused {result.reused}/10)", run, seconds, 0, new, 0.0)
        with dg.DagsterInstance.get() as instance:
            floor = dagster_floor(10, instance)
        _row("10 no-op assets (Dagster floor, same instance)", "baseline", floor, "", "", "")


def _nodes():
    from tests.dagster.builders import NodeRow

    nodes = [NodeRow("script", "asset", asset={"type": "text", "content": "Lesson one. " * 8})]
    for i in range(1, 5):
        nodes.append(
            NodeRow(
                f"voice{i}",
                "generate-voiceover",
                inputs={"script": ["script"]},
                config={"provider": "elevenlabs", "voiceId": f"voice-{i}"},
            )
        )
        nodes.append(
            NodeRow(
                f"head{i}",
                "talking-head",
                inputs={"script": [f"voice{i}"]},
                config={"provider": "heygen", "avatarId": f"avatar-{i}"},
            )
        )
    for i in range(1, 4):
        nodes.append(
            NodeRow(
                f"anim{i}",
                "generate-animation",
                config={"provider": "veo3", "prompt": f"scene {i}", "duration": 4},
            )
        )
    for i in range(1, 5):
        nodes.append(
            NodeRow(f"mix{i}", "mix-audio", inputs={"video": [f"head{i}"], "audio": [f"voice{i}"]})
        )
    nodes += [
        NodeRow("merge1", "merge-videos", inputs={"segments": ["mix1", "anim1"]}),
        NodeRow("merge2", "merge-videos", inputs={"segments": ["mix2", "anim2"]}),
        NodeRow("merge3", "merge-videos", inputs={"segments": ["mix3", "mix4", "anim3"]}),
        NodeRow("final", "merge-videos", inputs={"segments": ["merge1", "merge2", "merge3"]}),
    ]
    assert len(nodes) == 20
    return nodes


def twenty_nodes() -> None:
    """Three runs of a 20-node pipeline against the fake providers."""

    from benchmarks.sensor_tick import drop_database, make_database
    from tests.dagster.builders import add_pipeline
    from tests.fakes.elevenlabs import FakeElevenLabs
    from tests.fakes.heygen import FakeHeyGen
    from tests.fakes.veo import FakeVeo
    from tests.provider_jobs.conftest import (
        all_nodes,
        pipeline_row,
        run_in_process,
        sensor_tick,
    )
    from vidpipe_dagster.assets.asset_keys import node_asset_key
    from vidpipe_dagster.db.session import make_engine, make_sessionmaker
    from vidpipe_dagster.domain.naming import names_of
    from vidpipe_dagster.domain.signatures import FORCE_TAG
    from vidpipe_dagster.resources.dagster_resources import VidpipeResource
    from vidpipe_dagster.settings import get_settings

    url, name = make_database()
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    try:
        with (
            FakeElevenLabs() as eleven,
            FakeHeyGen() as heygen,
            FakeVeo() as veo,
            tempfile.TemporaryDirectory(prefix="vidpipe-bench-reuse-") as tmp,
        ):
            heygen.jobs.steps = veo.jobs.steps = 1
            os.environ.update(
                VIDPIPE_ELEVENLABS_API_KEY=eleven.api_key,
                VIDPIPE_ELEVENLABS_BASE_URL=eleven.url,
                VIDPIPE_HEYGEN_API_KEY=heygen.api_key,
                VIDPIPE_HEYGEN_BASE_URL=heygen.url,
                VIDPIPE_GEMINI_API_KEY=veo.api_key,
                VIDPIPE_GEMINI_BASE_URL=veo.base_url,
                VIDPIPE_POLL_TIME_BUDGET_SECONDS="20",
            )
            os.environ.pop("VIDPIPE_PROVIDERS", None)
            get_settings.cache_clear()
            storage = Path(tmp) / "storage"
            resource = VidpipeResource(
                database_url=url, storage_url=storage.as_uri(), home=str(Path(tmp) / "home")
            )
            nodes = _nodes()
            ids = add_pipeline(sessions, name=f"bench {uuid.uuid4().hex[:6]}", nodes=nodes)
            names = names_of(sessions, [ids["pipeline"]])[ids["pipeline"]]
            keys = [node_asset_key(names, ids[n.name]) for n in nodes]
            fakes = (eleven, heygen, veo)
            with dg.instance_for_test() as instance:
                for run, tags in (("first (renders)", {}), ("second", {}), ("forced", None)):
                    tags = {FORCE_TAG: "true"} if tags is None else tags
                    calls = sum(len(f.requests) for f in fakes)
                    before = _files(storage) if storage.exists() else set()
                    spent = float(
                        pipeline_row(sessions, ids["pipeline"]).metadata_.get("totalCost") or 0
                    )
                    began = time.perf_counter()
                    result = run_in_process(sessions, resource, instance, keys, tags=tags)
                    assert result.success
                    node_seconds = sum(
                        float(event.materialization.metadata["execution time (s)"].value)
                        for event in result.get_asset_materialization_events()
                        if "execution time (s)" in event.materialization.metadata
                    )
                    for _ in range(10):
                        waiting = [
                            row
                            for row in all_nodes(sessions, ids["pipeline"]).values()
                            if row.status != "completed"
                        ]
                        if not waiting:
                            break
                        tick = sensor_tick(sessions, resource, instance)
                        if not isinstance(tick, dg.SensorResult):
                            continue
                        for request in tick.run_requests:
                            run_in_process(
                                sessions,
                                resource,
                                instance,
                                request.asset_selection,
                                tags={**tags, **(request.tags or {})},
                            )
                    seconds = time.perf_counter() - began
                    made = sum(len(f.requests) for f in fakes) - calls
                    new = len(_files(storage) - before)
                    total = float(pipeline_row(sessions, ids["pipeline"]).metadata_["totalCost"])
                    assert not waiting, f"{len(waiting)} node(s) did not complete"
                    _row("20 nodes", run, seconds, made, new, total - spent, node_seconds)
                floor = dagster_floor(20, instance)
                _row("20 no-op assets (Dagster floor)", "baseline", floor, "", "", "")
    finally:
        engine.dispose()
        drop_database(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-demo", action="store_true")
    args = parser.parse_args()
    print("| pipeline | run | seconds | node seconds | provider calls | new files | spent USD |")
    print("|---|---|---|---|---|---|---|")
    if not args.skip_demo:
        demo()
    twenty_nodes()


if __name__ == "__main__":
    main()
