"""The bridge between a Dagster step and a node's executor.

For each selected node of a pipeline, in topological order: lifecycle ``started`` (recording
the Dagster run id), the node type's executor with its upstream nodes' outputs read from
their rows, lifecycle ``succeeded`` with the output, and a ``MaterializeResult`` carrying a
link to the media, its duration, size, cost and the process_uuid. Any exception calls
``failed`` and is raised again once the nodes that do not depend on the failed one have run.

Async providers answer with an ``AsyncSubmission`` instead of an output: the job id is
recorded with ``updated``, an ``AssetObservation`` is yielded and the node stays
``in_progress`` until the provider polling sensor completes it (the node's spec is
``skippable``, so its downstream nodes in the same run are skipped). A node whose provider
is at its limit of jobs in flight waits for a slot instead (``provider_queue``): nothing is
submitted, an ``AssetObservation`` of its stage is yielded, and the provider sensor starts
it later. A step is retried while any of its failures was transient, redoing only those
nodes (:func:`retry_or_failure`).

Paid work is submitted at most once per execution (``provider_jobs.submission``): before a
paid node starts, an earlier submission whose outcome is unknown is looked up (and its job
adopted) where the provider allows it, or refused unless someone asked for this run; a
submission whose answer is lost now fails the node with "submission outcome unknown" and is
recorded in ``metadata.submission``, which a step retry, a scheduled retry or automation
honours in turn.

A node executes the fields its row holds when it starts (``vidpipe_dagster.plans``), and its
materialization carries their structure hash as its data version. A node whose shape was
edited after the run was planned is not started: it keeps its status, the run log says why,
and once the step is done it is launched again, with what it blocked, on a fresh plan.

Finished work is reused: a node whose signature (``domain.signatures``) matches an output
stored anywhere takes that output (shared, at no cost, ``metadata.reused_from`` naming the
source) and its executor is not called; a run tagged ``vidpipe/force=true`` renders anyway.
"""

from __future__ import annotations

import tempfile
import time
import uuid as uuid_lib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import dagster as dg
from sqlalchemy import select
from sqlalchemy.orm import Session

from vidpipe_dagster import heartbeat, provider_jobs, provider_queue
from vidpipe_dagster.assets import EXECUTORS
from vidpipe_dagster.assets.base import AsyncSubmission, ExecutionContext, NodeSpec, UpstreamNode
from vidpipe_dagster.checks import CHECK_NAME, check_stored_output
from vidpipe_dagster.db.models import Node
from vidpipe_dagster.domain.errors import VidpipeError
from vidpipe_dagster.domain.keys import stored_output
from vidpipe_dagster.domain.lifecycle import INTERRUPTED
from vidpipe_dagster.domain.node_types import canonical_type, effective_provider, referenced_uuids
from vidpipe_dagster.domain.nodes import node_validity, pipeline_node_uuids
from vidpipe_dagster.domain.signatures import (
    FORCE_TAG,
    find_sources,
    node_signature,
    output_signature,
)
from vidpipe_dagster.domain.validation import describe_errors
from vidpipe_dagster.domain.waiting import WAITING_TAG, waiting_stage
from vidpipe_dagster.plans import StalePlanError, fields_hash, plan_check, row_fields
from vidpipe_dagster.provider_jobs import submission
from vidpipe_dagster.resources.providers.registry import ASYNC_PROVIDERS, PAID_PROVIDERS
from vidpipe_dagster.result_metadata import result_metadata

if TYPE_CHECKING:
    from vidpipe_dagster.compiler import PipelinePlan
    from vidpipe_dagster.resources.dagster_resources import VidpipeResource

RESOURCE_KEY = "vidpipe"
REPLANS_TAG = "vidpipe/replans"
MAX_REPLANS = 3
"""How many times in a row a refused node is relaunched before the run log asks a person."""
RELAUNCH_WAIT_SECONDS = 300.0
"""How long a step waits for its location to compile the edit it relaunches (no HTTP client
is waiting on it, unlike an execute request)."""


class FailedEarlier(RuntimeError):
    """A node of the step failed for good in an earlier attempt of this run."""


class RunningElsewhere(RuntimeError):
    """A paid node another run holds ``in_progress``: this run leaves it alone."""


class UnknownNodeTypeError(RuntimeError):
    """No executor is registered for the node's type."""


class InvalidNodeError(RuntimeError):
    """The node's row breaks the contract's rules (a draft), so it is never run."""


def refuse_invalid(resource: VidpipeResource, node_uuid: str) -> None:
    """Fail a node whose row, as it is now, is not valid under ``VIDPIPE_API_CONTRACT``.

    The editor saves drafts and may also write the tables directly, so validity is judged
    here, on the row, whatever wrote it; the failure names the problems.
    """
    with resource.sessions()() as session:
        row = session.get(Node, uuid_lib.UUID(node_uuid))
        if row is None:
            return
        checked = node_validity(
            row,
            known_uuids=pipeline_node_uuids(session, row.pipeline_id),
            contract=resource.settings().api_contract,
        )
        title = row.title
    if checked.is_valid:
        return
    message = (
        f"Node '{title}' ({node_uuid}) is not valid, so it was not run: "
        f"{describe_errors(checked.errors)}; fix the node in the editor and run it again."
    )
    resource.lifecycle().failed(node_uuid, message, None)
    raise InvalidNodeError(message)


def _upstream_rows(resource: VidpipeResource, uuids: list[str]) -> dict[str, Node]:
    if not uuids:
        return {}
    with resource.sessions()() as session:
        rows = session.scalars(select(Node).where(Node.id.in_([uuid_lib.UUID(u) for u in uuids])))
        return {row.uuid: row for row in rows}


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


def failure_reason(error: BaseException) -> str:
    """The error recorded on a node whose executor raised ``error``."""
    if isinstance(error, KeyboardInterrupt | dg.DagsterExecutionInterruptedError):
        return INTERRUPTED
    return f"{type(error).__name__}: {error}"


def _paid(node: Mapping[str, Any], settings: Any) -> bool:
    provider = effective_provider(
        canonical_type(node["type"]), node.get("config"), force_local=settings.force_local
    )
    return provider in PAID_PROVIDERS


def execution_signature(
    node: Mapping[str, Any], upstream: Mapping[str, Node], *, settings: Any
) -> str | None:
    """The signature of executing ``node`` now, on the outputs its input rows hold."""
    return node_signature(
        node,
        {uuid: output_signature(row.output) for uuid, row in upstream.items()},
        force_local=settings.force_local,
    )


def reuse_node(
    context: dg.AssetExecutionContext,
    *,
    plan: PipelinePlan,
    node: Mapping[str, Any],
    node_uuid: str,
    signature: str,
    resource: VidpipeResource,
    check: Callable[[Any], None] | None = None,
) -> dg.MaterializeResult | None | Literal[False]:
    """Complete the node with a stored output of the same ``signature``, if there is one.

    False when nothing can be reused (no output with that signature whose media is still
    in storage); None when the node was superseded meanwhile, or is a paid node another run
    holds, or no longer waits on the turn this run was granted; else its materialization.
    """
    begun = time.monotonic()
    storage = resource.storage()
    with resource.sessions()() as session:
        candidates = find_sources(session, [signature], prefer=[node_uuid]).get(signature, [])
    source = next((c for c in candidates if storage.exists(c.output["s3_key"])), None)
    if source is None:
        return False
    key = plan.key(node_uuid)
    lifecycle = resource.lifecycle()
    hooks: list[Callable[[Session], None]] = []
    if _paid(node, resource.settings()):
        hooks.append(_not_running_elsewhere(node_uuid, run_id=context.run.run_id))
    token = context.run.tags.get(WAITING_TAG)
    if token:
        hooks.append(provider_queue.wait_guard(node_uuid, token))
    try:
        process_uuid = lifecycle.started(
            node_uuid,
            {
                "dagster_run_id": context.run.run_id,
                "dagster_asset_key": key.to_user_string(),
                "signature": signature,
            },
            admit=_all_of(hooks),
            check=check,
        )
    except (provider_queue.NotWaiting, RunningElsewhere) as stale:
        context.log.info(f"Node {node_uuid} not started: {stale}")
        return None
    output = source.reused_output(signature)
    reused_from = source.reused_from()
    if not lifecycle.succeeded(
        node_uuid, output, process_uuid, metadata={"reused_from": reused_from, "cost": 0.0}
    ):
        context.log.warning(f"Node {node_uuid} was changed or restarted while being reused.")
        return None
    context.log.info(
        f"Node {node_uuid} reuses the output of '{source.title}' ({source.node_uuid}), "
        f"saving ${source.cost:.2f}"
    )
    metadata = result_metadata(
        output,
        process_uuid=process_uuid,
        node=node,
        seconds=time.monotonic() - begun,
        storage=storage,
        settings=resource.settings(),
    )
    metadata["signature"] = signature
    metadata["reused_from"] = dg.MetadataValue.json(reused_from)
    return dg.MaterializeResult(asset_key=key, metadata=metadata)


def materialize_node(
    context: dg.AssetExecutionContext,
    *,
    plan: PipelinePlan,
    node_uuid: str,
    resource: VidpipeResource,
) -> dg.MaterializeResult | dg.AssetObservation | None:
    """Run one node through the lifecycle; None when its result was superseded meanwhile.

    Reusable work is reused first (:func:`reuse_node`) unless the run is forced
    (:data:`FORCE_TAG`). Raises whatever the executor raised, after recording it with
    lifecycle ``failed`` (``metadata.retryable`` when it is a transient provider error); a
    node whose row is not valid fails without running (:func:`refuse_invalid`). Paid work is
    admitted first: over budget refuses the node ("Over budget: ..."; a completed node keeps
    its result); a provider at its limit of jobs in flight makes the node wait for a slot
    (``provider_queue.enqueue``; an ``AssetObservation`` of its stage is returned and
    nothing is submitted). In a run granted to a wait (tag ``vidpipe/waiting_token``) the
    node starts only while it still waits on that turn, else it is left alone (None).
    The executor gets the fields the row holds when the node starts; a row whose shape left
    the plan raises ``StalePlanError`` and leaves the node as it was.
    """
    key = plan.key(node_uuid)
    lifecycle = resource.lifecycle()
    settings = resource.settings()
    refuse_invalid(resource, node_uuid)
    force_local = settings.force_local
    node: dict[str, Any] = {"uuid": node_uuid}
    check = plan_check(plan.nodes[node_uuid], force_local=force_local, into=node)
    # reuse is decided on what the row holds now, not on the (possibly older) plan
    current = {"uuid": node_uuid, **(_row_fields(resource, node_uuid) or plan.nodes[node_uuid])}
    signature = execution_signature(
        current,
        _upstream_rows(resource, referenced_uuids(current.get("inputs"))),
        settings=settings,
    )
    if signature and context.run.tags.get(FORCE_TAG) != "true":
        reused = reuse_node(
            context,
            plan=plan,
            node=current,
            node_uuid=node_uuid,
            signature=signature,
            resource=resource,
            check=check,
        )
        if reused is not False:
            return reused
    try:
        provider = provider_jobs.admit_submission(
            resource.sessions(), node_uuid=node_uuid, settings=settings
        )
    except VidpipeError as error:
        lifecycle.failed(node_uuid, error.message, None)
        raise
    started: dict[str, Any] = {
        "dagster_run_id": context.run.run_id,
        "dagster_asset_key": key.to_user_string(),
    }
    if signature:
        started["signature"] = signature
    hooks: list[Callable[[Session], None]] = []
    if provider is not None:
        hooks.append(_not_running_elsewhere(node_uuid, run_id=context.run.run_id))
    token = context.run.tags.get(WAITING_TAG)
    if token:
        hooks.append(provider_queue.wait_guard(node_uuid, token))
    if provider is not None and provider in ASYNC_PROVIDERS:
        started["provider"] = provider
        hooks.append(provider_jobs.provider_slot(provider, node_uuid=node_uuid, settings=settings))
    previous = (
        submission.Submission.from_metadata(_node_metadata(resource, node_uuid))
        if provider in PAID_PROVIDERS
        else None
    )
    try:
        process_uuid = lifecycle.started(
            node_uuid, {**started, **heartbeat.stamp()}, admit=_all_of(hooks), check=check
        )
    except (provider_queue.NotWaiting, RunningElsewhere) as stale:
        context.log.info(f"Node {node_uuid} not started: {stale}")
        return None
    except provider_jobs.ProviderLimitReached as full:
        return _wait_for_slot(context, resource=resource, node_uuid=node_uuid, full=full, key=key)
    ran = fields_hash(node)
    begun = time.monotonic()

    def record(metadata: dict[str, Any]) -> None:
        lifecycle.updated(node_uuid, metadata, process_uuid)

    try:
        with heartbeat.beating(
            lifecycle,
            node_uuid=node_uuid,
            process_uuid=process_uuid,
            interval=settings.heartbeat_interval_seconds,
            warn=context.log.warning,
        ):
            resume = _resume(context, previous, provider=provider, resource=resource)
            if resume.action == "refuse":
                raise SubmissionRefused(resume.message)
            if resume.action == "adopt" and previous is not None:
                record(submission.accepted(previous, job_id=resume.job_id).as_metadata())
                outcome: Any = AsyncSubmission(
                    provider=previous.provider,
                    job_id=str(resume.job_id),
                    metadata={
                        "stage": "submitted",
                        "submitted_at": previous.at,
                        "poll_attempts": 0,
                    },
                )
                context.log.info(
                    f"Node {node_uuid}: adopted {previous.provider} job {resume.job_id}, which an "
                    "earlier execution submitted without getting the answer."
                )
            else:
                upstream = _upstream_rows(resource, referenced_uuids(node.get("inputs")))
                ran_signature = execution_signature(node, upstream, settings=settings)
                if ran_signature != signature:
                    signature = ran_signature
                    record({"signature": signature})
                outcome = _run_executor(
                    node=node,
                    pipeline_uuid=plan.pipeline_uuid,
                    upstream=upstream,
                    resource=resource,
                    process_uuid=process_uuid,
                    log=context.log,
                    record=record,
                )
    except BaseException as error:
        retryable = provider_jobs.transient_provider_failure(error)
        lifecycle.failed(
            node_uuid,
            failure_reason(error),
            process_uuid,
            metadata={"retryable": True} if retryable else None,
        )
        raise
    if isinstance(outcome, AsyncSubmission):
        submitted = {"provider": outcome.provider, "provider_job_id": outcome.job_id}
        lifecycle.updated(node_uuid, {**outcome.metadata, **submitted}, process_uuid)
        return dg.AssetObservation(
            asset_key=key,
            metadata={**submitted, "process_uuid": process_uuid, "structure_hash": ran},
        )
    output = dict(outcome)
    if not lifecycle.succeeded(node_uuid, output, process_uuid):
        context.log.warning(
            f"Node {node_uuid} was changed or restarted while running; its output is dropped."
        )
        return None
    metadata = {
        **result_metadata(
            output,
            process_uuid=process_uuid,
            node=node,
            seconds=time.monotonic() - begun,
            storage=resource.storage(),
            settings=settings,
        ),
        "structure_hash": ran,
    }
    if signature:
        metadata["signature"] = signature
    return dg.MaterializeResult(asset_key=key, metadata=metadata, data_version=dg.DataVersion(ran))


def _plan_tags(plan: PipelinePlan, *, source: str, node_uuids: list[str]) -> dict[str, str]:
    from vidpipe_dagster.domain.naming import run_tags

    if plan.names is None:
        return {"vidpipe/pipeline": plan.pipeline_uuid, "vidpipe/source": source}
    return run_tags(plan.names, source=source, node_uuids=node_uuids)


def _not_running_elsewhere(node_uuid: str, *, run_id: str) -> Callable[[Session], None]:
    """An ``admit`` hook for paid nodes: refuse to start a node another run holds
    ``in_progress`` (paid work is never submitted twice by racing runs)."""
    node_id = uuid_lib.UUID(node_uuid)

    def admit(session: Session) -> None:
        row = session.execute(
            select(Node.status, Node.metadata_).where(Node.id == node_id)
        ).one_or_none()
        if row is None or row.status != "in_progress":
            return
        holder = (row.metadata_ or {}).get("dagster_run_id")
        if (row.metadata_ or {}).get("process_uuid") and holder != run_id:
            raise RunningElsewhere(f"Dagster run {holder} is already running it")

    return admit


def _all_of(hooks: list[Callable[[Session], None]]) -> Callable[[Session], None] | None:
    if not hooks:
        return None

    def admit(session: Session) -> None:
        for hook in hooks:
            hook(session)

    return admit


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


class SubmissionRefused(RuntimeError):
    """A paid node was not submitted again: an earlier submission's outcome is unknown and
    this run was not asked for by anyone (the message says what to check)."""


def _row_fields(resource: VidpipeResource, node_uuid: str) -> dict[str, Any] | None:
    """The fields the node's row holds now (None when the row is gone)."""
    with resource.sessions()() as session:
        row = session.get(Node, uuid_lib.UUID(node_uuid))
        return row_fields(row) if row is not None else None


def _node_metadata(resource: VidpipeResource, node_uuid: str) -> dict[str, Any]:
    with resource.sessions()() as session:
        value = session.scalar(select(Node.metadata_).where(Node.id == uuid_lib.UUID(node_uuid)))
    return dict(value or {})


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


def check_node_output(
    resource: VidpipeResource, *, key: dg.AssetKey, node_uuid: str
) -> dg.AssetCheckResult:
    """The ``stored_output`` check of a node, judged on the output its row records now."""
    row = _upstream_rows(resource, [node_uuid]).get(node_uuid)
    output = stored_output(row.output) if row else None
    return check_stored_output(resource.storage(), output).result(key)


def execute_pipeline_selection(
    context: dg.AssetExecutionContext, *, plan: PipelinePlan
) -> Iterator[dg.MaterializeResult | dg.AssetObservation | dg.AssetCheckResult]:
    """The body of a pipeline's multi-asset: materialize the selected nodes in order.

    A node whose input failed, is waiting on a provider or was superseded in this run is not
    attempted (it stays as it was). The first failure is raised after the rest have run.
    Each selected ``stored_output`` check follows its node's materialization; a check
    selected without its node judges the output the node's row records.
    """
    resource: VidpipeResource = getattr(context.resources, RESOURCE_KEY)
    selected = context.selected_asset_keys
    settled = (
        provider_jobs.settled_in_run(
            resource.sessions(),
            run_id=context.run.run_id,
            node_uuids=[u for u in plan.order if plan.key(u) in selected],
        )
        if context.retry_number > 0
        else {}
    )
    checked = {
        check.asset_key for check in context.selected_asset_check_keys if check.name == CHECK_NAME
    }
    blocked: set[str] = set()
    replan: list[str] = []
    failures: list[BaseException] = []
    for node_uuid in plan.order:
        key = plan.key(node_uuid)
        if key not in selected:
            if key in checked:
                yield check_node_output(resource, key=key, node_uuid=node_uuid)
            continue
        if node_uuid in settled:
            if settled[node_uuid] != "completed":
                blocked.add(node_uuid)
            if settled[node_uuid] == "failed":
                title = plan.nodes[node_uuid].get("title") or node_uuid
                failures.append(
                    FailedEarlier(f"Node '{title}' failed in an earlier attempt of this run")
                )
            continue
        waiting_on = [
            u for u in referenced_uuids(plan.nodes[node_uuid].get("inputs")) if u in blocked
        ]
        if waiting_on:
            context.log.info(
                f"Node {node_uuid} not attempted: its inputs {waiting_on} did not complete."
            )
            titles = ", ".join(f"'{plan.nodes[u].get('title') or u}'" for u in waiting_on)
            resource.lifecycle().not_run(
                node_uuid,
                f"not run: input {titles} had not completed (run {context.run.run_id})",
                run_id=context.run.run_id,
            )
            blocked.add(node_uuid)
            if any(u in replan for u in waiting_on):
                replan.append(node_uuid)
            continue
        try:
            event = materialize_node(context, plan=plan, node_uuid=node_uuid, resource=resource)
        except StalePlanError as refused:
            context.log.warning(str(refused))
            blocked.add(node_uuid)
            replan.append(node_uuid)
            continue
        except Exception as error:
            context.log.error(f"Node {node_uuid} failed: {type(error).__name__}: {error}")
            failures.append(error)
            blocked.add(node_uuid)
            continue
        if not isinstance(event, dg.MaterializeResult):
            blocked.add(node_uuid)
        if event is not None:
            yield event
        if isinstance(event, dg.MaterializeResult) and key in checked:
            yield check_node_output(resource, key=key, node_uuid=node_uuid)
    if replan:
        relaunched = relaunch_fresh(context, plan=plan, resource=resource, node_uuids=replan)
        _say_replanned(context, resource=resource, node_uuids=replan, relaunched=relaunched)
    if failures:
        raise retry_or_failure(context, resource=resource, failures=failures)


def _say_replanned(
    context: dg.AssetExecutionContext,
    *,
    resource: VidpipeResource,
    node_uuids: list[str],
    relaunched: str | None,
) -> None:
    """Put in each refused node's stage what became of it: relaunched in which run, or
    left for the next execute."""
    run_id = context.run.run_id
    reason = (
        f"edited after Dagster run {run_id} was planned: relaunched in run {relaunched}"
        if relaunched
        else f"not run: edited after Dagster run {run_id} was planned; execute it again"
    )
    for node_uuid in node_uuids:
        resource.lifecycle().not_run(node_uuid, reason, run_id=run_id)


def relaunch_fresh(
    context: dg.AssetExecutionContext,
    *,
    plan: PipelinePlan,
    resource: VidpipeResource,
    node_uuids: list[str],
) -> str | None:
    """Launch ``node_uuids`` again in a run planned from the rows as they are now.

    The launcher reloads the code location until it compiled the nodes' current shape
    (for at most ``RELAUNCH_WAIT_SECONDS``). Returns the new run id, or None when it could
    not be launched (the run log says so and the nodes wait for the next execute) or after
    ``MAX_REPLANS`` relaunches in a row.
    """
    from vidpipe_dagster.launcher import launch_current

    titles = ", ".join(f"'{plan.nodes[u].get('title') or u}'" for u in node_uuids)
    replans = int(context.run.tags.get(REPLANS_TAG, "0") or 0) + 1
    if replans > MAX_REPLANS:
        context.log.warning(
            f"Not relaunching {titles}: they were edited again while {MAX_REPLANS} runs in a "
            "row were planned; execute them again once the edits settle."
        )
        return None
    try:
        settings = resource.settings()
        run_id = launch_current(
            settings.model_copy(
                update={
                    "execute_wait_seconds": max(
                        settings.execute_wait_seconds, RELAUNCH_WAIT_SECONDS
                    )
                }
            ),
            resource.sessions(),
            pipeline_uuid=plan.pipeline_uuid,
            node_uuids=node_uuids,
            tags={
                **_plan_tags(plan, source="replan", node_uuids=node_uuids),
                "vidpipe/replanned_from": context.run.run_id,
                REPLANS_TAG: str(replans),
            },
        )
    except VidpipeError as error:
        context.log.warning(f"Could not relaunch {titles} on a fresh plan: {error.message}")
        return None
    context.log.info(f"Relaunched {titles} on a fresh plan: run {run_id}.")
    return run_id


def retry_or_failure(
    context: dg.AssetExecutionContext,
    *,
    resource: VidpipeResource,
    failures: list[BaseException],
) -> BaseException:
    """What a step with failed nodes raises: ``RetryRequested`` with exponential backoff
    when any failure was a transient provider error and retries are left, else the first
    failure for good (or the first failure).

    Each node is retried on its own terms: the retried attempt redoes only the nodes that
    failed transiently; nodes that completed, were submitted or failed for good in this
    run are not attempted again (``provider_jobs.settled_in_run``).
    """
    settings = resource.settings()
    transient = [e for e in failures if provider_jobs.transient_provider_failure(e)]
    final = [e for e in failures if e not in transient]
    if not transient or context.retry_number >= settings.provider_step_retries:
        return (final or failures)[0]
    wait = settings.provider_retry_base_seconds * 2**context.retry_number
    context.log.warning(
        f"Transient provider failure, retrying in {wait:g} s: "
        f"{type(transient[0]).__name__}: {transient[0]}"
    )
    retry = dg.RetryRequested(max_retries=settings.provider_step_retries, seconds_to_wait=wait)
    retry.__cause__ = transient[0]
    return retry
