"""Rows for the Dagster tests: pipelines and nodes written straight into the tables."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from vidpipe_dagster.db.models import Node, Pipeline

NAMESPACE = uuid.UUID("6f1c1f37-9a53-4a4e-9d0e-5b0f4f1d2c11")


def fixed_uuid(name: str) -> str:
    """A UUID derived from ``name``, the same in every run."""
    return str(uuid.uuid5(NAMESPACE, name))


@dataclass
class NodeRow:
    """A node to insert; ``inputs`` may name other nodes of the same pipeline by ``name``."""

    name: str
    type: str
    inputs: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    asset: dict[str, Any] | None = None
    title: str | None = None


def add_pipeline(
    sessions: sessionmaker[Session],
    *,
    name: str,
    nodes: list[NodeRow],
    config: dict[str, Any] | None = None,
) -> dict[str, str]:
    """Insert a pipeline and its nodes; return ``{"pipeline": uuid, <node name>: uuid}``.

    Input values that are node names (in lists or as a single string) become their UUIDs;
    anything else is written verbatim (so dangling references can be made on purpose).
    """
    uuids = {"pipeline": fixed_uuid(name)}
    uuids.update({node.name: fixed_uuid(f"{name}/{node.name}") for node in nodes})

    def resolve(value: Any) -> Any:
        if isinstance(value, list):
            return [uuids.get(item, item) for item in value]
        return uuids.get(value, value)

    with sessions() as session, session.begin():
        session.add(Pipeline(id=uuid.UUID(uuids["pipeline"]), title=name, config=config or {}))
        session.flush()
        for node in nodes:
            session.add(
                Node(
                    id=uuid.UUID(uuids[node.name]),
                    pipeline_id=uuid.UUID(uuids["pipeline"]),
                    title=node.title or node.name,
                    type=node.type,
                    inputs={slot: resolve(value) for slot, value in node.inputs.items()},
                    config=node.config,
                    asset=node.asset,
                )
            )
            session.flush()
    return uuids


DEMO_NODES = [
    NodeRow("script", "asset", asset={"type": "text", "text": "Hello from vidpipe."}),
    NodeRow("voiceover", "generate-voiceover", inputs={"script": ["script"]}),
    NodeRow("talking", "talking-head", inputs={"script": ["script"]}),
    NodeRow("code", "render-code", config={"provider": "local", "code": "print(1)"}),
    NodeRow("animation", "generate-animation", inputs={"prompt": ["script"]}),
    NodeRow("merge", "merge-videos", inputs={"segments": ["code", "animation"]}),
    NodeRow("mix", "mix-audio", inputs={"video": "merge", "audio": ["voiceover"]}),
    NodeRow(
        "compose",
        "compose-video",
        inputs={"background": ["mix"], "overlay": ["talking"]},
        config={"position": "bottom-right", "scale": 0.3},
    ),
]
