"""Small builders for domain tests: pipelines and nodes written through the domain."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from vidpipe_dagster.db.models import Node, Pipeline
from vidpipe_dagster.domain.nodes import create_node
from vidpipe_dagster.domain.pipelines import create_pipeline


def make_pipeline(sessions: sessionmaker[Session], title: str = "Course intro") -> Pipeline:
    """A committed pipeline."""
    with sessions() as session, session.begin():
        return create_pipeline(session, title=title)


def make_node(
    sessions: sessionmaker[Session],
    pipeline: Pipeline,
    *,
    node_type: str = "asset",
    title: str | None = None,
    **fields: Any,
) -> Node:
    """A committed node of ``pipeline``."""
    with sessions() as session, session.begin():
        attached = session.get(Pipeline, pipeline.id)
        return create_node(session, attached, type=node_type, title=title or node_type, **fields)


def reload(sessions: sessionmaker[Session], model: type, key: Any) -> Any:
    """A fresh copy of a row."""
    with sessions() as session:
        return session.get(model, key)
