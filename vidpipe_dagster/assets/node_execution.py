"""Executing one node of a pipeline: lifecycle, admission, the executor and its result.

Lifecycle ``started`` (recording the Dagster run id), the node type's executor with its
upstream nodes' outputs read from their rows, lifecycle ``succeeded`` with the output, and a
``MaterializeResult`` carrying a link to the media, its duration, size, cost and the
process_uuid. Any exception calls ``failed`` and is raised again.

Async providers answer with an ``AsyncSubmission`` instead of an output: the job id is
recorded with ``updated``, an ``AssetObservation`` is returned and the node stays
``in_progress`` until the provider polling sensor completes it. A node whose provider is at
its limit of jobs in flight waits for a slot instead (``provider_queue``): nothing is
submitted, an ``AssetObservation`` of its stage is returned, and the provider sensor starts
it later.

Paid work is submitted at most once per execution (``provider_jobs.submission``): before a
paid node starts, an earlier submission whose outcome is unknown is looked up (and its job
adopted) where the provider allows it, or refused unless someone asked for this run; a
submission whose answer is lost fails the node with "submission outcome unknown" and is
recorded in ``metadata.submission``.

A node executes the fields its row holds when it starts (``vidpipe_dagster.runs.plans``), and its
materialization carries their structure hash as its data version.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from vidpipe_dagster.assets import EXECUTORS, heartbeat, provider_jobs, provider_queue
from vidpipe_dagster.assets.base import AsyncSubmission, ExecutionContext, NodeSpec, UpstreamNode
from vidpipe_dagster.assets.node_guards import (
    RunningElsewhere,
    all_of,
    node_metadata,
    refuse_invalid,
    start_hooks,
    upstream_rows,
)
from vidpipe_dagster.assets.node_reuse import execution_signature, reuse_first
from vidpipe_dagster.assets.pipeline_plan import PipelinePlan
from vidpipe_dagster.assets.provider_jobs import submission
from vidpipe_dagster.assets.result_metadata import result_metadata
from vidpipe_dagster.db.models import Node
from vidpipe_dagster.domain.errors import VidpipeError
from vidpipe_dagster.domain.keys import stored_output
from vidpipe_dagster.domain.lifecycle import INTERRUPTED
from vidpipe_dagster.domain.node_types import canonical_type, referenced_uuids
from vidpipe_dagster.domain.waiting import waiting_stage
from vidpipe_dagster.resources.providers.registry import ASYNC_PROVIDERS, PAID_PROVIDERS
from vidpipe_dagster.runs.plans import fields_hash, plan_check

if TYPE_CHECKING:
    from vidpipe_dagster.resources.dagster_resources import VidpipeResource

NodeEvent = dg.MaterializeResult | dg.AssetObservation | None


class UnknownNodeTypeError(RuntimeError):
    """No executor is registered for the node's type."""


class SubmissionRefused(RuntimeError):
    """A paid node was not submitted again: an earlier submission's outcome is unknown and
    this run was not asked for by anyone (the message says what to check)."""


def failure_reason(error: BaseException) -> str:
    """The error recorded on a node whose executor raised ``error``."""
    if isinstance(error, KeyboardInterrupt | dg.DagsterExecutionInterruptedError):
        return INTERRUPTED
    return f"{type(error).__name__}: {error}"


def materialize_node(
    context: dg.AssetExecutionContext,
    *,
    plan: PipelinePlan,
    node_uuid: str,
    resource: VidpipeResource,
) -> NodeEvent:
    """Run one node through the lifecycle; None when its result was superseded meanwhile.

    Reusable work is reused first (``node_reuse.reuse_node``) unless the run is forced
    (``FORCE_TAG``). Raises whatever the executor raised, after recording it with
    lifecycle ``failed`` (``metadata.retryable`` when it is a transient provider error); a
    node whose row is not valid fails without running (``node_guards.refuse_invalid``). Paid
    work is admitted first: over budget refuses the node ("Over budget: ..."; a completed
    node keeps its result); a provider at its limit of jobs in flight makes the node wait
    for a slot (``provider_queue.enqueue``; an ``AssetObservation`` of its stage is returned
    and nothing is submitted). In a run granted to a wait (tag ``vidpipe/waiting_token``)
    the node starts only while it still waits on that turn, else it is left alone (None).
    The executor gets the fields the row holds when the node starts; a row whose shape left
    the plan raises ``StalePlanError`` and leaves the node as it was.
    """
    refuse_invalid(resource, node_uuid)
    node: dict[str, Any] = {"uuid": node_uuid}
    check = plan_check(
        plan.nodes[node_uuid], force_local=resource.settings().force_local, into=node
    )
    signature, reused = reuse_first(
        context, plan=plan, node_uuid=node_uuid, resource=resource, check=check
    )
    if reused is not False:
        return reused
    provider = _admit(resource, node_uuid)
    key = plan.key(node_uuid)
    previous = (
        submission.Submission.from_metadata(node_metadata(resource, node_uuid))
        if provider in PAID_PROVIDERS
        else None
    )
    try:
        process_uuid = _start(
            context,
            resource=resource,
            node_uuid=node_uuid,
            key=key,
            provider=provider,
            signature=signature,
            check=check,
        )
    except (provider_queue.NotWaiting, RunningElsewhere) as stale:
        context.log.info(f"Node {node_uuid} not started: {stale}")
        return None
    except provider_jobs.ProviderLimitReached as full:
        return _wait_for_slot(context, resource=resource, node_uuid=node_uuid, full=full, key=key)
    run = _Run(context, plan=plan, resource=resource, node=node, process_uuid=process_uuid)
    outcome, signature = run.execute(previous, provider=provider, signature=signature)
    if isinstance(outcome, AsyncSubmission):
        return run.submitted(outcome, key=key)
    return run.completed(dict(outcome), key=key, signature=signature)


def _admit(resource: VidpipeResource, node_uuid: str) -> str | None:
    """The node's paid provider once admitted (budget), or None for free work; a refusal
    fails the node and is raised."""
    try:
        return provider_jobs.admit_submission(
            resource.sessions(), node_uuid=node_uuid, settings=resource.settings()
        )
    except VidpipeError as error:
        resource.lifecycle().failed(node_uuid, error.message, None)
        raise


def _start(
    context: dg.AssetExecutionContext,
    *,
    resource: VidpipeResource,
    node_uuid: str,
    key: dg.AssetKey,
    provider: str | None,
    signature: str | None,
    check: Any,
) -> str:
    """Mark the node started in this run (the process_uuid), through its ``admit`` hooks."""
    settings = resource.settings()
    started: dict[str, Any] = {
        "dagster_run_id": context.run.run_id,
        "dagster_asset_key": key.to_user_string(),
    }
    if signature:
        started["signature"] = signature
    hooks = start_hooks(context, node_uuid, paid=provider is not None)
    if provider is not None and provider in ASYNC_PROVIDERS:
        started["provider"] = provider
        hooks.append(provider_jobs.provider_slot(provider, node_uuid=node_uuid, settings=settings))
    return resource.lifecycle().started(
        node_uuid, {**started, **heartbeat.stamp()}, admit=all_of(hooks), check=check
    )


class _Run:
    """One started execution of a node: its executor or adopted job, and what it gave."""

    def __init__(
        self,
        context: dg.AssetExecutionContext,
        *,
        plan: PipelinePlan,
        resource: VidpipeResource,
        node: dict[str, Any],
        process_uuid: str,
    ) -> None:
        self.context, self.plan, self.resource = context, plan, resource
        self.node, self.node_uuid, self.process_uuid = node, node["uuid"], process_uuid
        self.lifecycle = resource.lifecycle()
        self.ran = fields_hash(node)
        self.begun = time.monotonic()

    def record(self, metadata: dict[str, Any]) -> None:
        """Merge ``metadata`` into the running node's row."""
        self.lifecycle.updated(self.node_uuid, metadata, self.process_uuid)

    def execute(
        self, previous: submission.Submission | None, *, provider: str | None, signature: Any
    ) -> tuple[Any, str | None]:
        """The executor's outcome (or the adopted job) and the signature it ran on; a
        failure is recorded with lifecycle ``failed`` and raised."""
        try:
            with heartbeat.beating(
                self.lifecycle,
                node_uuid=self.node_uuid,
                process_uuid=self.process_uuid,
                interval=self.resource.settings().heartbeat_interval_seconds,
                warn=self.context.log.warning,
            ):
                resume = _resume(self.context, previous, provider=provider, resource=self.resource)
                if resume.action == "refuse":
                    raise SubmissionRefused(resume.message)
                if resume.action == "adopt" and previous is not None:
                    return self._adopt(previous, job_id=resume.job_id), signature
                return self._run_on_rows(signature)
        except BaseException as error:
            retryable = provider_jobs.transient_provider_failure(error)
            self.lifecycle.failed(
                self.node_uuid,
                failure_reason(error),
                self.process_uuid,
                metadata={"retryable": True} if retryable else None,
            )
            raise

    def _adopt(self, previous: submission.Submission, *, job_id: Any) -> AsyncSubmission:
        self.record(submission.accepted(previous, job_id=job_id).as_metadata())
        self.context.log.info(
            f"Node {self.node_uuid}: adopted {previous.provider} job {job_id}, which an "
            "earlier execution submitted without getting the answer."
        )
        return AsyncSubmission(
            provider=previous.provider,
            job_id=str(job_id),
            metadata={"stage": "submitted", "submitted_at": previous.at, "poll_attempts": 0},
        )

    def _run_on_rows(self, signature: str | None) -> tuple[Any, str | None]:
        settings = self.resource.settings()
        upstream = upstream_rows(self.resource, referenced_uuids(self.node.get("inputs")))
        ran_signature = execution_signature(self.node, upstream, settings=settings)
        if ran_signature != signature:
            signature = ran_signature
            self.record({"signature": signature})
        outcome = _run_executor(
            node=self.node,
            pipeline_uuid=self.plan.pipeline_uuid,
            upstream=upstream,
            resource=self.resource,
            process_uuid=self.process_uuid,
            log=self.context.log,
            record=self.record,
        )
        return outcome, signature

    def submitted(self, outcome: AsyncSubmission, *, key: dg.AssetKey) -> dg.AssetObservation:
        """Record the provider job the node now waits on."""
        submitted = {"provider": outcome.provider, "provider_job_id": outcome.job_id}
        self.lifecycle.updated(self.node_uuid, {**outcome.metadata, **submitted}, self.process_uuid)
        return dg.AssetObservation(
            asset_key=key,
            metadata={**submitted, "process_uuid": self.process_uuid, "structure_hash": self.ran},
        )

    def completed(
        self, output: dict[str, Any], *, key: dg.AssetKey, signature: str | None
    ) -> dg.MaterializeResult | None:
        """Record the node's output; None when it was superseded while running."""
        if not self.lifecycle.succeeded(self.node_uuid, output, self.process_uuid):
            self.context.log.warning(
                f"Node {self.node_uuid} was changed or restarted while running; "
                "its output is dropped."
            )
            return None
        metadata = {
            **result_metadata(
                output,
                process_uuid=self.process_uuid,
                node=self.node,
                seconds=time.monotonic() - self.begun,
                storage=self.resource.storage(),
                settings=self.resource.settings(),
            ),
            "structure_hash": self.ran,
        }
        if signature:
            metadata["signature"] = signature
        return dg.MaterializeResult(
            asset_key=key, metadata=metadata, data_version=dg.DataVersion(self.ran)
        )


def _run_executor(
    *,
    node: Mapping[str, Any],
    pipeline_uuid: str,
    upstream: dict[str, Node],
    resource: VidpipeResource,
    process_uuid: str,
    log: Any,
    record: Any,
) -> Any:
    executor = EXECUTORS.get(canonical_type(node["type"]))
    if executor is None:
        raise UnknownNodeTypeError(f"No executor for node type {node['type']!r}")
    spec = NodeSpec(
        uuid=node["uuid"],
        pipeline_uuid=pipeline_uuid,
        title=node.get("title") or "",
        type=node["type"],
        inputs=node.get("inputs") or {},
        config=node.get("config") or {},
        asset=node.get("asset"),
    )
    upstream_nodes = {
        uuid: UpstreamNode(
            uuid=uuid,
            title=row.title,
            type=row.type,
            status=row.status,
            output=stored_output(row.output),
            asset=row.asset,
        )
        for uuid, row in upstream.items()
    }
    with tempfile.TemporaryDirectory(prefix="vidpipe-") as workdir:
        context = ExecutionContext(
            storage=resource.storage(),
            invoker=resource.invoker(),
            settings=resource.settings(),
            process_uuid=process_uuid,
            workdir=Path(workdir),
            log=log.info,
            providers=resource.provider_clients(),
            record=record,
        )
        return executor(spec, upstream_nodes, context)


def _wait_for_slot(
    context: dg.AssetExecutionContext,
    *,
    resource: VidpipeResource,
    node_uuid: str,
    full: provider_jobs.ProviderLimitReached,
    key: dg.AssetKey,
) -> dg.AssetObservation | None:
    queued = provider_queue.enqueue(
        resource.sessions(), node_uuid=node_uuid, provider=full.provider, run_id=context.run.run_id
    )
    if queued is None:
        context.log.info(f"Node {node_uuid} is running elsewhere; not queued for a slot.")
        return None
    _wait, ahead = queued
    stage = waiting_stage(full.provider, ahead=ahead)
    context.log.info(
        f"Node {node_uuid}: {stage} ({full.in_flight} of {full.limit} in flight); "
        "the provider sensor starts it when a slot frees."
    )
    return dg.AssetObservation(asset_key=key, metadata={"stage": stage, "provider": full.provider})


def _resume(
    context: dg.AssetExecutionContext,
    previous: submission.Submission | None,
    *,
    provider: str | None,
    resource: VidpipeResource,
) -> submission.Resume:
    if previous is None or provider is None:
        return submission.Resume("submit")
    return submission.resume_previous(
        previous,
        provider=provider,
        providers=resource.provider_clients(),
        explicit=submission.is_explicit(context.run.tags, retry_number=context.retry_number),
    )
