"""Every name vidpipe gives a pipeline in Dagster, derived from the UUIDs (no Dagster import).

A pipeline is ``pipeline_<uuid with underscores>`` (its group, op and key prefix); a node's
asset key is ``[pipeline_<uuid>, node_<uuid>]``; a schedule is ``pipeline_<uuid>_schedule``;
a code location is the configured base name, with ``_<shard>`` when pipelines are sharded.
The API names locations and asset keys through this module, so a write or an execute does
not import Dagster; the compiler builds ``dg.AssetKey`` values from the same paths.
"""

from __future__ import annotations

from collections.abc import Sequence

from vidpipe_dagster.db.snapshot import shard_of

PIPELINE_PREFIX = "pipeline_"
NODE_PREFIX = "node_"


def stem(prefix: str, uuid: str) -> str:
    """``prefix`` and the UUID with underscores for dashes (a valid Dagster name)."""
    return prefix + str(uuid).replace("-", "_")


def unstem(prefix: str, name: str) -> str | None:
    """The UUID of a name made by :func:`stem` with ``prefix``, else ``None``."""
    if not name.startswith(prefix):
        return None
    return name[len(prefix) :].replace("_", "-")


def pipeline_name(pipeline_uuid: str) -> str:
    """The group, op and key-prefix name of a pipeline: ``pipeline_<uuid with underscores>``."""
    return stem(PIPELINE_PREFIX, pipeline_uuid)


def node_key_path(*, pipeline_uuid: str, node_uuid: str) -> list[str]:
    """The path of a node's asset key: ``[pipeline_<uuid>, node_<uuid>]``."""
    return [pipeline_name(pipeline_uuid), stem(NODE_PREFIX, node_uuid)]


def uuids_from_key_path(path: Sequence[str]) -> tuple[str, str] | None:
    """``(pipeline_uuid, node_uuid)`` for a node's asset key path, None for any other."""
    if len(path) != 2:
        return None
    pipeline_uuid = unstem(PIPELINE_PREFIX, path[0])
    node_uuid = unstem(NODE_PREFIX, path[1])
    if pipeline_uuid is None or node_uuid is None:
        return None
    return pipeline_uuid, node_uuid


def schedule_name(pipeline_uuid: str) -> str:
    """The name of the schedule built from a pipeline's ``config.schedule``."""
    return f"{pipeline_name(pipeline_uuid)}_schedule"


def location_name(base: str, *, shard: int | None, shards: int) -> str:
    """The code location name of a shard: ``base`` alone, or ``base_<shard>`` when sharded."""
    return base if shards <= 1 or shard is None else f"{base}_{shard}"


def pipeline_location(base: str, pipeline_uuid: str, *, shards: int) -> str:
    """The code location that compiles ``pipeline_uuid``: its shard's when sharded."""
    return location_name(base, shard=shard_of(pipeline_uuid, shards), shards=shards)
