"""Edits racing the engine on real PostgreSQL: 1,000 trials each, many threads at once.

Each trial makes a fresh pipeline, then releases two callers at one barrier: an API request
through the real app (PATCH or DELETE of a node) and an engine transition on the same node
(lifecycle success or start, or a provider's failure webhook through the app). The checks:
no 5xx and no exception from either side (a deadlock surfaces as one or the other), the
row ends as the later writer left it (an edit always leaves the node ``pending``; a
transition that lost to it changes nothing), and every pipeline's ``metadata.progress``
equals its nodes' statuses.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.main import create_app
from tests.api.conftest import BASE, make_token
from vidpipe_dagster.db.models import Node, Pipeline
from vidpipe_dagster.domain.lifecycle import Lifecycle
from vidpipe_dagster.domain.nodes import create_node
from vidpipe_dagster.domain.pipelines import create_pipeline
from vidpipe_dagster.domain.progress import count_statuses
from vidpipe_dagster.settings import Settings

TRIALS = 1000
WORKERS = 8
WEBHOOK_SECRET = "whsec-races"


class Trials:
    """Runs trials concurrently and keeps what went wrong, and how the races fell."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.outcomes: dict[str, int] = {}
        self._lock = threading.Lock()

    def problem(self, trial: int, text: str) -> None:
        """Record a failed check."""
        with self._lock:
            self.problems.append(f"trial {trial}: {text}")

    def outcome(self, name: str) -> None:
        """Count which side won a race."""
        with self._lock:
            self.outcomes[name] = self.outcomes.get(name, 0) + 1

    def run(self, trial: Callable[[int], None], *, count: int = TRIALS) -> float:
        """Run ``trial(i)`` for ``count`` trials on ``WORKERS`` threads; wall seconds."""
        started = time.monotonic()

        def guarded(index: int) -> None:
            try:
                trial(index)
            except Exception as error:  # a broken trial is a finding, not a crash
                self.problem(index, f"{type(error).__name__}: {error}")

        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(guarded, range(count)))
        return time.monotonic() - started

    def check(self, *, seconds: float) -> None:
        """Fail with the first problems found."""
        shown = "\n".join(self.problems[:10])
        assert not self.problems, f"{len(self.problems)} problem(s) in {seconds:.1f} s:\n{shown}"


ENGINE_LAG_SECONDS = 0.03
"""At most how long the engine side waits after the barrier: a request through the app takes
longer to reach its first lock, so this spreads the races over both orders."""


def race(api: Callable[[], Any], engine: Callable[[], Any]) -> list[tuple[str, Any]]:
    """Run ``api`` and ``engine`` at once (released by one barrier, each after a random
    pause); ``("ok", value)`` or ``("error", exception)`` for each, in that order."""
    sides = (api, engine)
    lags = (0.003, ENGINE_LAG_SECONDS)
    barrier = threading.Barrier(len(sides))
    results: list[tuple[str, Any]] = [("error", None)] * len(sides)

    def run(index: int) -> None:
        barrier.wait()
        time.sleep(random.uniform(0, lags[index]))
        try:
            results[index] = ("ok", sides[index]())
        except Exception as error:
            results[index] = ("error", error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(1, len(sides))]
    for thread in threads:
        thread.start()
    run(0)
    for thread in threads:
        thread.join()
    return results


def expect_status(trials: Trials, trial: int, result: tuple[str, Any], status: int) -> Any:
    """The response of a side that must answer ``status``; problems recorded otherwise."""
    kind, response = result
    if kind == "error":
        trials.problem(trial, f"request raised {type(response).__name__}: {response}")
        return None
    if response.status_code != status:
        trials.problem(trial, f"answered {response.status_code}: {response.text[:200]}")
        return None
    return response


def expect_ok(trials: Trials, trial: int, result: tuple[str, Any]) -> Any:
    """The value of an engine side that must not raise."""
    kind, value = result
    if kind == "error":
        trials.problem(trial, f"engine call raised {type(value).__name__}: {value}")
    return value if kind == "ok" else None


def make(
    sessions: sessionmaker[Session], *nodes: dict[str, Any], title: str = "Race"
) -> tuple[str, list[str]]:
    """A pipeline with ``nodes`` (create fields); ``(pipeline uuid, node uuids)``."""
    with sessions() as session, session.begin():
        pipeline = create_pipeline(session, title=title)
        made = [create_node(session, pipeline, **fields) for fields in nodes]
        return pipeline.uuid, [node.uuid for node in made]


def row(sessions: sessionmaker[Session], node_uuid: str) -> Node | None:
    """The node's row now."""
    with sessions() as session:
        return session.get(Node, uuid.UUID(node_uuid))


def progress_mismatches(sessions: sessionmaker[Session]) -> list[str]:
    """Pipelines whose ``metadata.progress`` differs from their nodes' statuses."""
    wrong = []
    with sessions() as session:
        for pipeline in session.scalars(select(Pipeline)):
            recorded = (pipeline.metadata_ or {}).get("progress")
            actual = count_statuses(session, pipeline.id)
            if recorded != actual:
                wrong.append(f"{pipeline.uuid}: recorded {recorded}, actual {actual}")
    return wrong


CLIP = {"title": "Clip", "type": "asset", "asset": {"type": "text", "content": "v0"}}
OUTPUT = {"type": "text", "s3_key": "pipelines/p/nodes/n/x.txt", "size": 2}


@pytest.fixture
def fast_deadlocks(engine) -> Iterator[None]:
    """Detect deadlocks after 100 ms rather than 1 s, so trials that deadlock end fast."""
    with engine.connect() as connection:
        name = connection.exec_driver_sql("SELECT current_database()").scalar_one()
        connection.exec_driver_sql(f"ALTER DATABASE \"{name}\" SET deadlock_timeout = '100ms'")
        connection.commit()
    engine.dispose()
    yield
    with engine.connect() as connection:
        connection.exec_driver_sql(f'ALTER DATABASE "{name}" RESET deadlock_timeout')
        connection.commit()
    engine.dispose()


@pytest.fixture
def app_client(sessions, fast_deadlocks, fake_heygen) -> Iterator[TestClient]:
    """The real app on the test database (webhooks verified with ``WEBHOOK_SECRET``)."""
    settings = Settings(
        heygen_api_key=fake_heygen.api_key,
        heygen_base_url=fake_heygen.url,
        heygen_webhook_secret=WEBHOOK_SECRET,
    )
    app = create_app(settings=settings, sessions=sessions, notify_change=lambda _p: None)
    token = make_token(sessions, admin=True)
    with TestClient(
        app, raise_server_exceptions=False, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        yield client


def node_url(pipeline_uuid: str, node_uuid: str) -> str:
    return f"{BASE}/{pipeline_uuid}/nodes/{node_uuid}"


def test_edit_racing_a_success(app_client, sessions) -> None:
    lifecycle, trials = Lifecycle(sessions), Trials()

    def trial(index: int) -> None:
        pipeline, (node,) = make(sessions, CLIP)
        process = lifecycle.started(node)
        patch, success = race(
            lambda: app_client.patch(
                node_url(pipeline, node), json={"node": {"config": {"take": index}}}
            ),
            lambda: lifecycle.succeeded(node, OUTPUT, process),
        )
        response = expect_status(trials, index, patch, 200)
        won = expect_ok(trials, index, success)
        after = row(sessions, node)
        if response is not None and response.json()["node"]["status"] != "pending":
            trials.problem(index, f"PATCH answered a {response.json()['node']['status']} node")
        if after.status != "pending" or after.config != {"take": index}:
            trials.problem(index, f"node ended {after.status} with config {after.config}")
        if won is False and after.output is not None:
            trials.problem(index, "a dropped success left its output")
        trials.outcome("success first" if won else "edit first")

    seconds = trials.run(trial)
    trials.check(seconds=seconds)
    assert progress_mismatches(sessions) == []
    print(f"edit vs success: {TRIALS} trials in {seconds:.1f} s, {trials.outcomes}")


def test_edit_racing_a_failure_webhook(app_client, sessions, fake_heygen) -> None:
    lifecycle, trials = Lifecycle(sessions), Trials()
    talk = {"title": "Talk", "type": "talking-head", "config": {"provider": "heygen"}}

    def trial(index: int) -> None:
        pipeline, (node,) = make(sessions, talk)
        job = f"race-job-{index}-{uuid.uuid4().hex[:6]}"
        process = lifecycle.started(node)
        lifecycle.updated(
            node, {"provider": "heygen", "provider_job_id": job, "stage": "submitted"}, process
        )
        body, headers = fake_heygen.webhook(job, secret=WEBHOOK_SECRET, success=False)
        patch, hook = race(
            lambda: app_client.patch(
                node_url(pipeline, node),
                json={"node": {"config": {"provider": "heygen", "take": index}}},
            ),
            lambda: app_client.post("/v1/webhooks/heygen", content=body, headers=headers),
        )
        expect_status(trials, index, patch, 200)
        delivered = expect_status(trials, index, hook, 200)
        after = row(sessions, node)
        if after.status != "pending":
            trials.problem(index, f"node ended {after.status}, not pending after the edit")
        if delivered is not None:
            outcome = delivered.json()["outcome"]
            if outcome not in ("failed", "dropped", "ignored"):
                trials.problem(index, f"webhook outcome {outcome}")
            trials.outcome(f"webhook {outcome}")

    seconds = trials.run(trial)
    trials.check(seconds=seconds)
    assert progress_mismatches(sessions) == []
    print(f"edit vs failure webhook: {TRIALS} trials in {seconds:.1f} s, {trials.outcomes}")


def test_delete_racing_a_success(app_client, sessions) -> None:
    lifecycle, trials = Lifecycle(sessions), Trials()

    def trial(index: int) -> None:
        pipeline, (node, sibling) = make(sessions, CLIP, {**CLIP, "title": "Sibling"})
        process = lifecycle.started(node)
        delete, success = race(
            lambda: app_client.delete(node_url(pipeline, node)),
            lambda: lifecycle.succeeded(node, OUTPUT, process),
        )
        expect_status(trials, index, delete, 204)
        won = expect_ok(trials, index, success)
        if row(sessions, node) is not None:
            trials.problem(index, "the deleted node is still there")
        if row(sessions, sibling).status != "pending":
            trials.problem(index, "the sibling changed status")
        trials.outcome("success first" if won else "delete first")

    seconds = trials.run(trial)
    trials.check(seconds=seconds)
    assert progress_mismatches(sessions) == []
    with sessions() as session:
        totals = {p.metadata_["progress"]["total"] for p in session.scalars(select(Pipeline))}
    assert totals == {1}
    print(f"delete vs success: {TRIALS} trials in {seconds:.1f} s, {trials.outcomes}")


def test_edit_racing_an_execution_start(app_client, sessions) -> None:
    """A run starting the node (lifecycle ``started``) as the editor PATCHes it: whichever
    lands second decides, and a start the edit superseded can't complete the node."""
    lifecycle, trials = Lifecycle(sessions), Trials()

    def trial(index: int) -> None:
        pipeline, (node,) = make(sessions, CLIP)
        patch, start = race(
            lambda: app_client.patch(
                node_url(pipeline, node), json={"node": {"config": {"take": index}}}
            ),
            lambda: lifecycle.started(node, {"dagster_run_id": f"run-{index}"}),
        )
        expect_status(trials, index, patch, 200)
        process = expect_ok(trials, index, start)
        if process is None:
            return
        superseded = row(sessions, node).metadata_.get("superseded_process_uuid") == process
        completed = lifecycle.succeeded(node, OUTPUT, process)
        after = row(sessions, node)
        if superseded and (completed or after.status != "pending"):
            trials.problem(index, f"a start superseded by the edit completed ({after.status})")
        if not superseded and (not completed or after.status != "completed"):
            trials.problem(index, f"a start after the edit did not complete ({after.status})")
        if after.config != {"take": index}:
            trials.problem(index, f"config ended {after.config}")
        trials.outcome("start first" if superseded else "edit first")

    seconds = trials.run(trial)
    trials.check(seconds=seconds)
    assert progress_mismatches(sessions) == []
    print(f"edit vs execution start: {TRIALS} trials in {seconds:.1f} s, {trials.outcomes}")
