"""Executor test helpers: a context on local storage and stored upstream outputs."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from vidpipe_dagster.assets.base import ExecutionContext, NodeSpec, UpstreamNode
from vidpipe_dagster.resources.lambda_invoker import LocalLambdaInvoker
from vidpipe_dagster.resources.storage import LocalStorage, Storage
from vidpipe_dagster.settings import Settings

PIPELINE = "pipe-1"


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    """Local storage in a fresh directory."""
    return LocalStorage(tmp_path / "storage")


@pytest.fixture
def make_ctx(tmp_path: Path) -> Callable[..., ExecutionContext]:
    """``make_ctx(storage, settings=None)``: a context with a new process UUID and workdir."""

    def make(storage: Storage, settings: Settings | None = None) -> ExecutionContext:
        workdir = tmp_path / f"work-{uuid.uuid4().hex[:8]}"
        workdir.mkdir()
        return ExecutionContext(
            storage=storage,
            invoker=LocalLambdaInvoker(),
            settings=settings or Settings(),
            process_uuid=str(uuid.uuid4()),
            workdir=workdir,
            log=lambda message: None,
        )

    return make


@pytest.fixture
def stored_video(storage: LocalStorage) -> Callable[..., UpstreamNode]:
    """``stored_video(path, title)``: an upstream node whose output is ``path`` in storage."""

    def make(path: Path, title: str, *, media_type: str = "video") -> UpstreamNode:
        node_uuid = f"{title.lower().replace(' ', '-')}-{uuid.uuid4().hex[:6]}"
        key = f"pipelines/{PIPELINE}/nodes/{node_uuid}/{uuid.uuid4()}{path.suffix}"
        size = storage.put_file(key, path)
        return UpstreamNode(
            uuid=node_uuid,
            title=title,
            type="asset",
            status="completed",
            output={"type": media_type, "s3_key": key, "size": size, "duration": 1.0},
        )

    return make


def node(node_type: str, *, title: str = "Node", **fields: object) -> NodeSpec:
    """A NodeSpec in the test pipeline."""
    return NodeSpec(
        uuid=f"{node_type}-{uuid.uuid4().hex[:6]}",
        pipeline_uuid=PIPELINE,
        title=title,
        type=node_type,
        **fields,  # type: ignore[arg-type]
    )


@pytest.fixture(autouse=True)
def tone_narration(monkeypatch: pytest.MonkeyPatch) -> None:
    """Executor tests narrate with the tone (as without a voice installed): they are about
    the executors, and the tone's length is exactly the script's reading time. The voice has
    its own tests in tests/resources/test_speech.py."""
    from vidpipe_dagster.resources.providers import local

    monkeypatch.setattr(local, "speak", lambda text, out: None)
