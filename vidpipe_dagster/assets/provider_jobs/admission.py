"""Admitting paid work before it starts: the pipeline's budget and the provider's limit.

:func:`admit_submission` runs before paid work is started: the pipeline's budget (with the
estimates of jobs already in flight reserved). :func:`provider_slot` is the ``admit`` hook of
``Lifecycle.started`` that refuses a node when its provider already has as many jobs in flight
as its limit allows (:class:`ProviderLimitReached`).
"""

from __future__ import annotations

import uuid as uuid_lib
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from vidpipe_dagster.db.models import Node, Pipeline
from vidpipe_dagster.domain.costs import NodeEstimate, check_budget, estimate_nodes
from vidpipe_dagster.domain.node_types import effective_provider
from vidpipe_dagster.domain.prices import CostEstimate
from vidpipe_dagster.resources.providers.prices import pricer
from vidpipe_dagster.resources.providers.registry import PAID_PROVIDERS, jobs_limit


class ProviderLimitReached(Exception):
    """The provider already has as many jobs in flight as its limit allows."""

    def __init__(self, provider: str, *, in_flight: int, limit: int) -> None:
        super().__init__(
            f"{provider} already has {in_flight} job(s) in flight (limit {limit}); "
            "the node is submitted once one finishes"
        )
        self.provider = provider
        self.in_flight = in_flight
        self.limit = limit


def _reservations(rows: Iterable[Node], *, exclude: str) -> list[NodeEstimate]:
    reserved: list[NodeEstimate] = []
    for row in rows:
        metadata = row.metadata_ or {}
        if row.uuid == exclude or row.status != "in_progress":
            continue
        if not metadata.get("provider_job_id"):
            continue
        usd = metadata.get("estimated_cost")
        if isinstance(usd, int | float) and usd > 0:
            estimate = CostEstimate(str(metadata.get("provider")), float(usd), 0.0, None, None)
            reserved.append(NodeEstimate(node=row, estimate=estimate))
    return reserved


def in_flight_count(session: Session, provider: str, *, exclude: str | None = None) -> int:
    """Nodes ``in_progress`` at ``provider`` (submitting or waiting), other than ``exclude``."""
    query = select(func.count()).where(
        Node.status == "in_progress",
        Node.metadata_["provider"].as_string() == provider,
    )
    if exclude:
        query = query.where(Node.id != uuid_lib.UUID(exclude))
    return int(session.execute(query).scalar_one())


def provider_slot(provider: str, *, node_uuid: str, settings: Any) -> Callable[[Session], None]:
    """An ``admit`` hook for ``Lifecycle.started``: refuse when ``provider`` is at its limit.

    It runs in the transaction that marks the node ``in_progress`` with its provider, under
    a per-provider advisory lock on PostgreSQL (SQLite serialises writers anyway), so two
    steps starting at once can't both take the last slot.
    """
    limit = jobs_limit(provider, settings)

    def admit(session: Session) -> None:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                {"key": f"vidpipe:provider:{provider}"},
            )
        count = in_flight_count(session, provider, exclude=node_uuid)
        if count >= limit:
            raise ProviderLimitReached(provider, in_flight=count, limit=limit)

    return admit


def admit_submission(
    sessions: sessionmaker[Session], *, node_uuid: str, settings: Any
) -> str | None:
    """Check a node may start paid work now; return its paid provider (``None`` if free).

    Raises ``ValidationError`` ("Over budget: ...") when its estimate, plus the estimates of
    the pipeline's jobs in flight, exceeds what is left of ``config.budget``. The limit of
    jobs in flight per provider is checked when the node starts (:func:`provider_slot`).
    """
    with sessions() as session:
        node = session.get(Node, uuid_lib.UUID(node_uuid))
        if node is None:
            return None
        provider = effective_provider(node.type, node.config, force_local=settings.force_local)
        if provider not in PAID_PROVIDERS:
            return None
        pipeline = session.get(Pipeline, node.pipeline_id)
        every = list(session.scalars(select(Node).where(Node.pipeline_id == node.pipeline_id)))
        lines = estimate_nodes(
            [node], every, price=pricer(settings), force_local=settings.force_local
        )
        if pipeline is not None and sum(line.estimate.usd for line in lines) > 0:
            check_budget(pipeline, [*lines, *_reservations(every, exclude=node.uuid)])
    return provider
