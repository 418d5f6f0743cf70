"""Launching runs on the Dagster webserver through its GraphQL API.

The API uses this to run nodes when the editor asks: the selected nodes' asset keys become
one run of the implicit asset job of the code location holding their pipeline (with
``VIDPIPE_DAGSTER_SHARDS`` > 1, the location of the pipeline's shard).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from vidpipe_dagster.compiler import node_asset_key, pipeline_location
from vidpipe_dagster.domain.errors import UnavailableError, VidpipeError
from vidpipe_dagster.reload import ReloadError, reload_location
from vidpipe_dagster.settings import Settings

ASSET_JOB = "__ASSET_JOB"
REPOSITORY = "__repository__"

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


class LaunchError(VidpipeError):
    """Dagster answered but refused the run."""

    status_code = 502
    error_type = "launch_failed"


class DagsterLauncher:
    """Launches runs of node assets and reloads the code location over GraphQL."""

    def __init__(self, *, settings: Settings, client: httpx.Client | None = None) -> None:
        self.settings = settings
        self.url = settings.dagster_url.rstrip("/") + "/graphql"
        self.client = client or httpx.Client(timeout=httpx.Timeout(30.0, connect=3.0))

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

    def location_for(self, pipeline_uuid: str) -> str:
        """The code location that compiles ``pipeline_uuid`` (its shard's, when sharded)."""
        return pipeline_location(
            self.settings.dagster_location, pipeline_uuid, shards=self.settings.dagster_shards
        )

    def reload(self, location: str | None = None) -> None:
        """Reload a code location (the unsharded one by default) and wait for it."""
        try:
            reload_location(
                dagster_url=self.settings.dagster_url,
                location=location or self.settings.dagster_location,
            )
        except ReloadError as error:
            raise LaunchError(str(error)) from error

    def active_runs(
        self, *, pipeline_uuid: str, node_uuids: Sequence[str]
    ) -> dict[str, tuple[str, str]]:
        """The queued or running Dagster runs that materialize any of the nodes:
        ``{node_uuid: (run_id, status)}`` (the oldest run per node)."""
        wanted = {
            tuple(node_asset_key(pipeline_uuid=pipeline_uuid, node_uuid=u).path): u
            for u in node_uuids
        }
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

    def launch(
        self,
        *,
        pipeline_uuid: str,
        node_uuids: Sequence[str],
        tags: Mapping[str, str] | None = None,
    ) -> str:
        """Start a run materializing the nodes' assets and return its run id.

        When the location does not know an asset yet (an edit not reloaded), it reloads
        once and tries again.
        """
        keys = [node_asset_key(pipeline_uuid=pipeline_uuid, node_uuid=u) for u in node_uuids]
        location = self.location_for(pipeline_uuid)
        params = {
            "selector": {
                "repositoryLocationName": location,
                "repositoryName": REPOSITORY,
                "jobName": ASSET_JOB,
                "assetSelection": [{"path": list(key.path)} for key in keys],
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
                return result["run"]["runId"]
            if kind in ("InvalidSubsetError", "PipelineNotFoundError") and attempt == 0:
                self.reload(location)
                continue
            detail = result.get("message") or "; ".join(
                e.get("message", "") for e in result.get("errors", [])
            )
            raise LaunchError(f"Dagster refused the run ({kind}): {detail}")
        raise LaunchError("Dagster refused the run")
