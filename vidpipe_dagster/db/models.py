"""SQLAlchemy 2.0 models of the shared pipeline tables.

Column ownership: the editor (and the API on its behalf) writes ``title type inputs config
asset``; the engine writes ``status metadata output`` through ``domain.lifecycle`` only.
JSON columns are JSONB on PostgreSQL and JSON elsewhere.
"""

from __future__ import annotations

import uuid as uuid_lib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    String,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

JsonType = JSON().with_variant(JSONB(), "postgresql")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base carrying the one metadata shared by Alembic, the API and Dagster."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Pipeline(Base):
    """A video-production pipeline: a titled graph of nodes."""

    __tablename__ = "video_production_pipelines"

    id: Mapped[uuid_lib.UUID] = mapped_column(Uuid, primary_key=True, default=uuid_lib.uuid4)
    version: Mapped[str] = mapped_column(String, nullable=False, default="1.0")
    title: Mapped[str] = mapped_column(String, nullable=False)
    config: Mapped[dict[str, Any]] = mapped_column(JsonType, nullable=False, default=dict)
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JsonType, nullable=False, default=dict
    )
    dagster_name: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    """The group and asset-key prefix in Dagster, made from the title once
    (``vidpipe_dagster.domain.naming``)."""
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True),
        nullable=False,
        default=utcnow,
        onupdate=utcnow,
        server_default=func.now(),
        index=True,
    )

    nodes: Mapped[list[Node]] = relationship(
        back_populates="pipeline",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="(Node.created_at, Node.id)",
    )

    @property
    def uuid(self) -> str:
        """The pipeline's UUID as the API exposes it."""
        return str(self.id)


class Node(Base):
    """One node of a pipeline. ``inputs`` name other nodes of the pipeline by UUID."""

    __tablename__ = "video_production_nodes"
    __table_args__ = (
        Index("ix_video_production_nodes_pipeline_id_status", "pipeline_id", "status"),
    )

    id: Mapped[uuid_lib.UUID] = mapped_column(Uuid, primary_key=True, default=uuid_lib.uuid4)
    pipeline_id: Mapped[uuid_lib.UUID] = mapped_column(
        Uuid,
        ForeignKey("video_production_pipelines.id", ondelete="CASCADE"),
        nullable=False,
    )
    title: Mapped[str] = mapped_column(String, nullable=False)
    type: Mapped[str] = mapped_column(String, nullable=False)
    inputs: Mapped[dict[str, Any]] = mapped_column(JsonType, nullable=False, default=dict)
    config: Mapped[dict[str, Any]] = mapped_column(JsonType, nullable=False, default=dict)
    asset: Mapped[dict[str, Any] | None] = mapped_column(JsonType, nullable=True)
    dagster_name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """The last part of the node's asset key, made from the title once
    (``vidpipe_dagster.domain.naming``)."""
    status: Mapped[str] = mapped_column(String, nullable=False, default="pending")
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JsonType, nullable=True)
    output: Mapped[dict[str, Any] | None] = mapped_column(JsonType, nullable=True)
    output_signature: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    """``output["signature"]``, kept by the lifecycle for the reuse lookup
    (``domain.signatures``)."""
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True),
        nullable=False,
        default=utcnow,
        onupdate=utcnow,
        server_default=func.now(),
        index=True,
    )

    pipeline: Mapped[Pipeline] = relationship(back_populates="nodes")

    @property
    def uuid(self) -> str:
        """The node's UUID as the API exposes it."""
        return str(self.id)

    @property
    def pipeline_uuid(self) -> str:
        """The owning pipeline's UUID."""
        return str(self.pipeline_id)


class ApiToken(Base):
    """A bearer token for the REST API; only its sha256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String, nullable=False)
    token_sha256: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    admin: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, server_default=func.now()
    )
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class InstanceValue(Base):
    """A fact about this vidpipe installation every process must agree on, by name.

    ``storage_id`` names the local media directory all processes share (see
    ``resources.shared_storage``).
    """

    __tablename__ = "vidpipe_instance"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PipelineEvent(Base):
    """One change a live-status client is told about, numbered in commit order.

    Written by :mod:`vidpipe_dagster.domain.events` in the transaction that made the change;
    ``id`` grows with every commit (a reconnecting client resumes after the last one it
    saw), and only the newest events are kept. ``pipeline_id`` is no foreign key: the event
    saying a pipeline was deleted outlives it.
    """

    __tablename__ = "vidpipe_events"
    __table_args__ = (Index("ix_vidpipe_events_pipeline_id_id", "pipeline_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    pipeline_id: Mapped[uuid_lib.UUID] = mapped_column(Uuid, nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JsonType, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, server_default=func.now()
    )
