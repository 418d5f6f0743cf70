"""``vidpipe demo``: a whole course-video pipeline rendered offline through Dagster.

The demo pipeline lives in the configured database (the embedded SQLite by default):

    script ─┬─> voiceover ──────────────────────────┐
            └─> talking head ──────────────┐        │
    code ─────> code render ─┐             │        │
    prompt ───> animation ───┴─> merge ─> mix <─────┘
                                           └─> compose (talking head as picture-in-picture)

Every AI node uses the ``local`` provider, so it needs no account and no network. The
narration mix lasts as long as the voiceover (``length: audio``), so the final cut never
cuts the last sentences. A second run reuses every node's finished work
(``domain.signatures``) and renders nothing; ``vidpipe demo --force`` renders them all again.

While it runs the demo prints one line per status change of this run's nodes
(:mod:`vidpipe_dagster.runtime.demo_output`); at the end, the length of the video and of its
narration, a URL that plays the video in a browser (served by ``vidpipe dev``'s API on its
default address, or S3's presigned URL) and, last, the MP4's path.

``vidpipe demo`` runs the demo in a child process (:func:`run_demo_in_foreground`) and relays
its output; Ctrl-C interrupts the run there, the running node is failed as interrupted and
the command prints one line saying what was stopped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid as uuid_lib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from vidpipe_dagster.db.models import Node, Pipeline
from vidpipe_dagster.domain.nodes import create_node, list_nodes, update_node
from vidpipe_dagster.domain.pipelines import create_pipeline
from vidpipe_dagster.runtime.demo_output import DemoResult, demo_result, report

DEMO_TITLE = "vidpipe demo: intro to loops"
INTERRUPT_GRACE_SECONDS = 2.5
"""How long the demo's process gets to record an interruption before it is killed."""
INTERRUPTED_EXIT_CODE = 130
CONFIG_ERROR_EXIT_CODE = 2
NARRATION_CONFIG = {"mode": "replace", "length": "audio"}
"""The narration mix: the voiceover replaces the sound and sets the length of the video."""
FINAL_CUT_CONFIG = {"position": "bottom-right", "scale": 0.3, "audio": "background"}
"""The talking head in a corner over the narrated video; only the narration is heard (the
head says the same script, and both at once would speak it twice)."""
UPDATED_CONFIGS = {"Narration": NARRATION_CONFIG, "Final cut": FINAL_CUT_CONFIG}

SCRIPT = (
    "Welcome back. In this lesson we look at loops. A loop repeats a block of code until a "
    "condition tells it to stop. Let's see one in action."
)
CODE = 'for step in range(3):\n    print(f"step {step}")\nprint("done")\n'
PROMPT = "A friendly robot stacking coloured blocks, one per beat"


def ensure_demo_pipeline(session: Session) -> Pipeline:
    """The demo pipeline, created on first use and reused afterwards."""
    existing = session.scalars(
        select(Pipeline).where(Pipeline.title == DEMO_TITLE).order_by(Pipeline.created_at)
    ).first()
    if existing is not None and len(nodes := list_nodes(session, existing)) == 10:
        for row in nodes:
            wanted = UPDATED_CONFIGS.get(row.title)
            if wanted is not None and row.config != wanted:
                update_node(session, row, config=wanted)
        return existing
    pipeline = create_pipeline(
        session, title=DEMO_TITLE, config={"demo": True}, metadata={"totalCost": 0}
    )
    local = {"provider": "local"}

    def node(title: str, node_type: str, **fields: Any) -> str:
        return create_node(session, pipeline, title=title, type=node_type, **fields).uuid

    script = node("Script", "asset", asset={"type": "text", "content": SCRIPT})
    code = node("Code sample", "asset", asset={"type": "text", "content": CODE})
    prompt = node("Animation prompt", "asset", asset={"type": "text", "content": PROMPT})
    voice = node("Voiceover", "generate-voiceover", inputs={"script": [script]}, config=local)
    head = node("Talking head", "talking-head", inputs={"script": [script]}, config=local)
    render = node("Code render", "render-code", inputs={"config": [code]}, config=local)
    animation = node(
        "Animation",
        "generate-animation",
        inputs={"prompt": [prompt]},
        config={**local, "duration": 4},
    )
    merge = node("Merge", "merge-videos", inputs={"segments": [animation, render]})
    mix = node(
        "Narration",
        "mix-audio",
        inputs={"video": [merge], "audio": [voice]},
        config=NARRATION_CONFIG,
    )
    node(
        "Final cut",
        "compose-video",
        inputs={"background": [mix], "overlay": [head]},
        config=FINAL_CUT_CONFIG,
    )
    return pipeline


def run_demo(
    *, settings: Any, echo: Callable[[str], None] = print, force: bool = False
) -> DemoResult:
    """Create (or reuse) the demo pipeline, materialize it through Dagster, report the MP4.

    The run goes through a Dagster instance under ``DAGSTER_HOME`` (by default
    ``VIDPIPE_HOME/dagster``), so ``vidpipe dev`` shows it afterwards. Nodes whose finished
    work is stored already reuse it unless ``force``.
    """
    from vidpipe_dagster.db.migrate import upgrade
    from vidpipe_dagster.db.session import make_engine, make_sessionmaker
    from vidpipe_dagster.db.snapshot import take_snapshot
    from vidpipe_dagster.runtime.dagster_home import ensure_dagster_home

    url = settings.resolved_database_url
    upgrade(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    with sessions() as session, session.begin():
        pipeline = ensure_demo_pipeline(session)
        pipeline_id, pipeline_uuid = pipeline.id, pipeline.uuid
        nodes = list_nodes(session, pipeline)
        snapshot = take_snapshot(session)
    echo(f"Demo pipeline {pipeline_uuid} ({len(nodes)} nodes) in {url}")
    home = ensure_dagster_home(settings)
    echo(f"Materializing through Dagster (DAGSTER_HOME={home}) with the local provider...")
    try:
        run_id, success = _materialize(
            settings=settings,
            sessions=sessions,
            snapshot=snapshot,
            pipeline=pipeline,
            nodes=nodes,
            echo=echo,
            force=force,
        )
        with sessions() as session:
            rows = list_nodes(session, session.get_one(Pipeline, pipeline_id))
    finally:
        engine.dispose()
    return demo_result(
        settings=settings, pipeline_uuid=pipeline_uuid, rows=rows, run_id=run_id, success=success
    )


def _materialize(
    *,
    settings: Any,
    sessions: sessionmaker[Session],
    snapshot: Any,
    pipeline: Pipeline,
    nodes: list[Node],
    echo: Callable[[str], None],
    force: bool,
) -> tuple[str, bool]:
    """Run the demo's nodes in process, printing their progress; (run id, success)."""
    import dagster as dg

    from vidpipe_dagster.assets.asset_keys import node_asset_key
    from vidpipe_dagster.domain.naming import names_of, run_tags
    from vidpipe_dagster.domain.signatures import FORCE_TAG

    job = _demo_job(settings=settings, snapshot=snapshot)
    names = names_of(sessions, [pipeline.uuid])[pipeline.uuid]
    keys = [node_asset_key(names, n.uuid) for n in nodes]
    run_id = str(uuid_lib.uuid4())
    stop = threading.Event()
    watcher = _progress_watcher(
        sessions, pipeline=pipeline, nodes=nodes, run_id=run_id, echo=echo, stop=stop
    )
    try:
        with dg.DagsterInstance.get() as instance:
            result = job.execute_in_process(
                instance=instance,
                asset_selection=keys,
                run_id=run_id,
                raise_on_error=False,
                run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
                tags={
                    **run_tags(names, source="demo"),
                    **({FORCE_TAG: "true"} if force else {}),
                },
            )
    finally:
        stop.set()
        watcher.join()
    return run_id, result.success


def _demo_job(*, settings: Any, snapshot: Any) -> Any:
    """The asset job of every pipeline in ``snapshot``, on the resource ``settings`` name."""
    from vidpipe_dagster.definitions import build_definitions
    from vidpipe_dagster.resources.dagster_resources import VidpipeResource

    resource = VidpipeResource(
        database_url=settings.resolved_database_url,
        storage_url=settings.resolved_storage_url,
        home=str(settings.resolved_home),
    )
    definitions = build_definitions(snapshot=snapshot, resource=resource)
    return definitions.resolve_implicit_global_asset_job_def()


def _progress_watcher(
    sessions: sessionmaker[Session],
    *,
    pipeline: Pipeline,
    nodes: list[Node],
    run_id: str,
    echo: Callable[[str], None],
    stop: threading.Event,
) -> threading.Thread:
    """A started thread printing the status changes of run ``run_id``'s nodes until ``stop``."""
    from vidpipe_dagster.runtime.demo_output import plan_positions, watch_progress

    watcher = threading.Thread(
        target=watch_progress,
        args=(sessions,),
        kwargs={
            "pipeline_id": pipeline.id,
            "run_id": run_id,
            "positions": plan_positions(nodes),
            "echo": echo,
            "stop": stop,
        },
        daemon=True,
    )
    watcher.start()
    return watcher


def main() -> int:
    """The demo's own process, as :func:`run_demo_in_foreground` starts it."""
    from vidpipe_dagster.settings import get_settings

    def echo(line: str) -> None:
        print(line, flush=True)

    from vidpipe_dagster.runtime.config_errors import explain

    settings = get_settings()
    try:
        result = run_demo(settings=settings, echo=echo, force="--force" in sys.argv[1:])
    except RuntimeError as error:
        print(f"Error: {error}", file=sys.stderr, flush=True)
        return 1
    except Exception as error:
        causes = (error, error.__cause__, error.__context__)
        message = next((m for c in causes if c is not None and (m := explain(c, settings))), None)
        if message is None:
            raise
        print(f"Error: {message}", file=sys.stderr, flush=True)
        return CONFIG_ERROR_EXIT_CODE
    report(result, echo)
    return 0


def _moment(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def settle_interrupted(settings: Any, *, since: datetime) -> str:
    """Fail demo nodes still ``in_progress`` as interrupted; say in one line what stopped."""
    from vidpipe_dagster.db.session import make_engine, make_sessionmaker
    from vidpipe_dagster.domain.lifecycle import INTERRUPTED, Lifecycle

    before = "Stopped the demo before it started rendering."
    try:
        engine = make_engine(settings.resolved_database_url)
    except Exception:  # noqa: BLE001 - nothing was made yet
        return before
    try:
        sessions = make_sessionmaker(engine)
        lifecycle = Lifecycle(sessions)
        with sessions() as session:
            rows = session.execute(
                select(Node.id, Node.title, Node.status, Node.metadata_)
                .join(Pipeline, Pipeline.id == Node.pipeline_id)
                .where(Pipeline.title == DEMO_TITLE)
                .order_by(Node.created_at, Node.id)
            ).all()
        stopped, counts = [], {"completed": 0, "pending": 0}
        for node_id, title, status, metadata in rows:
            metadata = metadata or {}
            if status == "in_progress" and not metadata.get("provider_job_id"):
                lifecycle.failed(str(node_id), INTERRUPTED, metadata.get("process_uuid"))
                stopped.append(title)
            elif status == "failed" and metadata.get("error") == INTERRUPTED:
                ended = _moment(metadata.get("completed_at"))
                if ended is not None and ended >= since:
                    stopped.append(title)
            elif status in counts:
                counts[status] += 1
    except Exception:  # noqa: BLE001 - the database was never created
        return before
    finally:
        engine.dispose()
    if not rows:
        return before
    names = ", ".join(f"'{title}'" for title in stopped)
    what = f"{names} interrupted (marked failed); " if stopped else ""
    return (
        f"Stopped the demo: {what}{counts['completed']} of {len(rows)} nodes completed, "
        f"{counts['pending']} not started. Run `vidpipe demo` again to finish."
    )


def _print_error(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_demo_in_foreground(
    *,
    settings: Any,
    echo: Callable[[str], None] = print,
    echo_error: Callable[[str], None] = _print_error,
    force: bool = False,
) -> int:
    """Run the demo in a child process, relaying its output and errors; return its exit code.

    Ctrl-C (or SIGTERM) interrupts the child's run, waits up to
    :data:`INTERRUPT_GRACE_SECONDS` for it to record the interruption, kills what is left,
    and prints a single line (:func:`settle_interrupted`); the exit code is then 130. A
    second Ctrl-C kills at once.
    """
    from vidpipe_dagster.db.models import utcnow
    from vidpipe_dagster.runtime.foreground import Relay, on_stop_signal, stop_groups

    begun = utcnow()
    process = subprocess.Popen(
        [sys.executable, "-m", "vidpipe_dagster.runtime.demo", *(["--force"] if force else [])],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        process_group=0,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    )
    relay = Relay(echo)
    relay.follow(process.stdout)
    relay.follow(process.stderr, echo=echo_error)
    interrupted = threading.Event()
    again = threading.Event()

    def stop(_signum: int) -> None:
        if interrupted.is_set():
            again.set()
            return
        interrupted.set()
        relay.mute()
        try:
            os.kill(process.pid, signal.SIGINT)
        except ProcessLookupError:
            pass

    with on_stop_signal(stop):
        while process.poll() is None and not interrupted.is_set():
            interrupted.wait(0.2)
        if interrupted.is_set():
            deadline = time.monotonic() + INTERRUPT_GRACE_SECONDS
            while process.poll() is None and time.monotonic() < deadline and not again.is_set():
                again.wait(0.05)
            stop_groups([process], grace=0.0 if again.is_set() else 0.3)
    relay.join(0.5)
    if not interrupted.is_set():
        return process.returncode
    echo(settle_interrupted(settings, since=begun))
    return INTERRUPTED_EXIT_CODE


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Everything is committed and closed by now; skipping the interpreter's final garbage
    # collection of Dagster's large heap saves seconds, so an interrupted demo ends at once.
    os._exit(code)
