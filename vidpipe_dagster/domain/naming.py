"""The names a person reads in the Dagster UI: asset keys, groups, ops, schedules, run tags.

Each pipeline and node has a ``dagster_name`` made from its title once, when its row is
created (``db.names``, on every ORM flush), and kept from then on: renaming a node
changes its title and its asset description, never its asset key, so its materialization
history stays on the same key. Names are safe for Dagster (``[a-z0-9_]``, at most
:data:`MAX_NAME` characters, no Python keyword), unique among the pipelines and, for nodes,
within their pipeline (a clash gets ``_2``, ``_3``...).

Rows written by other means (the editor inserting into the tables) arrive without a name:
the code location records one before it reads the tables (``db.names.claim_missing_names``).
Where a name is still missing (the claim could not write), :func:`resolve_names` falls back to
one computed from the row alone, the same in every process.

A node's asset key path is ``[<pipeline name>, <node name>]``, made only by
:meth:`PipelineNames.key_path` (``assets.asset_keys.node_asset_key`` wraps it in a Dagster
asset key); its group is the pipeline name. A code location is the configured base
name, with ``_<shard>`` when pipelines are sharded. Nothing here imports Dagster, so the
API names runs and keys through this module.
"""

from __future__ import annotations

import logging
import uuid as uuid_lib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vidpipe_dagster.db.models import Node, Pipeline
from vidpipe_dagster.db.names import MAX_NAME, safe_name, unique_name
from vidpipe_dagster.db.snapshot import shard_of

log = logging.getLogger(__name__)


def pipeline_fallback(pipeline_uuid: str, title: Any) -> str:
    """The name of a pipeline with none recorded: its title and the start of its UUID."""
    stem = safe_name(title, fallback="pipeline")[: MAX_NAME - 9]
    return f"{stem}_{str(pipeline_uuid).replace('-', '')[:8]}"


def schedule_name(pipeline_name: str) -> str:
    """The name of the schedule built from a pipeline's ``config.schedule``."""
    return f"{pipeline_name}_schedule"


@dataclass(frozen=True)
class PipelineNames:
    """A pipeline's Dagster names: its group and each node's asset key, and their titles."""

    pipeline_uuid: str
    title: str
    group: str
    nodes: Mapping[str, str] = field(default_factory=dict)
    titles: Mapping[str, str] = field(default_factory=dict)

    def key_path(self, node_uuid: str) -> list[str]:
        """The asset key path of one of the pipeline's nodes: the pipeline's name, then the
        node's (a node it does not have is named by its UUID)."""
        name = self.nodes.get(node_uuid) or "node_" + str(node_uuid).replace("-", "_")
        return [self.group, name]

    def node_uuid(self, path: Sequence[str]) -> str | None:
        """The node whose asset key path is ``path``, None for any other path."""
        if len(path) != 2 or path[0] != self.group:
            return None
        return next((u for u, name in self.nodes.items() if name == path[1]), None)


def resolve_names(pipeline: Mapping[str, Any]) -> PipelineNames:
    """The names of a snapshot pipeline (``uuid``, ``title``, ``dagster_name``, ``nodes``).

    Recorded names are kept, in node order; a node without one (or with one an earlier
    node holds) gets the next free name from its title.
    """
    taken: set[str] = set()
    names: dict[str, str] = {}
    nodes = list(pipeline.get("nodes") or [])
    for node in nodes:
        recorded = node.get("dagster_name")
        if recorded and recorded not in taken:
            names[node["uuid"]] = recorded
            taken.add(recorded)
    for node in nodes:
        if node["uuid"] not in names:
            base = node.get("dagster_name") or safe_name(node.get("title"), fallback="node")
            names[node["uuid"]] = unique_name(base, taken)
            taken.add(names[node["uuid"]])
    return PipelineNames(
        pipeline_uuid=str(pipeline["uuid"]),
        title=str(pipeline.get("title") or ""),
        group=pipeline.get("dagster_name")
        or pipeline_fallback(pipeline["uuid"], pipeline.get("title")),
        nodes=names,
        titles={node["uuid"]: str(node.get("title") or "") for node in nodes},
    )


def pipeline_names(session: Session, pipeline_uuid: str) -> PipelineNames:
    """The names of a pipeline as its rows hold them now (what the compiler gives it)."""
    pipeline_id = uuid_lib.UUID(str(pipeline_uuid))
    row = session.execute(
        select(Pipeline.title, Pipeline.dagster_name).where(Pipeline.id == pipeline_id)
    ).first()
    nodes = session.execute(
        select(Node.id, Node.title, Node.dagster_name)
        .where(Node.pipeline_id == pipeline_id)
        .order_by(Node.created_at, Node.id)
    ).all()
    return resolve_names(
        {
            "uuid": str(pipeline_uuid),
            "title": row.title if row else "",
            "dagster_name": row.dagster_name if row else None,
            "nodes": [
                {"uuid": str(n.id), "title": n.title, "dagster_name": n.dagster_name} for n in nodes
            ],
        }
    )


def nodes_of_key_paths(
    session: Session, paths: Iterable[Sequence[str]]
) -> dict[tuple[str, ...], str]:
    """The node UUID of each path in ``paths`` that is a node's asset key path."""
    wanted = [tuple(path) for path in paths if len(path) == 2]
    groups = {path[0] for path in wanted}
    if not groups:
        return {}
    rows = session.execute(select(Pipeline.id).where(Pipeline.dagster_name.in_(groups))).all()
    found: dict[tuple[str, ...], str] = {}
    for (pipeline_id,) in rows:
        names = pipeline_names(session, str(pipeline_id))
        for path in wanted:
            node_uuid = names.node_uuid(path)
            if node_uuid is not None:
                found[path] = node_uuid
    return found


def names_of(sessions: Any, pipeline_uuids: Iterable[str]) -> dict[str, PipelineNames]:
    """:func:`pipeline_names` of each pipeline, read in one session of ``sessions``."""
    wanted = sorted(set(pipeline_uuids))
    if not wanted:
        return {}
    with sessions() as session:
        return {uuid: pipeline_names(session, uuid) for uuid in wanted}


PIPELINE_TAG = "vidpipe/pipeline"
TITLE_TAG = "vidpipe/pipeline_title"
NODES_TAG = "vidpipe/nodes"
MAX_TAG_VALUE = 200


def run_tags(
    names: PipelineNames, *, source: str, node_uuids: Iterable[str] = ()
) -> dict[str, str]:
    """The tags that say, in the runs list, which pipeline and nodes a run is for.

    ``vidpipe/pipeline`` (its UUID, for machines), ``vidpipe/pipeline_title`` and
    ``vidpipe/nodes`` (the nodes' titles) for people, and ``vidpipe/source``.
    """
    tags = {
        PIPELINE_TAG: names.pipeline_uuid,
        TITLE_TAG: _clip(names.title or names.group),
        "vidpipe/source": source,
    }
    titles = [names.titles.get(u) or names.nodes.get(u) or u for u in node_uuids]
    if titles:
        tags[NODES_TAG] = _clip(", ".join(titles))
    return tags


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TAG_VALUE else text[: MAX_TAG_VALUE - 1] + "…"


def location_name(base: str, *, shard: int | None, shards: int) -> str:
    """The code location name of a shard: ``base`` alone, or ``base_<shard>`` when sharded."""
    return base if shards <= 1 or shard is None else f"{base}_{shard}"


def pipeline_location(base: str, pipeline_uuid: str, *, shards: int) -> str:
    """The code location that compiles ``pipeline_uuid``: its shard's when sharded."""
    return location_name(base, shard=shard_of(pipeline_uuid, shards), shards=shards)
