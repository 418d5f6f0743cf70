"""The code server answers each snapshot request of the same definitions from one build."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dagster
import pytest
from dagster._core.remote_origin import InProcessCodeLocationOrigin, RemoteRepositoryOrigin
from dagster._core.remote_representation.external_data import RepositorySnap
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._grpc.__generated__ import dagster_api_pb2
from dagster._grpc.server import DagsterApiServer, FuturesAwareThreadPoolExecutor
from dagster._serdes import deserialize_value, serialize_value

from vidpipe_dagster.orchestration import code_server

DEFS_FILE = Path(__file__).parent / "fixtures_defs" / "tiny.py"


@pytest.fixture
def server():
    origin = LoadableTargetOrigin(python_file=str(DEFS_FILE), attribute="defs")
    api = DagsterApiServer(
        threading.Event(),
        logging.getLogger("test_code_server"),
        FuturesAwareThreadPoolExecutor(max_workers=4),
        loadable_target_origin=origin,
    )
    (name,) = api._loaded_repositories.definitions_by_name
    return api, RemoteRepositoryOrigin(InProcessCodeLocationOrigin(origin), name)


def _repository_request(origin, *, defer: bool = True):
    return dagster_api_pb2.ExternalRepositoryRequest(
        serialized_repository_python_origin=serialize_value(origin), defer_snapshots=defer
    )


def test_the_memo_is_written_for_the_pinned_dagster():
    # a Dagster upgrade must re-check the wrapped private methods before the memo applies
    assert dagster.__version__ == code_server.TESTED_DAGSTER
    assert code_server.install() is True
    assert code_server.install() is True  # idempotent


def test_repository_snapshot_is_built_once_for_concurrent_and_later_callers(server):
    api, origin = server
    before = code_server.MEMO.computed
    request = _repository_request(origin)
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(
            pool.map(lambda _: api._get_serialized_external_repository_data(request), range(4))
        )
    answers.append(api._get_serialized_external_repository_data(request))
    assert code_server.MEMO.computed == before + 1
    assert all(answer is answers[0] for answer in answers)
    snap = deserialize_value(answers[0], RepositorySnap)
    repo = api._loaded_repositories.definitions_by_name[origin.repository_name]
    fresh = RepositorySnap.from_def(repo, defer_snapshots=True)
    assert snap == deserialize_value(serialize_value(fresh), RepositorySnap)
    assert {node.asset_key.to_user_string() for node in snap.asset_nodes} == {
        "upstream",
        "downstream",
    }
    # the non-deferred form is a different answer, built on its own
    full = api._get_serialized_external_repository_data(_repository_request(origin, defer=False))
    assert code_server.MEMO.computed == before + 2
    assert deserialize_value(full, RepositorySnap).has_job_data()


def test_job_snapshot_is_built_once(server):
    api, origin = server
    before = code_server.MEMO.computed
    request = dagster_api_pb2.ExternalJobRequest(
        serialized_repository_origin=serialize_value(origin), job_name="__ASSET_JOB"
    )
    first = api.ExternalJob(request, None)
    second = api.ExternalJob(request, None)
    assert first.serialized_job_data and second is first
    assert code_server.MEMO.computed == before + 1


def test_errors_are_answered_and_never_stored(server):
    api, origin = server
    before = code_server.MEMO.computed
    missing_job = dagster_api_pb2.ExternalJobRequest(
        serialized_repository_origin=serialize_value(origin), job_name="no_such_job"
    )
    for _ in range(2):
        reply = api.ExternalJob(missing_job, None)
        assert not reply.serialized_job_data and "no_such_job" in reply.serialized_error
    assert code_server.MEMO.computed == before + 2
    # an unknown repository goes straight to Dagster's own error answer
    unknown = RemoteRepositoryOrigin(origin.code_location_origin, "no_such_repository")
    answer = api._get_serialized_external_repository_data(_repository_request(unknown))
    assert "ExternalRepositoryErrorData" in answer and "no_such_repository" in answer


def test_a_new_definitions_object_is_not_answered_from_the_old_one():
    memo = code_server.SnapshotMemo()
    first, second = object(), object()
    assert memo.get(first, ("k",), lambda: "a", bool) == "a"
    assert memo.get(first, ("k",), lambda: "changed", bool) == "a"
    assert memo.get(second, ("k",), lambda: "b", bool) == "b"
    assert memo.get(first, ("e",), lambda: "", bool) == ""
    assert memo.get(first, ("e",), lambda: "x", bool) == "x"  # falsy answers were not kept
    assert memo.computed == 4


def test_definitions_built_twice_from_the_same_state_compile_once(tmp_path, monkeypatch):
    """Dagster resolves the definitions function twice per process start: compile once."""
    from vidpipe_dagster.orchestration import components as pipelines
    from vidpipe_dagster.orchestration.components import PipelinesComponent

    compiled: list[int] = []
    real_compile = pipelines.compile_snapshot

    def counting_compile(snapshot):
        compiled.append(len(snapshot["pipelines"]))
        return real_compile(snapshot)

    monkeypatch.setattr(pipelines, "compile_snapshot", counting_compile)
    node = {"uuid": "6a9f1f36-1c61-4f7c-9d5e-3e1b1f0c2a11", "title": "Script", "type": "asset"}
    pipeline = {"uuid": "0b3f6d4e-2a8c-4b1e-8f5d-7c9a1e2b3d4f", "title": "P", "config": {}}
    state = tmp_path / "state"
    state.write_text(
        json.dumps({"latest_updated_at": "m1", "pipelines": [{**pipeline, "nodes": [node]}]})
    )
    component = PipelinesComponent(database_url="sqlite://", location="vidpipe")

    first = component.build_defs_from_state(None, state)
    assert component.build_defs_from_state(None, state) is first
    assert compiled == [1]

    second_node = {**node, "uuid": "9c4e2f1a-7b3d-4e5f-8a6b-1c2d3e4f5a6b", "title": "More"}
    state.write_text(
        json.dumps(
            {"latest_updated_at": "m2", "pipelines": [{**pipeline, "nodes": [node, second_node]}]}
        )
    )
    changed = component.build_defs_from_state(None, state)
    assert changed is not first and compiled == [1, 1]
    assert sum(len(asset.keys) for asset in changed.assets) == 2
    # another shard's component never gets this shard's build
    other = PipelinesComponent(database_url="sqlite://", location="vidpipe_1", shard=1, shards=2)
    assert other.build_defs_from_state(None, state) is not changed
    assert len(compiled) == 3


def test_gc_thresholds_are_raised_only_from_python_defaults():
    import gc

    saved = gc.get_threshold()
    try:
        gc.set_threshold(*code_server.PYTHON_GC_DEFAULTS)
        assert code_server.tune_gc() is True
        assert gc.get_threshold() == code_server.GC_THRESHOLDS
        gc.set_threshold(5000, 20, 20)  # someone tuned it: leave it
        assert code_server.tune_gc() is False
        assert gc.get_threshold() == (5000, 20, 20)
    finally:
        gc.set_threshold(*saved)


PROBE = """
import json, sys
from dagster._grpc.server import DagsterApiServer
import vidpipe_dagster.definitions
from vidpipe_dagster.orchestration import code_server
state = {"after_import": getattr(DagsterApiServer, code_server._MARK, False)}
code_server.prepare_process(memo=sys.argv[1] == "on")
state["after_prepare"] = getattr(DagsterApiServer, code_server._MARK, False)
print(json.dumps(state))
"""


@pytest.mark.parametrize(("memo", "wrapped"), [("on", True), ("off", False)])
def test_the_memo_is_applied_when_the_location_loads_and_only_when_asked(memo, wrapped):
    done = subprocess.run(
        [sys.executable, "-c", PROBE, memo],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    state = json.loads(done.stdout.strip().splitlines()[-1])
    assert state == {"after_import": False, "after_prepare": wrapped}
