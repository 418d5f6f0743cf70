"""The bridge between a Dagster step and its nodes: the body of a pipeline's multi-asset.

For each selected node of a pipeline, in topological order, the node is executed
(``node_execution.materialize_node``: lifecycle, the executor, a ``MaterializeResult``) or
its finished work reused (``node_reuse``). Any failure is raised once the nodes that do not
depend on the failed one have run. An async provider's node stays ``in_progress`` until the
provider polling sensor completes it (the node's spec is ``skippable``, so its downstream
nodes in the same run are skipped). A step is retried while any of its failures was
transient, redoing only those nodes (:func:`retry_or_failure`); a failure whose paid
submission's answer was lost is honoured by a step retry, a scheduled retry or automation in
turn (``provider_jobs.submission``).

A node whose shape was edited after the run was planned is not started: once the step is
done it is launched again, with what it blocked, on a fresh plan (``relaunch``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import dagster as dg

from vidpipe_dagster.assets import provider_jobs
from vidpipe_dagster.assets.checks import CHECK_NAME, check_stored_output
from vidpipe_dagster.assets.node_execution import NodeEvent, materialize_node
from vidpipe_dagster.assets.node_guards import upstream_rows
from vidpipe_dagster.assets.pipeline_plan import PipelinePlan
from vidpipe_dagster.assets.relaunch import relaunch_fresh, say_replanned
from vidpipe_dagster.domain.keys import stored_output
from vidpipe_dagster.domain.node_types import referenced_uuids
from vidpipe_dagster.runs.plans import StalePlanError

if TYPE_CHECKING:
    from vidpipe_dagster.resources.dagster_resources import VidpipeResource

RESOURCE_KEY = "vidpipe"

StepEvent = dg.MaterializeResult | dg.AssetObservation | dg.AssetCheckResult


class FailedEarlier(RuntimeError):
    """A node of the step failed for good in an earlier attempt of this run."""


def check_node_output(
    resource: VidpipeResource, *, key: dg.AssetKey, node_uuid: str
) -> dg.AssetCheckResult:
    """The ``stored_output`` check of a node, judged on the output its row records now."""
    row = upstream_rows(resource, [node_uuid]).get(node_uuid)
    output = stored_output(row.output) if row else None
    return check_stored_output(resource.storage(), output).result(key)


@dataclass
class _Step:
    """What one step of a pipeline's multi-asset has met so far, node by node."""

    context: dg.AssetExecutionContext
    plan: PipelinePlan
    resource: VidpipeResource
    blocked: set[str] = field(default_factory=set)
    replan: list[str] = field(default_factory=list)
    failures: list[BaseException] = field(default_factory=list)

    def settled(self, node_uuid: str, status: str) -> None:
        """Note a node an earlier attempt of this run settled as ``status``."""
        if status != "completed":
            self.blocked.add(node_uuid)
        if status == "failed":
            title = self.plan.nodes[node_uuid].get("title") or node_uuid
            self.failures.append(
                FailedEarlier(f"Node '{title}' failed in an earlier attempt of this run")
            )

    def not_attempted(self, node_uuid: str) -> bool:
        """Leave the node as it was when an input of it did not complete in this step."""
        plan, context = self.plan, self.context
        inputs = referenced_uuids(plan.nodes[node_uuid].get("inputs"))
        waiting_on = [u for u in inputs if u in self.blocked]
        if not waiting_on:
            return False
        context.log.info(
            f"Node {node_uuid} not attempted: its inputs {waiting_on} did not complete."
        )
        titles = ", ".join(f"'{plan.nodes[u].get('title') or u}'" for u in waiting_on)
        self.resource.lifecycle().not_run(
            node_uuid,
            f"not run: input {titles} had not completed (run {context.run.run_id})",
            run_id=context.run.run_id,
        )
        self.blocked.add(node_uuid)
        if any(u in self.replan for u in waiting_on):
            self.replan.append(node_uuid)
        return True

    def attempt(self, node_uuid: str) -> tuple[bool, NodeEvent]:
        """Materialize the node: whether it was attempted without raising, and its event."""
        context = self.context
        try:
            event = materialize_node(
                context, plan=self.plan, node_uuid=node_uuid, resource=self.resource
            )
        except StalePlanError as refused:
            context.log.warning(str(refused))
            self.blocked.add(node_uuid)
            self.replan.append(node_uuid)
            return False, None
        except Exception as error:
            context.log.error(f"Node {node_uuid} failed: {type(error).__name__}: {error}")
            self.failures.append(error)
            self.blocked.add(node_uuid)
            return False, None
        if not isinstance(event, dg.MaterializeResult):
            self.blocked.add(node_uuid)
        return True, event

    def finish(self) -> None:
        """Relaunch the refused nodes on a fresh plan; raise the step's failure, if any."""
        if self.replan:
            relaunched = relaunch_fresh(
                self.context, plan=self.plan, resource=self.resource, node_uuids=self.replan
            )
            say_replanned(
                self.context, resource=self.resource, node_uuids=self.replan, relaunched=relaunched
            )
        if self.failures:
            raise retry_or_failure(self.context, resource=self.resource, failures=self.failures)


def execute_pipeline_selection(
    context: dg.AssetExecutionContext, *, plan: PipelinePlan
) -> Iterator[StepEvent]:
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
    step = _Step(context, plan, resource)
    for node_uuid in plan.order:
        key = plan.key(node_uuid)
        if key not in selected:
            if key in checked:
                yield check_node_output(resource, key=key, node_uuid=node_uuid)
            continue
        if node_uuid in settled:
            step.settled(node_uuid, settled[node_uuid])
            continue
        if step.not_attempted(node_uuid):
            continue
        attempted, event = step.attempt(node_uuid)
        if not attempted:
            continue
        if event is not None:
            yield event
        if isinstance(event, dg.MaterializeResult) and key in checked:
            yield check_node_output(resource, key=key, node_uuid=node_uuid)
    step.finish()


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
