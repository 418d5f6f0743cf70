"""Reporting completions finished outside a run to Dagster, exactly once.

A node completed by the polling sensor or a webhook has ``metadata.dagster_reported`` false;
the sensor reports it after winning ``Lifecycle.claim_reports`` for it
(:func:`claim_unreported`), so exactly one materialization follows each completion.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from vidpipe_dagster.db.models import Node
from vidpipe_dagster.domain.lifecycle import Lifecycle


@dataclass(frozen=True)
class Unreported:
    """A node completed outside a run whose materialization is not reported yet."""

    node_uuid: str
    pipeline_uuid: str
    node_type: str
    process_uuid: str
    output: dict[str, Any]
    metadata: dict[str, Any]


def unreported_completions(sessions: sessionmaker[Session]) -> list[Unreported]:
    """Completed nodes with ``metadata.dagster_reported`` false."""
    with sessions() as session:
        rows = session.execute(
            select(Node.id, Node.pipeline_id, Node.type, Node.output, Node.metadata_).where(
                Node.status == "completed",
                Node.metadata_["dagster_reported"].as_boolean().is_(False),
            )
        ).all()
    return [
        Unreported(
            node_uuid=str(row.id),
            pipeline_uuid=str(row.pipeline_id),
            node_type=row.type,
            process_uuid=str((row.metadata_ or {}).get("process_uuid")),
            output=dict(row.output or {}),
            metadata=dict(row.metadata_ or {}),
        )
        for row in rows
    ]


def claim_unreported(lifecycle: Lifecycle, candidates: Iterable[Unreported]) -> list[Unreported]:
    """The candidates this caller won the report of (each node goes to one caller), claimed
    in one transaction."""
    candidates = list(candidates)
    won = lifecycle.claim_reports({c.node_uuid: c.process_uuid for c in candidates})
    return [c for c in candidates if c.node_uuid in won]
