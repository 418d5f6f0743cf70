"""The state-backed component whose state is a snapshot of the pipeline tables.

``write_state_to_path`` is the only place the code location reads the pipeline tables: it
runs when the code server loads or reloads (``LEGACY_CODE_SERVER_SNAPSHOTS``), records each
pipeline's compile error in its row's ``metadata.compileError`` and writes the snapshot.
``build_defs_from_state`` compiles that snapshot without touching the database, so a run
worker rebuilds exactly the graph its run was planned with, whatever the rows say by then.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import uuid as uuid_lib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
from dagster.components import DefsStateConfig, DefsStateConfigArgs, ResolvedDefsStateConfig
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from vidpipe_dagster.db.conflicts import is_conflict, retry_conflicts
from vidpipe_dagster.db.models import Pipeline
from vidpipe_dagster.db.names import claim_missing_names
from vidpipe_dagster.db.session import make_engine, make_sessionmaker
from vidpipe_dagster.db.snapshot import in_shard, take_snapshot
from vidpipe_dagster.domain import events
from vidpipe_dagster.orchestration.compiler import compile_errors, compile_snapshot
from vidpipe_dagster.orchestration.schedules import build_retry_schedule
from vidpipe_dagster.orchestration.sensors import build_refresh_sensor
from vidpipe_dagster.runs.plans import COMPILE_ERROR

log = logging.getLogger(__name__)

STATE_KEY = "vidpipe_pipelines"

# Dagster resolves the ``@definitions`` function twice when a code server or run worker
# starts (once to collect reconstruction metadata, once to build the repository), both
# times from the same state: the last build is kept and reused for identical state.
_built_lock = threading.Lock()
_built: dict[tuple, dg.Definitions] = {}


def record_compile_errors(
    session: Session, errors: Mapping[str, str], *, shard: int | None = None, shards: int = 1
) -> int:
    """Set ``metadata.compileError`` on failing pipelines and clear it on the others.

    With a ``shard``, only that shard's pipelines are touched (``errors`` covers no more).
    Only rows whose value changes are locked and written (pipelines by id, the lock order
    of :mod:`vidpipe_dagster.domain.lifecycle`), leaving ``updated_at`` alone (it tracks the
    editor's changes), so a load that changes nothing takes no lock. Returns how many rows
    changed.
    """
    rows = session.execute(
        select(Pipeline.id, Pipeline.metadata_)
        .where(
            Pipeline.id.in_([uuid_lib.UUID(u) for u in errors])
            | Pipeline.metadata_[COMPILE_ERROR].as_string().isnot(None)
        )
        .order_by(Pipeline.id)
    ).all()
    changed = 0
    for pipeline_id, seen in rows:
        if not in_shard(str(pipeline_id), shard=shard, shards=shards):
            continue
        if (seen or {}).get(COMPILE_ERROR) == errors.get(str(pipeline_id)):
            continue
        metadata = session.execute(
            select(Pipeline.metadata_).where(Pipeline.id == pipeline_id).with_for_update()
        ).scalar_one_or_none()
        metadata = dict(metadata or {})
        wanted = errors.get(str(pipeline_id))
        if metadata.get(COMPILE_ERROR) == wanted:
            continue
        if wanted is None:
            metadata.pop(COMPILE_ERROR, None)
        else:
            metadata[COMPILE_ERROR] = wanted
        session.execute(
            update(Pipeline)
            .where(Pipeline.id == pipeline_id)
            .values(metadata_=metadata, updated_at=Pipeline.updated_at)
        )
        events.pipeline_touched(session, pipeline_id)
        changed += 1
    return changed


@retry_conflicts
def _record_compile_errors(
    sessions: sessionmaker[Session], errors: Mapping[str, str], *, shard: int | None, shards: int
) -> None:
    with sessions() as session, session.begin():
        record_compile_errors(session, errors, shard=shard, shards=shards)


def _claim_names(sessions: sessionmaker[Session]) -> None:
    """Name the rows written without one (``db.names.claim_missing_names``); on a failure the
    compiler falls back to names computed from the rows, and the next load tries again."""
    try:
        with sessions() as session, session.begin():
            claimed = claim_missing_names(session)
    except DBAPIError as error:
        log.warning("Dagster names not recorded on this load: %s", error.__class__.__name__)
        return
    if claimed:
        log.info("recorded the Dagster names of %d rows", claimed)


def read_state(database_url: str, *, shard: int | None = None, shards: int = 1) -> dict:
    """Snapshot the pipelines (of ``shard``) at ``database_url``; record compile errors there."""
    engine = make_engine(database_url)
    try:
        sessions = make_sessionmaker(engine)
        _claim_names(sessions)
        with sessions() as session, session.begin():
            snapshot = take_snapshot(session, shard=shard, shards=shards)
        errors = compile_errors(snapshot)
        for pipeline_uuid, error in errors.items():
            log.warning("pipeline %s cannot compile: %s", pipeline_uuid, error)
        try:
            _record_compile_errors(sessions, errors, shard=shard, shards=shards)
        except DBAPIError as error:
            if not is_conflict(error):
                raise
            log.warning("compile errors not recorded on this load, the database is busy")
        return snapshot
    finally:
        engine.dispose()


@dataclass
class PipelinesComponent(dg.StateBackedComponent, dg.Resolvable):
    """Compiles every pipeline in the database into assets, one multi-asset per pipeline.

    ``database_url`` defaults to ``VIDPIPE_DATABASE_URL`` (or the embedded SQLite file).
    With ``shards`` > 1 and a ``shard``, only the pipelines of that shard are read and
    compiled, so each code location (and each of its runs) carries a slice of the pipelines.
    """

    database_url: str | None = None
    shard: int | None = None
    shards: int = 1
    location: str = "vidpipe"
    defs_state: ResolvedDefsStateConfig = field(
        default_factory=DefsStateConfigArgs.legacy_code_server_snapshots
    )

    @property
    def defs_state_config(self) -> DefsStateConfig:
        """State is keyed ``vidpipe_pipelines`` (plus the shard) unless configured otherwise."""
        key = STATE_KEY if self.shard is None else f"{STATE_KEY}_{self.shard}_of_{self.shards}"
        return DefsStateConfig.from_args(self.defs_state, default_key=key)

    def _database_url(self) -> str:
        from vidpipe_dagster.settings import get_settings

        return self.database_url or get_settings().resolved_database_url

    def write_state_to_path(self, state_path: Path) -> None:
        """Write the snapshot of the pipeline tables as JSON."""
        snapshot = read_state(self._database_url(), shard=self.shard, shards=self.shards)
        state_path.write_text(json.dumps(snapshot))

    def build_defs_from_state(
        self, context: dg.ComponentLoadContext, state_path: Path | None
    ) -> dg.Definitions:
        """Compile the snapshot at ``state_path``, plus what depends on it.

        Besides the pipelines' assets and schedules: the sensor that reloads this location
        when the tables move past the snapshot, and the retry schedule over the compiled
        pipelines.
        """
        if state_path is None:
            return dg.Definitions()
        from vidpipe_dagster.settings import get_settings

        text = state_path.read_text()
        settings = get_settings()
        key = (
            hashlib.sha256(text.encode()).hexdigest(),
            self.location,
            self.shard,
            self.shards,
            settings.automation,
            settings.force_local,
        )
        with _built_lock:
            if key not in _built:
                _built.clear()
                _built[key] = self._build(json.loads(text))
            return _built[key]

    def _build(self, snapshot: dict) -> dg.Definitions:
        result = compile_snapshot(snapshot)
        compiled = sorted({uuid for asset in result.assets for uuid in _pipeline_uuids(asset)})
        return dg.Definitions.merge(
            result.definitions(),
            dg.Definitions(
                sensors=[
                    build_refresh_sensor(
                        compiled_from=snapshot.get("latest_updated_at"),
                        location=self.location,
                        shard=self.shard,
                        shards=self.shards,
                    )
                ],
                schedules=[build_retry_schedule(compiled)],
            ),
        )


def _pipeline_uuids(asset: dg.AssetsDefinition) -> set[str]:
    return {
        str(spec.metadata["pipeline_uuid"])
        for spec in asset.specs
        if "pipeline_uuid" in (spec.metadata or {})
    }
