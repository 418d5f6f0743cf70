"""Pipeline commands: create, update, destroy, and lookups that 404 cleanly."""

from __future__ import annotations

import uuid as uuid_lib
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from vidpipe_dagster.db.models import Node, Pipeline
from vidpipe_dagster.domain import events
from vidpipe_dagster.domain.errors import NotFoundError, ValidationError

PIPELINE_FIELDS = ("title", "version", "config", "metadata")


def parse_uuid(value: str | uuid_lib.UUID, *, what: str) -> uuid_lib.UUID:
    """Parse a UUID from a path or body, raising ``NotFoundError("<what> not found")``."""
    if isinstance(value, uuid_lib.UUID):
        return value
    try:
        return uuid_lib.UUID(str(value))
    except ValueError as error:
        raise NotFoundError(f"{what} not found") from error


def get_pipeline(session: Session, pipeline_uuid: str, *, lock: bool = False) -> Pipeline:
    """The pipeline with ``pipeline_uuid`` or ``NotFoundError("Pipeline not found")``."""
    query = select(Pipeline).where(Pipeline.id == parse_uuid(pipeline_uuid, what="Pipeline"))
    if lock:
        query = query.with_for_update()
    pipeline = session.scalars(query).one_or_none()
    if pipeline is None:
        raise NotFoundError("Pipeline not found")
    return pipeline


def _check(fields: dict[str, Any]) -> None:
    for name in ("title", "version"):
        if name in fields and (not isinstance(fields[name], str) or not fields[name].strip()):
            raise ValidationError(f"{name.capitalize()} can't be blank")
    for name in ("config", "metadata"):
        if name in fields and not isinstance(fields[name], dict):
            raise ValidationError(f"{name.capitalize()} must be an object")


def create_pipeline(session: Session, **fields: Any) -> Pipeline:
    """Create a pipeline from ``title`` (required), ``version``, ``config``, ``metadata``."""
    fields = {k: v for k, v in fields.items() if k in PIPELINE_FIELDS and v is not None}
    fields.setdefault("version", "1.0")
    if "title" not in fields:
        raise ValidationError("Title can't be blank")
    _check(fields)
    pipeline = Pipeline(
        title=fields["title"],
        version=fields["version"],
        config=fields.get("config", {}),
        metadata_=fields.get("metadata", {}),
    )
    session.add(pipeline)
    session.flush()
    return pipeline


def update_pipeline(session: Session, pipeline: Pipeline, **fields: Any) -> Pipeline:
    """Replace the given fields of ``pipeline`` (null values are rejected, not stored)."""
    fields = {k: v for k, v in fields.items() if k in PIPELINE_FIELDS}
    for name, value in fields.items():
        if value is None:
            raise ValidationError(f"{name.capitalize()} can't be null")
    _check(fields)
    for name, value in fields.items():
        setattr(pipeline, "metadata_" if name == "metadata" else name, value)
    session.flush()
    events.pipeline_touched(session, pipeline.id)
    return pipeline


def destroy_pipeline(session: Session, pipeline: Pipeline) -> None:
    """Delete the pipeline; its nodes go with it (foreign key cascade).

    The pipeline row is locked first, then its nodes by id, before the delete, so the
    cascade follows the lock order of :mod:`vidpipe_dagster.domain.lifecycle`.
    """
    session.execute(select(Pipeline.id).where(Pipeline.id == pipeline.id).with_for_update())
    session.execute(
        select(Node.id).where(Node.pipeline_id == pipeline.id).order_by(Node.id).with_for_update()
    )
    session.execute(delete(Pipeline).where(Pipeline.id == pipeline.id))
    session.expunge(pipeline)
    events.pipeline_deleted(session, pipeline.id)
