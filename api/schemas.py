"""Request and response shapes of the editor's REST contract."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, field_validator

from vidpipe_dagster.db.models import Node, Pipeline
from vidpipe_dagster.domain.keys import camel_keys
from vidpipe_dagster.domain.validation import Validity

JsonObject = dict[str, Any]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore")


def _version_text(value: Any) -> Any:
    """A numeric ``version`` (``1``, ``2.5``) is stored as its text, as Rails did."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


class PipelineCreate(_Strict):
    """Body of ``POST /pipelines`` (inside ``{"pipeline": ...}``)."""

    title: StrictStr
    version: StrictStr | None = None
    config: JsonObject | None = None
    metadata: JsonObject | None = None

    _version = field_validator("version", mode="before")(_version_text)


class PipelineUpdate(_Strict):
    """Body of ``PATCH /pipelines/{uuid}``; only the keys sent change."""

    title: StrictStr | None = None
    version: StrictStr | None = None
    config: JsonObject | None = None
    metadata: JsonObject | None = None

    _version = field_validator("version", mode="before")(_version_text)


class NodeCreate(_Strict):
    """Body of ``POST /pipelines/{p}/nodes`` (inside ``{"node": ...}``)."""

    title: StrictStr
    type: StrictStr
    inputs: JsonObject | None = None
    config: JsonObject | None = None
    asset: JsonObject | None = None


class NodeUpdate(_Strict):
    """Body of ``PATCH /pipelines/{p}/nodes/{uuid}``; ``type`` and engine columns are ignored."""

    title: StrictStr | None = None
    inputs: JsonObject | None = None
    config: JsonObject | None = None
    asset: JsonObject | None = None


class ExecuteRequest(_Strict):
    """Body of ``POST /pipelines/{p}/execute``: which nodes to run."""

    node_uuids: list[StrictStr] | None = None
    only: StrictStr | None = Field(default=None, description="stale | failed | pending | all")
    force: StrictBool | None = Field(
        default=None, description="render even the nodes whose finished work could be reused"
    )


class NodeExecuteRequest(_Strict):
    """Optional body of ``POST /pipelines/{p}/nodes/{uuid}/execute``."""

    force: StrictBool | None = Field(
        default=None, description="render even when finished work could be reused"
    )


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z`` (naive values, as SQLite returns them, are UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def node_public(node: Node, *, validity: Validity, camel_output: bool = False) -> JsonObject:
    """A node as the editor reads it, with ``is_valid`` and ``validation_errors``.

    ``camel_output`` returns ``output``'s keys camelCase (``s3Key``), as the editor
    generation does; execution ``metadata`` is returned as stored (snake_case).
    """
    return {
        "uuid": node.uuid,
        "pipeline_uuid": node.pipeline_uuid,
        "title": node.title,
        "type": node.type,
        "status": node.status,
        "inputs": node.inputs if node.inputs is not None else {},
        "config": node.config if node.config is not None else {},
        "asset": node.asset,
        "metadata": node.metadata_,
        "output": camel_keys(node.output) if camel_output else node.output,
        "is_valid": validity.is_valid,
        "validation_errors": validity.errors,
        "created_at": iso(node.created_at),
        "updated_at": iso(node.updated_at),
    }


def pipeline_public(pipeline: Pipeline, *, nodes: list[JsonObject] | None = None) -> JsonObject:
    """A pipeline as the editor reads it, with its nodes' JSON when given."""
    body: JsonObject = {
        "uuid": pipeline.uuid,
        "title": pipeline.title,
        "version": pipeline.version,
        "config": pipeline.config if pipeline.config is not None else {},
        "metadata": pipeline.metadata_ if pipeline.metadata_ is not None else {},
        "created_at": iso(pipeline.created_at),
        "updated_at": iso(pipeline.updated_at),
    }
    if nodes is not None:
        body["nodes"] = nodes
    return body
