"""Launching runs on the Dagster webserver through its GraphQL API.

The API uses this to run nodes when the editor asks: the selected nodes' asset keys become
one run of the implicit asset job of the code location holding their pipeline (with
``VIDPIPE_DAGSTER_SHARDS`` > 1, the location of the pipeline's shard).

Given the nodes' current shapes (``vidpipe_dagster.runs.plans``), a launch first makes sure the
location compiled them: it asks the webserver for the shapes of the selected assets and,
while one is missing or behind, reloads the location and asks again, for at most
``VIDPIPE_EXECUTE_WAIT_SECONDS``; past that the answer is ``PlanNotReadyError`` (503 with
``Retry-After``). A change of config, asset or title keeps the shape, so it launches at once:
the run executes the fields the rows hold when each node starts. A launch holds a pending
reload of its location back for ``RUN_START_HOLD_SECONDS`` so the run's worker starts first.
"""

from __future__ import annotations

import time
import uuid as uuid_lib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from vidpipe_dagster.db.models import Node
from vidpipe_dagster.domain.errors import UnavailableError, ValidationError, VidpipeError
from vidpipe_dagster.domain.naming import PipelineNames, names_of, pipeline_location
from vidpipe_dagster.runs.plans import SHAPE_METADATA, compile_error_of, node_shape, row_fields
from vidpipe_dagster.runs.reload import ReloadError, ReloadPending, hold_reload, reload_and_wait
from vidpipe_dagster.settings import Settings

ASSET_JOB = "__ASSET_JOB"
LAUNCH_TIMEOUT_SECONDS = 120.0
"""How long a GraphQL answer may take: a launch cut off early may still have started its
run, and an execute retried after it would start a second one."""
REPOSITORY = "__repository__"
RUN_START_HOLD_SECONDS = 10.0
"""How long a launch keeps a pending reload of its location (an edit's change notification)
from beginning: the run's worker starts through the location's code server, which a reload
would replace under it (several seconds at 100 pipelines). An execute that needs the
reload asks for it urgently, which ends the hold."""

LAUNCH_RUN = """
mutation LaunchRun($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on PipelineNotFoundError { message }
    ... on RunConflict { message }
    ... on UnauthorizedError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""


ACTIVE_STATUSES = ["QUEUED", "NOT_STARTED", "STARTING", "STARTED"]

ACTIVE_RUNS = """
query ActiveRuns($filter: RunsFilter!) {
  runsOrError(filter: $filter) {
    __typename
    ... on Runs { results { runId status assetSelection { path } } }
    ... on PythonError { message }
  }
}
"""

COMPILED_SHAPES = """
query Compiled($keys: [AssetKeyInput!]) {
  assetNodes(assetKeys: $keys) {
    assetKey { path }
    metadataEntries { label ... on TextMetadataEntry { text } }
  }
}
"""


class LaunchError(VidpipeError):
    """Dagster answered but refused the run."""

    status_code = 502
    error_type = "launch_failed"


class PlanNotReadyError(UnavailableError):
    """The location has not compiled the nodes' current shape yet: retry after a while."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = max(1, round(retry_after))


def current_shapes(
    sessions: sessionmaker[Session], node_uuids: Sequence[str], *, settings: Settings
) -> dict[str, str]:
    """The shape of each node as its row holds it now (one short read)."""
    force_local = settings.force_local
    with sessions() as session:
        rows = session.execute(
            select(Node.id, Node.type, Node.title, Node.inputs, Node.config, Node.asset).where(
                Node.id.in_([uuid_lib.UUID(u) for u in node_uuids])
            )
        ).all()
    return {str(row.id): node_shape(row_fields(row), force_local=force_local) for row in rows}


class DagsterLauncher:
    """Launches runs of node assets and reloads the code location over GraphQL."""

    def __init__(
        self,
        *,
        settings: Settings,
        client: httpx.Client | None = None,
        sessions: sessionmaker[Session] | None = None,
    ) -> None:
        self.settings = settings
        self._sessions = sessions
        self.url = settings.dagster_url.rstrip("/") + "/graphql"
        self.client = client or httpx.Client(
            timeout=httpx.Timeout(LAUNCH_TIMEOUT_SECONDS, connect=3.0)
        )

    def _post(self, query: str, variables: Mapping[str, Any]) -> dict[str, Any]:
        try:
            response = self.client.post(self.url, json={"query": query, "variables": variables})
        except httpx.HTTPError as error:
            raise UnavailableError(
                f"Dagster is unreachable at {self.settings.dagster_url} ({type(error).__name__}): "
                "start it with `vidpipe dev` or point VIDPIPE_DAGSTER_URL at its webserver"
            ) from error
        if response.status_code >= 500:
            raise UnavailableError(
                f"Dagster at {self.settings.dagster_url} answered {response.status_code}"
            )
        try:
            body = response.json()
        except ValueError as error:
            raise UnavailableError(
                f"Dagster at {self.settings.dagster_url} did not answer GraphQL"
            ) from error
        if body.get("errors"):
            messages = "; ".join(str(e.get("message")) for e in body["errors"])
            raise LaunchError(f"Dagster rejected the request: {messages}")
        return body.get("data") or {}

    def names(self, pipeline_uuid: str) -> PipelineNames:
        """The pipeline's Dagster names as its rows hold them (``domain.naming``)."""
        if self._sessions is None:
            from vidpipe_dagster.db.session import make_engine, make_sessionmaker

            self._sessions = make_sessionmaker(make_engine(self.settings.resolved_database_url))
        return names_of(self._sessions, [pipeline_uuid])[pipeline_uuid]

    def location_for(self, pipeline_uuid: str) -> str:
        """The code location that compiles ``pipeline_uuid`` (its shard's, when sharded)."""
        return pipeline_location(
            self.settings.dagster_location, pipeline_uuid, shards=self.settings.dagster_shards
        )

    def reload(self, location: str | None = None, *, timeout: float | None = None) -> None:
        """Reload a code location (the unsharded one by default) and wait for it, at most
        ``timeout`` or ``VIDPIPE_EXECUTE_WAIT_SECONDS`` (``PlanNotReadyError`` past that)."""
        location = location or self.settings.dagster_location
        try:
            reload_and_wait(
                dagster_url=self.settings.dagster_url,
                location=location,
                timeout=timeout if timeout is not None else self.settings.execute_wait_seconds,
            )
        except ReloadPending as pending:
            raise PlanNotReadyError(
                f"Dagster is still loading location {location!r} with the latest edits; "
                f"retry in {max(1, round(pending.retry_after))} s",
                retry_after=pending.retry_after,
            ) from pending
        except ReloadError as error:
            raise LaunchError(str(error)) from error

    def active_runs(
        self,
        *,
        pipeline_uuid: str,
        node_uuids: Sequence[str],
        names: PipelineNames | None = None,
    ) -> dict[str, tuple[str, str]]:
        """The queued or running Dagster runs that materialize any of the nodes:
        ``{node_uuid: (run_id, status)}`` (the oldest run per node)."""
        names = names or self.names(pipeline_uuid)
        wanted = {tuple(names.key_path(u)): u for u in node_uuids}
        data = self._post(ACTIVE_RUNS, {"filter": {"statuses": ACTIVE_STATUSES}})
        runs = data.get("runsOrError") or {}
        if runs.get("__typename") != "Runs":
            raise LaunchError(f"Dagster could not list its runs: {runs.get('message')}")
        found: dict[str, tuple[str, str]] = {}
        for run in runs.get("results") or []:
            for key in run.get("assetSelection") or []:
                node_uuid = wanted.get(tuple(key.get("path") or ()))
                if node_uuid is not None:
                    found[node_uuid] = (run["runId"], run["status"])
        return found

    def behind(
        self,
        *,
        pipeline_uuid: str,
        shapes: Mapping[str, str],
        names: PipelineNames | None = None,
    ) -> list[str]:
        """The nodes whose shape the webserver's copy of their location lacks or differs."""
        names = names or self.names(pipeline_uuid)
        keys = {tuple(names.key_path(u)): u for u in shapes}
        data = self._post(COMPILED_SHAPES, {"keys": [{"path": list(k)} for k in keys]})
        compiled: dict[str, str] = {}
        for asset in data.get("assetNodes") or []:
            node_uuid = keys.get(tuple((asset.get("assetKey") or {}).get("path") or ()))
            for entry in asset.get("metadataEntries") or []:
                if node_uuid and entry.get("label") == SHAPE_METADATA:
                    compiled[node_uuid] = entry.get("text")
        return [u for u, shape in shapes.items() if compiled.get(u) != shape]

    def ensure_compiled(
        self,
        *,
        pipeline_uuid: str,
        shapes: Mapping[str, str],
        compile_error: Callable[[], str | None] | None = None,
        names: PipelineNames | None = None,
    ) -> None:
        """Return once the location compiled every node's shape in ``shapes``, reloading it
        while it has not, for at most ``VIDPIPE_EXECUTE_WAIT_SECONDS`` in all.

        ``compile_error`` says, after a reload, why the pipeline was left out (its row's
        ``metadata.compileError``): that is a ``ValidationError``, not something to wait for.
        """
        location = self.location_for(pipeline_uuid)
        deadline = time.monotonic() + self.settings.execute_wait_seconds
        reloaded = False
        while True:
            behind = self.behind(pipeline_uuid=pipeline_uuid, shapes=shapes, names=names)
            if not behind:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                hint = (
                    " (if this persists, the API and the code location disagree on "
                    "VIDPIPE_PROVIDERS or VIDPIPE_DAGSTER_SHARDS)"
                    if reloaded
                    else ""
                )
                raise PlanNotReadyError(
                    f"Dagster location {location!r} has not compiled the latest edits of "
                    f"node(s) {', '.join(behind)} yet; retry in a few seconds{hint}",
                    retry_after=5,
                )
            self.reload(location, timeout=remaining)
            reloaded = True
            error = compile_error() if compile_error is not None else None
            if error:
                raise ValidationError(f"The pipeline cannot run until it compiles: {error}")

    def launch(
        self,
        *,
        pipeline_uuid: str,
        node_uuids: Sequence[str],
        tags: Mapping[str, str] | None = None,
        shapes: Mapping[str, str] | None = None,
        compile_error: Callable[[], str | None] | None = None,
        names: PipelineNames | None = None,
    ) -> str:
        """Start a run materializing the nodes' assets and return its run id.

        With ``shapes`` (node UUID -> its row's shape) the location is first made to
        compile them (:meth:`ensure_compiled`, which takes ``compile_error``). When the
        location does not know an asset yet (an edit not reloaded), it reloads once and
        tries again.
        """
        hold_reload(self.settings, pipeline_uuid=pipeline_uuid, seconds=RUN_START_HOLD_SECONDS)
        names = names or self.names(pipeline_uuid)
        if shapes:
            self.ensure_compiled(
                pipeline_uuid=pipeline_uuid,
                shapes=shapes,
                compile_error=compile_error,
                names=names,
            )
        paths = [names.key_path(u) for u in node_uuids]
        location = self.location_for(pipeline_uuid)
        params = {
            "selector": {
                "repositoryLocationName": location,
                "repositoryName": REPOSITORY,
                "jobName": ASSET_JOB,
                "assetSelection": [{"path": path} for path in paths],
            },
            "runConfigData": {},
            "executionMetadata": {
                "tags": [{"key": k, "value": str(v)} for k, v in (tags or {}).items()]
            },
        }
        for attempt in range(2):
            result = self._post(LAUNCH_RUN, {"executionParams": params}).get("launchRun") or {}
            kind = result.get("__typename")
            if kind == "LaunchRunSuccess":
                hold_reload(
                    self.settings, pipeline_uuid=pipeline_uuid, seconds=RUN_START_HOLD_SECONDS
                )
                return result["run"]["runId"]
            if kind in ("InvalidSubsetError", "PipelineNotFoundError") and attempt == 0:
                self.reload(location)
                continue
            detail = result.get("message") or "; ".join(
                e.get("message", "") for e in result.get("errors", [])
            )
            raise LaunchError(f"Dagster refused the run ({kind}): {detail}")
        raise LaunchError("Dagster refused the run")


def launch_current(
    settings: Settings,
    sessions: sessionmaker[Session],
    *,
    pipeline_uuid: str,
    node_uuids: Sequence[str],
    tags: Mapping[str, str] | None = None,
) -> str:
    """Launch the nodes on a plan compiled from their rows as they are now; the run id."""
    shapes = current_shapes(sessions, node_uuids, settings=settings)
    return DagsterLauncher(settings=settings, sessions=sessions).launch(
        pipeline_uuid=pipeline_uuid,
        node_uuids=node_uuids,
        tags=tags,
        shapes=shapes,
        compile_error=lambda: compile_error_of(sessions, pipeline_uuid),
    )
