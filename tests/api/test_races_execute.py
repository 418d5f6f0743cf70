"""Execute racing an edit on real PostgreSQL, through the real execute route: 1,000 trials.

Each trial makes a fresh pipeline with one asset node and releases, at one barrier, a
``PATCH`` of the node's asset (a config edit: same shape) and a ``POST .../execute`` of it,
both through the app. Only Dagster is stood in for, at its boundary (the launcher): a
launched run executes on its own thread as a run worker would, through the bridge's own
start (lifecycle ``started`` with the plan check of the shape the execute planned, which
copies the row's fields as they are when the node starts) and success with an output made
of the fields it executed. The checks: no 5xx and no exception (a deadlock surfaces as one
or the other), the execute is 202 with exactly one run, no node completes with fields its
row no longer holds (0 stale results), no launch claim is left behind, and every
pipeline's ``metadata.progress`` equals its nodes' statuses.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from tests.api.conftest import make_token
from tests.api.test_races import (
    CLIP,
    TRIALS,
    Trials,
    expect_status,
    fast_deadlocks,  # noqa: F401  (a fixture)
    make,
    node_url,
    progress_mismatches,
    race,
    row,
)
from vidpipe_dagster.domain.launches import LAUNCHING_KEY
from vidpipe_dagster.domain.lifecycle import Lifecycle
from vidpipe_dagster.runs.plans import StalePlanError, node_shape, plan_check, row_fields
from vidpipe_dagster.settings import Settings


class InProcessDagster:
    """The launcher's Dagster side, in this process: each launch is a run on a thread."""

    def __init__(self, sessions) -> None:
        self.lifecycle = Lifecycle(sessions)
        self.sessions = sessions
        self.runs: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def active_runs(
        self, *, pipeline_uuid: str, node_uuids: Sequence[str], names: Any = None
    ) -> dict[str, tuple[str, str]]:
        """Runs not finished that materialize any of the nodes."""
        with self._lock:
            return {
                node: (run_id, "STARTED")
                for run_id, run in self.runs.items()
                if run["thread"].is_alive()
                for node in node_uuids
                if node in run["nodes"]
            }

    def launch(
        self,
        *,
        pipeline_uuid: str,
        node_uuids: Sequence[str],
        tags: Mapping[str, str] | None = None,
        shapes: Mapping[str, str] | None = None,
        compile_error: Any = None,
        names: Any = None,
    ) -> str:
        """Plan the nodes as their rows are now (the shape must match the execute's, as the
        real launcher's location check makes sure) and run them on a thread."""
        run_id = str(uuid.uuid4())
        planned = {node: row_fields(row(self.sessions, node)) for node in node_uuids}
        for node, fields in planned.items():
            assert node_shape(fields) == (shapes or {})[node], "the plan lost the execute's shape"
        thread = threading.Thread(target=self._execute, args=(run_id, planned))
        with self._lock:
            self.runs[run_id] = {"nodes": set(node_uuids), "thread": thread, "results": {}}
        thread.start()
        return run_id

    def _execute(self, run_id: str, planned: dict[str, dict[str, Any]]) -> None:
        results = self.runs[run_id]["results"]
        for node, fields in planned.items():
            ran: dict[str, Any] = {}
            try:
                process = self.lifecycle.started(
                    node,
                    {"dagster_run_id": run_id},
                    check=plan_check(fields, force_local=True, into=ran),
                )
            except StalePlanError:
                results[node] = "refused"
                continue
            except Exception as error:  # recorded: the trial reports it as a problem
                results[node] = f"started raised {type(error).__name__}: {error}"
                continue
            output = {"type": "text", "content": ran["asset"]["content"], "s3_key": f"k/{run_id}"}
            done = self.lifecycle.succeeded(node, output, process)
            results[node] = "completed" if done else "dropped"

    def join(self, run_id: str) -> dict[str, str]:
        """Wait for the run to end; what became of each node."""
        self.runs[run_id]["thread"].join(timeout=30)
        return self.runs[run_id]["results"]


pytestmark = pytest.mark.usefixtures("fast_deadlocks")

EDIT_LAG_SECONDS = 0.25
"""At most how long the edit waits after the barrier: an execute takes about this long to
launch and start its node, so the edit lands before, during and after the start."""


@pytest.fixture
def dagster(sessions) -> InProcessDagster:
    return InProcessDagster(sessions)


@pytest.fixture
def execute_client(sessions, dagster) -> Iterator[TestClient]:
    """The real app on the test database, launching into :class:`InProcessDagster`."""
    app = create_app(
        settings=Settings(providers="local"),
        sessions=sessions,
        notify_change=lambda _p: None,
        launcher=lambda: dagster,
    )
    token = make_token(sessions, admin=True)
    with TestClient(
        app, raise_server_exceptions=False, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        yield client


def test_execute_racing_an_edit(execute_client, sessions, dagster) -> None:
    trials = Trials()

    def trial(index: int) -> None:
        pipeline, (node,) = make(sessions, CLIP)
        edited = {"type": "text", "content": f"v{index}"}
        lag = random.uniform(0, EDIT_LAG_SECONDS)

        def edit():
            time.sleep(lag)
            return execute_client.patch(node_url(pipeline, node), json={"node": {"asset": edited}})

        patch, execute = race(
            edit, lambda: execute_client.post(f"{node_url(pipeline, node)}/execute")
        )
        expect_status(trials, index, patch, 200)
        launched = expect_status(trials, index, execute, 202)
        if launched is None:
            return
        results = dagster.join(launched.json()["run_id"])
        after = row(sessions, node)
        metadata = after.metadata_ or {}
        if after.asset != edited:
            trials.problem(index, f"the edit was lost: asset {after.asset}")
        if results.get(node) not in ("completed", "dropped"):
            trials.problem(index, f"the run {results.get(node)}")
        if after.status == "completed" and after.output.get("content") != edited["content"]:
            trials.problem(index, f"stale result: completed with {after.output}")
        if after.status not in ("completed", "pending"):
            trials.problem(index, f"ended {after.status}: {metadata.get('error')}")
        if LAUNCHING_KEY in metadata:
            trials.problem(index, f"a launch claim was left behind: {metadata[LAUNCHING_KEY]}")
        trials.outcome(f"run {results.get(node)}, node {after.status}")

    seconds = trials.run(trial)
    trials.check(seconds=seconds)
    assert progress_mismatches(sessions) == []
    assert len(dagster.runs) == TRIALS
    print(f"execute vs edit: {TRIALS} trials in {seconds:.1f} s, {trials.outcomes}")
